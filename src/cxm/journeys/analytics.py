"""Where a department sits in its customers' journeys, as Ibis expressions over the log.

"The customer doesn't see silos": a department's scorecard shows how many detractors passed
through its touchpoints (against promoters), and which other departments its customers met.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import ibis
from sqlalchemy.engine import Engine

from cxm.store import analytics


@dataclass
class DepartmentJourneys:
    """Reach of one department in respondents' journeys, and its neighbours."""

    department: str
    customers: int = 0  # distinct customers who touched the department
    reach: dict[str, dict[str, float]] = field(default_factory=dict)  # nps category -> n, share
    neighbours: list[dict[str, Any]] = field(default_factory=list)  # department, customers, share


def _naive(value: dt.datetime | None) -> dt.datetime | None:
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value else None


def department_journeys(
    engine: Engine,
    department: str,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    limit: int = 10,
) -> DepartmentJourneys:
    """For interactions and NPS responses in [start, end): the share of detractors, passives
    and promoters whose journeys touched ``department``, and the other departments the
    department's customers touched (by distinct customers)."""
    con = analytics(engine)
    try:
        ix = con.table("interactions")
        tp = con.table("touchpoints")
        r = con.table("responses")
        lo, hi = _naive(start), _naive(end)
        if lo is not None:
            ix = ix.filter(ix.event_time >= lo)
            r = r.filter(r.submitted_at >= lo)
        if hi is not None:
            ix = ix.filter(ix.event_time < hi)
            r = r.filter(r.submitted_at < hi)
        owned = tp.select(tp_key=tp.key, dept=tp.department_key)
        visits = (
            ix.filter(ix.customer_id.notnull())
            .join(owned, ix.touchpoint_key == owned.tp_key)
            .select(cid=ix.customer_id, dept=owned.dept)
        )
        touched = visits.filter(visits.dept == department).select("cid").distinct()
        out = DepartmentJourneys(department)
        out.customers = int(touched.count().to_pyarrow().as_py())
        scored = r.filter(r.nps_category.notnull(), r.customer_id.notnull()).select(
            rid=r.id, cid=r.customer_id, category=r.nps_category
        )
        marked = scored.left_join(touched.mutate(hit=ibis.literal(1)), "cid")
        reach = marked.group_by("category").aggregate(
            n=marked.rid.count(), touched=marked.hit.fill_null(0).sum()
        )
        for row in reach.to_pyarrow().to_pylist():
            n = int(row["n"])
            hits = int(row["touched"] or 0)
            out.reach[row["category"]] = {"n": n, "touched": hits, "share": hits / n if n else 0}
        if out.customers:
            theirs = visits.join(touched, "cid")
            others = (
                theirs.filter(theirs.dept != department)
                .group_by("dept")
                .aggregate(customers=theirs.cid.nunique())
                .order_by(ibis.desc("customers"), "dept")
                .limit(limit)
            )
            for row in others.to_pyarrow().to_pylist():
                share = int(row["customers"]) / out.customers
                out.neighbours.append(
                    {"department": row["dept"], "customers": int(row["customers"]), "share": share}
                )
        return out
    finally:
        con.disconnect()

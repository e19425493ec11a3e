"""Where each department sits in its customers' journeys, as Ibis expressions over the log.

"The customer doesn't see silos": a department's scorecard shows how many detractors passed
through its touchpoints (against promoters), and which other departments its customers met.

One query answers this for every department at once: each customer's journey in the range
becomes a set of departments (a bit mask), and the query returns one row per distinct set
with its number of customers and of NPS responses by category. Companies have few departments,
so that result has at most a few hundred rows however large the log is; every department's
reach and neighbours are then read off it in Python.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import ibis.expr.types as ir
from ibis.backends import BaseBackend
from sqlalchemy.engine import Engine

from cxm.store.analytics import reading, to_frame

BITS = 62  # departments per mask column (a signed 64-bit integer)
CATEGORIES = ("detractor", "passive", "promoter")


@dataclass
class DepartmentJourneys:
    """Reach of one department in respondents' journeys, and its neighbours."""

    department: str
    customers: int = 0  # distinct customers who touched the department
    reach: dict[str, dict[str, float]] = field(default_factory=dict)  # nps category -> n, share
    neighbours: list[dict[str, Any]] = field(default_factory=list)  # department, customers, share


@dataclass
class JourneyMap:
    """Customers and NPS responses counted by the set of departments the customer touched."""

    # (departments touched, customers with exactly that set, responses by NPS category)
    groups: list[tuple[frozenset[str], int, dict[str, int]]]

    def department(self, key: str, limit: int = 10) -> DepartmentJourneys:
        out = DepartmentJourneys(key)
        neighbours: Counter[str] = Counter()
        reach = {c: {"n": 0, "touched": 0} for c in CATEGORIES}
        for touched, customers, responses in self.groups:
            hit = key in touched
            for category, n in responses.items():
                reach[category]["n"] += n
                reach[category]["touched"] += n if hit else 0
            if hit:
                out.customers += customers
                for other in touched - {key}:
                    neighbours[other] += customers
        out.reach = {
            c: {"n": r["n"], "touched": r["touched"], "share": r["touched"] / r["n"]}
            for c, r in reach.items()
            if r["n"]
        }
        ranked = sorted(neighbours.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        out.neighbours = [
            {"department": d, "customers": n, "share": n / out.customers} for d, n in ranked
        ]
        return out


def _naive(value: dt.datetime | None) -> dt.datetime | None:
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value else None


def _masks(ix: ir.Table, owners: dict[str, str], departments: list[str]) -> dict[str, ir.Value]:
    """One mask column per 62 departments: the bit of the department owning the touchpoint."""
    columns = {}
    for chunk in range(0, len(departments), BITS):
        bits = {d: 1 << i for i, d in enumerate(departments[chunk : chunk + BITS])}
        # A CASE over the touchpoint keys: cheaper than joining the touchpoint table to every
        # row of the log.
        of_touchpoint = {tp: bits[d] for tp, d in owners.items() if d in bits}
        columns[f"m{chunk // BITS}"] = ix.touchpoint_key.substitute(of_touchpoint, else_=0).cast(
            "int64"
        )
    return columns


def _grouped(con: BaseBackend, owners: dict[str, str], departments: list[str],
             lo: dt.datetime | None, hi: dt.datetime | None) -> ir.Table:  # fmt: skip
    ix = con.table("interactions")
    r = con.table("responses")
    if lo is not None:
        ix = ix.filter(ix.event_time >= lo)
        r = r.filter(r.submitted_at >= lo)
    if hi is not None:
        ix = ix.filter(ix.event_time < hi)
        r = r.filter(r.submitted_at < hi)
    # Interactions at touchpoints nobody owns set no bit (a customer with only those has the
    # empty set, and touched no department).
    ix = ix.filter(ix.customer_id.notnull())
    masks = _masks(ix, owners, departments)
    per_customer = ix.group_by(cid=ix.customer_id).aggregate(
        touched=ix.customer_id.count(), **{m: e.bit_or() for m, e in masks.items()}
    )
    scored = r.filter(r.nps_category.isin(CATEGORIES), r.customer_id.notnull())
    answers = scored.group_by(rcid=scored.customer_id).aggregate(
        **{c: (scored.nps_category == c).sum() for c in CATEGORIES}
    )
    both = per_customer.outer_join(answers, per_customer.cid == answers.rcid)
    return both.group_by(**{m: both[m].fill_null(0) for m in masks}).aggregate(
        customers=both.touched.count(), **{c: both[c].fill_null(0).sum() for c in CATEGORIES}
    )


def journey_map(
    engine: Engine | BaseBackend,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> JourneyMap:
    """For interactions and NPS responses in [start, end): customers and responses grouped by
    the set of departments each customer's interactions touched."""
    with reading(engine) as con:
        tp = con.table("touchpoints")
        owned = tp.filter(tp.department_key.notnull()).select("key", "department_key")
        owners = {r["key"]: r["department_key"] for r in owned.to_pyarrow().to_pylist()}
        if not owners:
            return JourneyMap([])
        departments = sorted(set(owners.values()))
        lo, hi = _naive(start), _naive(end)
        key = ("journeys", tuple(sorted(owners.items())), lo, hi)
        frame = to_frame(con, key, lambda: _grouped(con, owners, departments, lo, hi))
        groups = []
        for row in frame.to_dict("records"):
            touched = frozenset(
                d
                for i in range(0, len(departments), BITS)
                for bit, d in enumerate(departments[i : i + BITS])
                if int(row[f"m{i // BITS}"]) >> bit & 1
            )
            responses = {c: int(row[c] or 0) for c in CATEGORIES}
            groups.append((touched, int(row["customers"]), responses))
        return JourneyMap(groups)


def department_journeys(
    engine: Engine | BaseBackend,
    department: str,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    limit: int = 10,
) -> DepartmentJourneys:
    """For interactions and NPS responses in [start, end): the share of detractors, passives
    and promoters whose journeys touched ``department``, and the other departments the
    department's customers touched (by distinct customers)."""
    return journey_map(engine, start, end).department(department, limit)

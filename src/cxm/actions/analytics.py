"""Closed-loop analytics in Ibis: loop metrics, root causes and their cost, initiative effects.

Aggregation runs in the engine; only the aggregated rows come back, and statistics are
computed on them (Welch's t-test from summary statistics).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import ibis
from ibis import _
from ibis.backends import BaseBackend
from sqlalchemy.engine import Engine

from cxm.actions.facts import cases_expr
from cxm.customers.facts import profiles
from cxm.interactions.facts import log
from cxm.metrics import stats
from cxm.org.scope import Scope
from cxm.store import analytics as connect
from cxm.store.analytics import reading
from cxm.surveys import facts as survey_facts

CHURN = "subscription_cancelled"


def _cases(con: Any, scope: Scope) -> Any:
    c = cases_expr(con)
    if scope.by_team:
        c = c.filter(c.team_key == scope.team_key)
    elif scope.by_department:
        c = c.filter(c.department_key == scope.department_key)
    return c


def _hours(end: Any, start: Any) -> Any:
    return (end.epoch_seconds() - start.epoch_seconds()) / 3600.0


def _num(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return None if math.isnan(f) else round(f, 3)


def closed_loop(engine: Engine | BaseBackend, scope: Scope) -> dict[str, Any]:
    """Cases opened, mean hours to first response and resolution, SLA attainment (% of
    resolved cases resolved in time), loop closure (% of detractor responses with a case that
    got a first response) and recovery (% of answered follow-ups scoring better than the
    original response)."""
    with reading(engine) as con:
        c = _cases(con, scope)
        r = survey_facts.responses(con)
        overall = (
            c.aggregate(
                opened=_.count(),
                open=(_.status.isin(["new", "in_progress", "waiting_on_customer"])).sum(),
                hours_to_first_response=_hours(_.first_response_at, _.opened_at).mean(),
                hours_to_resolution=_hours(_.resolved_at, _.opened_at).mean(),
                resolved=_.resolved_at.notnull().sum(),
                met=(_.sla_state == "met").sum(),
            )
            .to_pyarrow()
            .to_pylist()[0]
        )
        detractors = r.filter(r.completed, r.nps_category == "detractor")
        if scope.by_team or scope.by_department:
            detractors = detractors.filter(detractors.id.isin(c.source_id))
        contacted = c.filter(c.source_kind == "response", c.first_response_at.notnull())
        loop = (
            detractors.aggregate(
                detractors=_.count(), contacted=_.id.isin(contacted.source_id).sum()
            )
            .to_pyarrow()
            .to_pylist()[0]
        )
        orig = r.select(orig_id=r.id, orig_nps=r.nps, orig_csat=r.csat)
        follow = r.filter(r.completed).select(fu_id=r.id, fu_nps=r.nps, fu_csat=r.csat)
        answered = c.filter(c.followup_response_id.notnull(), c.source_kind == "response")
        pairs = answered.join(follow, answered.followup_response_id == follow.fu_id).join(
            orig, answered.source_id == orig.orig_id
        )
        better = ibis.ifelse(pairs.fu_nps > pairs.orig_nps, 1, 0).fill_null(0)
        rec = pairs.aggregate(answered=_.count(), recovered=better.sum()).to_pyarrow()
        rec_row = rec.to_pylist()[0]
    resolved, met = int(overall["resolved"] or 0), int(overall["met"] or 0)
    det, contacted_n = int(loop["detractors"] or 0), int(loop["contacted"] or 0)
    ans, recovered = int(rec_row["answered"] or 0), int(rec_row["recovered"] or 0)
    return {
        "cases_opened": int(overall["opened"] or 0),
        "cases_open": int(overall["open"] or 0),
        "hours_to_first_response": _num(overall["hours_to_first_response"]),
        "hours_to_resolution": _num(overall["hours_to_resolution"]),
        "sla_attainment": round(100 * met / resolved, 1) if resolved else None,
        "loop_closure_rate": round(100 * contacted_n / det, 1) if det else None,
        "recovery_rate": round(100 * recovered / ans, 1) if ans else None,
        "detractors": det,
        "followups_answered": ans,
    }


def root_causes(
    engine: Engine | BaseBackend, scope: Scope, grain: str = "month"
) -> list[dict[str, Any]]:
    """Cases and detractor cases by root cause, touchpoint, department and period."""
    with reading(engine) as con:
        c = _cases(con, scope)
        crc = con.table("case_root_causes")
        rc = con.table("root_causes")
        r = survey_facts.responses(con).select(rid="id", nps_category="nps_category")
        j = c.join(crc, c.id == crc.case_id).join(rc, crc.root_cause_key == rc.key)
        j = j.left_join(r, j.source_id == r.rid)
        expr = (
            j.mutate(period=j.opened_at.truncate("M" if grain == "month" else "W").date())
            .group_by(["root_cause_key", "name", "touchpoint_key", "department_key", "period"])
            .aggregate(cases=_.count(), detractors=(_.nps_category == "detractor").sum())
            .order_by([ibis.desc("cases"), "root_cause_key", "period"])
        )
        rows = expr.to_pyarrow().to_pylist()
    return rows


def root_cause_cost(engine: Engine | BaseBackend, scope: Scope) -> list[dict[str, Any]]:
    """Per root cause: affected customers, their churn rate and revenue per customer, next to
    the same figures for every other customer.

    The affected customers' facts come from their own rows of the log; everyone else's from
    the current profiles and totals over the log, less the affected customers' share, so no
    query groups the whole log by customer.
    """
    with reading(engine) as con:
        c = _cases(con, scope).filter(_.customer_id.notnull())
        crc = con.table("case_root_causes")
        affected = (
            c.join(crc, c.id == crc.case_id).select("customer_id", "root_cause_key").distinct()
        )
        pairs = affected.to_pyarrow().to_pylist()
        if not pairs:
            return []
        rc = con.table("root_causes")
        names = {r["key"]: r["name"] for r in rc.select("key", "name").to_pyarrow().to_pylist()}
        ix = log(con).filter(_.customer_id.notnull())
        theirs = ix.filter(ix.customer_id.isin(affected.customer_id))
        facts = {
            r["customer_id"]: r
            for r in theirs.group_by("customer_id")
            .aggregate(
                revenue=_.revenue.fill_null(0).sum(),
                churned=ibis.ifelse(_.name == CHURN, 1, 0).max(),
            )
            .to_pyarrow()
            .to_pylist()
        }
        # Everyone: the current profiles (identity resolution keeps them; counting distinct
        # ids in the log costs a scan of it), the customers who cancelled, total revenue.
        current = profiles(con)
        totals = {
            "customers": current.count().execute(),
            "affected": current.filter(current.id.isin(affected.customer_id)).count().execute(),
            "churned": ix.filter(ix.name == CHURN).select("customer_id").distinct().count()
            .execute(),
            "revenue": ix.revenue.fill_null(0).sum().execute(),
        }  # fmt: skip
    by_cause: dict[str, set[str]] = {}
    for p in pairs:
        by_cause.setdefault(p["root_cause_key"], set()).add(p["customer_id"])
    # Every other customer: the current profiles less the affected ones.
    others = int(totals["customers"] or 0) - int(totals["affected"] or 0)
    theirs_churned = sum(int(f["churned"]) for f in facts.values())
    others_churned = int(totals["churned"] or 0) - theirs_churned
    others_revenue = float(totals["revenue"] or 0) - sum(
        float(f["revenue"]) for f in facts.values()
    )
    out = []
    for key, customers in by_cause.items():
        churned = [int(facts[c]["churned"]) if c in facts else 0 for c in customers]
        revenue = [float(facts[c]["revenue"]) if c in facts else 0.0 for c in customers]
        out.append({
            "root_cause": key,
            "name": names.get(key, key),
            "customers": len(customers),
            "churn_rate": _num(100 * sum(churned) / len(customers)),
            "revenue_per_customer": _num(sum(revenue) / len(customers)),
            "revenue": _num(sum(revenue)),
            "others_churn_rate": _num(100 * others_churned / others) if others else None,
            "others_revenue_per_customer": _num(others_revenue / others) if others else None,
        })  # fmt: skip
    return sorted(out, key=lambda r: (-r["customers"], r["root_cause"]))


# Per-response ranges, so the interval of the change stays possible (cxm.metrics.stats).
_SCALES = {"nps": stats.Scale(-100, 100), "csat": stats.Scale(1, 5), "ces": stats.Scale(1, 7)}


def _value(r: Any, metric: str) -> Any:
    if metric == "nps":
        return (
            ibis.cases(
                (r.nps_category == "promoter", 100),
                (r.nps_category == "detractor", -100),
                else_=0,
            )
        ).cast("float64")
    return r[metric].cast("float64")


def before_after(engine: Engine, initiative: dict[str, Any], days: int = 90) -> dict[str, Any]:
    """The targeted metric on the targeted touchpoints in the ``days`` before and after the
    start, with Welch's t-test on the per-response values (NPS: +100/0/-100)."""
    metric = initiative["metric"]
    start = dt.datetime.combine(initiative["start_date"], dt.time(0))
    lo, hi = start - dt.timedelta(days=days), start + dt.timedelta(days=days)
    con = connect(engine)
    try:
        r = survey_facts.responses(con)
        r = r.filter(
            r.completed,
            r.touchpoint_key.isin(list(initiative["touchpoints"])),
            r[metric].notnull(),
            r.submitted_at >= lo,
            r.submitted_at < hi,
        )
        r = r.mutate(
            value=_value(r, metric),
            phase=ibis.ifelse(r.submitted_at < start, "before", "after"),
        )
        rows = (
            r.group_by("phase")
            .aggregate(n=_.count(), mean=_.value.mean(), sd=_.value.std())
            .to_pyarrow()
            .to_pylist()
        )
    finally:
        con.disconnect()
    phases = {row["phase"]: row for row in rows}
    out: dict[str, Any] = {"metric": metric, "window_days": days}
    for phase in ("before", "after"):
        row = phases.get(phase)
        out[phase] = (
            {"n": int(row["n"]), "value": _num(row["mean"])} if row else {"n": 0, "value": None}
        )
    b, a = phases.get("before"), phases.get("after")
    if b and a and b["n"] >= 2 and a["n"] >= 2:
        test = stats.mean_test(
            float(a["mean"]),
            float(a["sd"] or 0),
            float(a["n"]),
            float(b["mean"]),
            float(b["sd"] or 0),
            float(b["n"]),
            scale=_SCALES.get(metric),
        )
        out |= {
            "change": _num(test.delta),
            "low": _num(test.low),
            "high": _num(test.high),
            "p_value": _num(test.p_value),
            "method": test.method,
            "significant": bool(test.p_value < 0.05),
        }
    else:
        out |= {
            "change": None,
            "p_value": None,
            "significant": False,
            "method": "too few responses on one side for a test",
        }
    return out


def cases_per_rule(engine: Engine) -> dict[str, int]:
    """How many cases each rule has opened, all time."""
    con = connect(engine)
    try:
        c = cases_expr(con)
        rows = c.group_by("rule_key").aggregate(n=_.count()).to_pyarrow().to_pylist()
    finally:
        con.disconnect()
    return {row["rule_key"]: int(row["n"]) for row in rows}

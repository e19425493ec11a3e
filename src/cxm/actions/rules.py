"""Rule evaluation: find the facts a rule matches and open one case per rule per event.

Matching is set-based (one query per rule over the facts); facts that already have a case for
the rule are excluded in the query, and the unique ``dedupe_key`` keeps retries, re-imports and
concurrent runs from opening a second case.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cxm.actions import notify, sla, titles
from cxm.actions.routing import OPEN, Assigner, Destination, destination
from cxm.actions.schemas import RuleIn
from cxm.actions.tables import action_rules, case_events, cases
from cxm.customers import service as customers
from cxm.insights.facts import customer_predictions
from cxm.interactions.facts import interactions
from cxm.metrics.facts import metric_alerts
from cxm.store import jobs, utcnow
from cxm.store.bulk import insert_rows, matching
from cxm.surveys import service as surveys
from cxm.surveys.facts import responses_table as responses
from cxm.text.facts import text_annotations, text_themes

SLA_CHECK = "actions.sla"
TEXT_SOURCE = "survey_response"


@dataclass(frozen=True)
class Candidate:
    source_kind: str
    source_id: str
    title: str
    customer_id: str | None
    touchpoint_key: str | None
    department_key: str | None = None


def _not_yet(rule: RuleIn, kind: str, id_col: Any) -> Any:
    done = sa.select(cases.c.source_id).where(
        cases.c.rule_key == rule.key, cases.c.source_kind == kind
    )
    return id_col.not_in(done)


def _response_candidates(conn: Connection, rule: RuleIn, limit: int) -> list[Candidate]:
    w = rule.when.response
    assert w is not None
    r = responses
    query = sa.select(
        r.c.id, r.c.customer_id, r.c.touchpoint_key, r.c.nps, r.c.csat, r.c.ces, r.c.survey_key
    ).where(
        r.c.completed,
        r.c.respondent_kind == "customer",
        _not_yet(rule, "response", r.c.id),
        # A follow-up answer never opens a case of its own.
        sa.or_(r.c.trigger_event_id.is_(None), sa.not_(r.c.trigger_event_id.like("case:%"))),
    )
    if w.nps_max is not None:
        query = query.where(r.c.nps <= w.nps_max)
    if w.csat_max is not None:
        query = query.where(r.c.csat <= w.csat_max)
    if w.ces_max is not None:
        query = query.where(r.c.ces <= w.ces_max)
    if w.surveys:
        query = query.where(r.c.survey_key.in_(w.surveys))
    if w.touchpoints:
        query = query.where(r.c.touchpoint_key.in_(w.touchpoints))
    if w.sentiment:
        query = query.where(
            r.c.id.in_(
                sa.select(text_annotations.c.source_id).where(
                    text_annotations.c.source == TEXT_SOURCE,
                    text_annotations.c.label == w.sentiment,
                )
            )
        )
    if w.themes:
        query = query.where(
            r.c.id.in_(
                sa.select(text_themes.c.source_id).where(
                    text_themes.c.source == TEXT_SOURCE, text_themes.c.theme_key.in_(w.themes)
                )
            )
        )
    if w.nps_drop is not None:
        prev = sa.alias(r, "prev")
        previous = (
            sa.select(prev.c.nps)
            .where(
                prev.c.customer_id == r.c.customer_id,
                prev.c.nps.is_not(None),
                prev.c.submitted_at < r.c.submitted_at,
            )
            .order_by(prev.c.submitted_at.desc())
            .limit(1)
            .scalar_subquery()
        )
        query = query.where(r.c.nps.is_not(None), previous - r.c.nps >= w.nps_drop)
    rows = conn.execute(query.order_by(r.c.submitted_at, r.c.id).limit(limit)).mappings().all()
    survey_names = {s.key: s.name or s.title for s in surveys.list_surveys(conn)} if rows else {}
    found = []
    for row in rows:
        if w.customer_trait:
            # Traits live with the customers domain; only rows that passed the rest get here.
            have = customers.traits(conn, row["customer_id"]) if row["customer_id"] else {}
            if not all(have.get(k) in vs for k, vs in w.customer_trait.items()):
                continue
        survey = survey_names.get(row["survey_key"]) or row["survey_key"]
        title = titles.response_title(rule.name, survey, row)
        found.append(
            Candidate("response", row["id"], title, row["customer_id"], row["touchpoint_key"])
        )
    return found


def _interaction_candidates(conn: Connection, rule: RuleIn, limit: int) -> list[Candidate]:
    w = rule.when.interaction
    assert w is not None
    i = interactions
    j = sa.alias(interactions, "earlier")
    within = (
        sa.select(sa.func.count())
        .where(
            j.c.customer_id == i.c.customer_id,
            j.c.name == w.event,
            j.c.event_time <= i.c.event_time,
            j.c.event_time
            > i.c.event_time - sa.literal(dt.timedelta(days=w.within_days), sa.Interval()),
        )
        .scalar_subquery()
    )
    query = sa.select(i.c.event_id, i.c.customer_id, i.c.touchpoint_key).where(
        i.c.name == w.event,
        i.c.customer_id.is_not(None),
        _not_yet(rule, "interaction", i.c.event_id),
    )
    if w.touchpoints:
        query = query.where(i.c.touchpoint_key.in_(w.touchpoints))
    if w.count > 1:
        query = query.where(within >= w.count)
    rows = conn.execute(query.order_by(i.c.event_time, i.c.event_id).limit(limit)).mappings().all()
    busy = set(
        conn.execute(
            sa.select(cases.c.customer_id).where(
                cases.c.rule_key == rule.key, cases.c.status.in_(OPEN)
            )
        ).scalars()
    )
    found = []
    for row in rows:
        # One open case per customer and pattern: the 4th contact joins the case the 3rd opened.
        if row["customer_id"] in busy:
            continue
        busy.add(row["customer_id"])
        title = titles.interaction_title(rule.name, w.count, w.event, w.within_days)
        found.append(
            Candidate(
                "interaction",
                row["event_id"],
                title,
                row["customer_id"],
                row["touchpoint_key"],
            )
        )
    return found


def _alert_candidates(conn: Connection, rule: RuleIn, limit: int) -> list[Candidate]:
    w = rule.when.metric_alert
    assert w is not None
    a = metric_alerts
    query = sa.select(a).where(
        a.c.status == "open", a.c.p_adjusted <= w.max_p, _not_yet(rule, "alert", a.c.id)
    )
    if w.metrics:
        query = query.where(a.c.metric.in_(w.metrics))
    found = []
    names = titles.Names(conn)
    for row in conn.execute(query.order_by(a.c.created_at).limit(limit)).mappings():
        dims = dict(p.split("=", 1) for p in row["slice"].split(",") if "=" in p)
        title = titles.alert_title(rule.name, row, names)
        found.append(
            Candidate(
                "alert",
                row["id"],
                title,
                None,
                dims.get("touchpoint"),
                dims.get("department"),
            )
        )
    return found


def _risk_candidates(conn: Connection, rule: RuleIn, limit: int) -> list[Candidate]:
    """Customers whose stored churn risk is at least the rule's; one case per customer."""
    w = rule.when.churn_risk
    assert w is not None
    p = customer_predictions
    query = sa.select(p.c.customer_id, p.c.churn_risk, p.c.reasons).where(
        p.c.churn_risk >= w.min, _not_yet(rule, "prediction", p.c.customer_id)
    )
    found = []
    for row in conn.execute(query.order_by(p.c.churn_risk.desc()).limit(limit)).mappings():
        why = ", ".join(str(r.get("label", "")) for r in (row["reasons"] or []))
        title = f"{rule.name}: churn risk {row['churn_risk']:.0%}" + (f" ({why})" if why else "")
        found.append(
            Candidate("prediction", row["customer_id"], title[:300], row["customer_id"], None)
        )
    return found


CANDIDATES = {
    "response": _response_candidates,
    "interaction": _interaction_candidates,
    "metric_alert": _alert_candidates,
    "churn_risk": _risk_candidates,
}


def open_cases(
    conn: Connection, rule: RuleIn, found: list[Candidate], now: dt.datetime | None = None
) -> list[str]:
    """Open a case per candidate (skipping ones that exist); returns the ids of new cases."""
    if not found:
        return []
    now = now or utcnow()
    due = sla.due_times(now, rule.sla)
    assigner = Assigner(conn)
    places: dict[tuple[str | None, str | None], Destination] = {}
    rows: list[dict[str, Any]] = []
    for c in found:
        route = rule.route
        if c.department_key and not route.team and not route.department:
            # A metric alert on a department slice goes to that department.
            route = route.model_copy(update={"department": c.department_key})
        key = (c.touchpoint_key, route.department)
        if key not in places:
            places[key] = destination(conn, c.touchpoint_key, route)
        place = places[key]
        rows.append(
            {
                "id": secrets.token_hex(16),
                "dedupe_key": f"{rule.key}:{c.source_kind}:{c.source_id}",
                "rule_key": rule.key,
                "source_kind": c.source_kind,
                "source_id": c.source_id,
                "title": c.title,
                "customer_id": c.customer_id,
                "touchpoint_key": c.touchpoint_key,
                "department_key": place.department_key,
                "team_key": place.team_key,
                "assignee_id": None,
                "status": "new",
                "priority": rule.priority,
                "sla_state": "ok",
                "opened_at": now,
                "first_response_due": due.first_response,
                "resolution_due": due.resolution,
                "first_response_at": None,
                "resolved_at": None,
                "closed_at": None,
                "escalated_at": None,
                "followup_status": None,
                "followup_response_id": None,
                "updated_at": now,
            }
        )
    # Bulk insert (Arrow on DuckDB, COPY on PostgreSQL); a row whose dedupe_key is already
    # held is skipped, so the cases opened are the fresh ids that are now in the table.
    insert_rows(conn, cases, rows, ignore=True, unique=["dedupe_key"])
    inserted = set(matching(conn, cases, pa.table({"id": [r["id"] for r in rows]}))["id"]
                   .to_pylist())  # fmt: skip
    new = [r for r in rows if r["id"] in inserted]
    events: list[dict[str, Any]] = []
    for r in new:
        r["assignee_id"] = assigner.pick(r["team_key"], rule.route.assign)
        events.append(
            _event(r["id"], now, "system", "opened", "status", None, "new", f"rule {rule.key}")
        )
        events.append(
            _event(
                r["id"],
                now,
                "system",
                "routed",
                "team",
                None,
                r["team_key"] or "cx_lead_queue",
                None,
            )
        )
        if r["assignee_id"]:
            events.append(
                _event(
                    r["id"],
                    now,
                    "system",
                    "assigned",
                    "assignee",
                    None,
                    r["assignee_id"],
                    rule.route.assign,
                )
            )
    by_assignee: dict[str, list[str]] = {}
    for r in new:
        if r["assignee_id"]:
            by_assignee.setdefault(r["assignee_id"], []).append(r["id"])
    for assignee, ids in by_assignee.items():
        conn.execute(cases.update().where(cases.c.id.in_(ids)).values(assignee_id=assignee))
    if events:
        insert_many(conn, case_events, events)
    plan: list[dict[str, Any]] = []
    for r in new:
        for stage, risk, breach in (
            ("first_response", due.first_response_risk, due.first_response),
            ("resolution", due.resolution_risk, due.resolution),
        ):
            for level, at in (("at_risk", risk), ("breach", breach)):
                plan.append(
                    notify._job(
                        SLA_CHECK,
                        {"case_id": r["id"], "stage": stage, "level": level},
                        f"sla:{r['id']}:{stage}:{level}",
                        at,
                    )
                )
    if plan:
        insert_many(conn, jobs.jobs, plan)
    notify.raise_events(conn, new, "case_opened")
    return [r["id"] for r in new]


def insert_many(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """One bulk insert (Arrow on DuckDB, COPY on PostgreSQL): DuckDB runs executemany row by
    row, and compiling multi-row VALUES costs more than the insert itself."""
    insert_rows(conn, table, rows)


def _event(
    case_id: str,
    at: dt.datetime,
    actor: str,
    kind: str,
    field: str | None,
    old: str | None,
    new: str | None,
    reason: str | None,
) -> dict[str, Any]:
    return {
        "id": secrets.token_hex(16),
        "case_id": case_id,
        "occurred_at": at,
        "actor": actor,
        "kind": kind,
        "field": field,
        "old_value": old,
        "new_value": new,
        "reason": reason,
    }


def enabled_rules(conn: Connection) -> list[RuleIn]:
    rows = conn.execute(
        sa.select(action_rules.c.definition)
        .where(action_rules.c.enabled)
        .order_by(action_rules.c.key)
    ).scalars()
    return [RuleIn.model_validate(d) for d in rows]


def evaluate(
    conn: Connection,
    rules: list[RuleIn] | None = None,
    *,
    limit: int = 50_000,
    now: dt.datetime | None = None,
) -> dict[str, int]:
    """Run every enabled rule (or ``rules``) once; returns new cases per rule key."""
    opened: dict[str, int] = {}
    for rule in rules if rules is not None else enabled_rules(conn):
        found = CANDIDATES[rule.when.trigger](conn, rule, limit)
        opened[rule.key] = len(open_cases(conn, rule, found, now))
    return opened


def describe(rule: RuleIn) -> dict[str, str]:
    """A rule in words for lists: its condition, its SLA and where its cases go."""
    when = rule.when
    parts: list[str] = []
    if when.response:
        w = when.response
        for label, value in (("NPS", w.nps_max), ("CSAT", w.csat_max), ("CES", w.ces_max)):
            if value is not None:
                parts.append(f"{label} ≤ {value}")
        if w.sentiment:
            parts.append(f"{w.sentiment} comment")
        if w.themes:
            parts.append("theme " + " or ".join(w.themes))
        if w.nps_drop is not None:
            parts.append(f"NPS dropped by ≥ {w.nps_drop}")
        parts += [f"{k} in {', '.join(v)}" for k, v in w.customer_trait.items()]
        if w.surveys:
            parts.append("survey " + " or ".join(w.surveys))
        if w.touchpoints:
            parts.append("at " + " or ".join(w.touchpoints))
        condition = "response: " + ", ".join(parts)
    elif when.interaction:
        i = when.interaction
        condition = f"interaction: {i.count}x {i.event} within {i.within_days} days"
        if i.touchpoints:
            condition += " at " + " or ".join(i.touchpoints)
    else:
        a = when.metric_alert
        assert a is not None
        condition = f"metric alert: p ≤ {a.max_p}" + (
            f" on {', '.join(a.metrics)}" if a.metrics else ""
        )
    route = rule.route
    target = (
        f"team {route.team}"
        if route.team
        else f"department {route.department}"
        if route.department
        else "touchpoint owner"
    )
    return {
        "condition": condition,
        "sla": f"first response {rule.sla.first_response}, resolution {rule.sla.resolution}",
        "routing": f"{target}, {route.assign.replace('_', ' ')}",
    }

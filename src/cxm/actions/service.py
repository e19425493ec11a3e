"""The closed loop's logic: rules, cases (scoped per role), history, notes, root causes,
follow-up surveys, webhooks, initiatives, and the durable SLA checks."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Connection, Engine

from cxm.actions import digest, notify, outbound, rules, titles
from cxm.actions.routing import OPEN, team_agents
from cxm.actions.schemas import (
    InitiativeIn,
    RootCausesFile,
    RuleIn,
    RulesFile,
    WebhookIn,
)
from cxm.actions.tables import (
    action_rules,
    case_events,
    case_notes,
    case_root_causes,
    cases,
    initiatives,
    notifications,
    root_causes,
    webhook_deliveries,
    webhooks,
)
from cxm.config import Settings, load_settings
from cxm.errors import Conflict, Forbidden, Invalid, NotFound
from cxm.org import auth
from cxm.org import service as org
from cxm.org.scope import MASK, Scope, assignable_user_id
from cxm.store import as_utc, jobs, utcnow
from cxm.surveys import distribution
from cxm.surveys import service as surveys
from cxm.yamldoc import YamlDoc, read, validate

HERE = Path(__file__).parent
DEFAULT_RULES = HERE / "rules" / "default.yaml"
ROOT_CAUSES = HERE / "root_causes.yaml"
FOLLOWUP = HERE / "followup.yaml"
FOLLOWUP_SURVEY = "case_followup"
WORKERS = ("admin", "cx_lead", "manager", "agent")


# ---- rules ----


def check_rules(conn: Connection, doc: YamlDoc) -> list[RuleIn]:
    """Validate a rules file and the teams and departments it routes to; writes nothing."""
    parsed = validate(doc, RulesFile)
    for i, rule in enumerate(parsed.rules):
        try:
            if rule.route.team:
                org.get_team(conn, rule.route.team)
            if rule.route.department:
                org.get_department(conn, rule.route.department)
        except NotFound as exc:
            # A typo in a file is bad input, not a missing page: say where it is.
            raise Invalid(f"{doc.where(('rules', i, 'route'))}: {exc}") from exc
    return parsed.rules


def apply_rules(conn: Connection, doc: YamlDoc, now: dt.datetime | None = None) -> list[str]:
    """Create or replace the rules in a rules file; returns their keys."""
    checked = check_rules(conn, doc)
    now = now or utcnow()
    for rule in checked:
        save_rule(conn, rule, now)
    return [r.key for r in checked]


def sync_rules(
    conn: Connection, doc: YamlDoc, now: dt.datetime | None = None
) -> dict[str, list[str]]:
    """Make the stored rules exactly those of ``doc`` (the editor holds the whole set): create,
    replace, and remove rules the file leaves out. Idempotent; returns the keys per outcome."""
    checked = check_rules(conn, doc)
    before = {r["key"]: r["definition"] for r in list_rules(conn)}
    outcome: dict[str, list[str]] = {"created": [], "changed": [], "unchanged": [], "removed": []}
    now = now or utcnow()
    for rule in checked:
        if rule.key not in before:
            outcome["created"].append(rule.key)
        elif before[rule.key] == rule.model_dump(mode="json", exclude_none=True):
            outcome["unchanged"].append(rule.key)
            continue
        else:
            outcome["changed"].append(rule.key)
        save_rule(conn, rule, now)
    outcome["removed"] = sorted(set(before) - {r.key for r in checked})
    if outcome["removed"]:
        conn.execute(action_rules.delete().where(action_rules.c.key.in_(outcome["removed"])))
    return outcome


def export_rules(conn: Connection) -> str:
    """The stored rules as a rules file (YAML), in the shape ``apply_rules`` reads."""
    rows = [r["definition"] for r in list_rules(conn)]
    if not rows:
        return DEFAULT_RULES.read_text(encoding="utf-8")  # a starting point to edit
    return yaml.safe_dump({"rules": rows}, sort_keys=False, allow_unicode=True)


def set_rule_enabled(
    conn: Connection, key: str, enabled: bool, now: dt.datetime | None = None
) -> RuleIn:
    """Switch a rule on or off; a disabled rule opens no cases and keeps the ones it opened."""
    rule = get_rule(conn, key).model_copy(update={"enabled": enabled})
    return save_rule(conn, rule, now)


def save_rule(conn: Connection, rule: RuleIn, now: dt.datetime | None = None) -> RuleIn:
    values = {
        "name": rule.name,
        "trigger": rule.when.trigger,
        "enabled": rule.enabled,
        "definition": rule.model_dump(mode="json", exclude_none=True),
        "updated_at": now or utcnow(),
    }
    done = conn.execute(
        action_rules.update()
        .where(action_rules.c.key == rule.key)
        .values(**values)
        .returning(action_rules.c.key)
    ).first()
    if done is None:
        conn.execute(action_rules.insert().values(key=rule.key, **values))
    return rule


def list_rules(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(action_rules).order_by(action_rules.c.key)).mappings()
    return [dict(r) for r in rows]


def get_rule(conn: Connection, key: str) -> RuleIn:
    row = conn.execute(
        sa.select(action_rules.c.definition).where(action_rules.c.key == key)
    ).scalar()
    if row is None:
        known = ", ".join(r["key"] for r in list_rules(conn)) or "none yet"
        raise NotFound(f"rule '{key}' does not exist; known: {known}")
    return RuleIn.model_validate(row)


def delete_rule(conn: Connection, key: str) -> None:
    get_rule(conn, key)
    conn.execute(action_rules.delete().where(action_rules.c.key == key))


def apply_default_rules(conn: Connection) -> list[str]:
    return apply_rules(conn, read(DEFAULT_RULES))


def run_rules(conn: Connection, now: dt.datetime | None = None) -> dict[str, int]:
    """Evaluate every enabled rule now, attach answered follow-ups and queue the webhooks of
    new responses and alerts; idempotent."""
    opened = rules.evaluate(conn, now=now)
    link_followups(conn)
    outbound.queue_fact_events(conn, now=now)
    return opened


# ---- scope ----


def _scoped(query: Any, scope: Scope) -> Any:
    if scope.by_team:
        return query.where(cases.c.team_key == scope.team_key)
    if scope.by_department:
        return query.where(cases.c.department_key == scope.department_key)
    return query


def _can_work(scope: Scope) -> None:
    if scope.role not in WORKERS:
        raise Forbidden(f"role '{scope.role}' may read case figures but not work cases")


def _users(conn: Connection) -> dict[str, dict[str, Any]]:
    return {str(u["id"]): u for u in auth.list_users(conn)}


def _out(row: Any, users: dict[str, dict[str, Any]], scope: Scope) -> dict[str, Any]:
    d = dict(row)
    for k, v in d.items():
        if isinstance(v, dt.datetime):
            d[k] = as_utc(v)
    assignee = users.get(d["assignee_id"] or "")
    d["assignee"] = assignee["email"] if assignee else None
    d["customer_url"] = f"/customers/{d['customer_id']}" if d["customer_id"] else None
    if not scope.personal_data:
        d["customer_id"] = MASK if d["customer_id"] else None
        d["customer_url"] = None
        d["assignee"] = MASK if d["assignee"] else None
    return d


def risk_order() -> Any:
    """Open cases first, the next due time earliest first: the SLA-risk order of an inbox."""
    next_due = sa.case(
        (cases.c.first_response_at.is_(None), cases.c.first_response_due),
        else_=cases.c.resolution_due,
    )
    closed = sa.case((cases.c.status.in_(OPEN), 0), else_=1)
    return [closed, next_due, cases.c.id]


# Columns a case list may be sorted by (the default is the SLA-risk order).
CASE_SORTS = ("opened_at", "priority", "status", "title", "touchpoint_key", "team_key",
              "first_response_due", "resolution_due", "sla_state")  # fmt: skip


def _case_filter(
    conn: Connection,
    scope: Scope,
    *,
    status: list[str] | None = None,
    team: str | None = None,
    assignee: str | None = None,
    priority: str | None = None,
    rule: str | None = None,
    touchpoint: str | None = None,
) -> Any:
    query = _scoped(sa.select(cases), scope)
    if status:
        query = query.where(cases.c.status.in_(status))
    if team:
        query = query.where(cases.c.team_key == team)
    if assignee == "none":
        query = query.where(cases.c.assignee_id.is_(None))
    elif assignee:
        query = query.where(cases.c.assignee_id == _user_id(conn, assignee))
    if priority:
        query = query.where(cases.c.priority == priority)
    if rule:
        query = query.where(cases.c.rule_key == rule)
    if touchpoint:
        query = query.where(cases.c.touchpoint_key == touchpoint)
    return query


def list_cases(
    conn: Connection,
    scope: Scope,
    *,
    limit: int = 200,
    offset: int = 0,
    sort: str | None = None,
    descending: bool = False,
    **where: Any,
) -> list[dict[str, Any]]:
    """Cases the scope may see, sorted by SLA risk (or by ``sort``, one of ``CASE_SORTS``);
    ``assignee`` 'none' means unassigned. Filters: status, team, assignee, priority, rule,
    touchpoint. Raises Invalid for a limit outside 1..1000 or an unknown sort column."""
    if not 1 <= limit <= 1000:
        raise Invalid("limit: give a number from 1 to 1000")
    order = risk_order()
    if sort:
        if sort not in CASE_SORTS:
            raise Invalid(f"sort: '{sort}' is not one of {', '.join(CASE_SORTS)}")
        column = cases.c[sort]
        order = [column.desc() if descending else column.asc(), cases.c.id]
    query = _case_filter(conn, scope, **where)
    rows = [dict(r) for r in conn.execute(query.order_by(*order).limit(limit).offset(offset))
            .mappings()]  # fmt: skip
    titles.render(conn, rows)
    users = _users(conn)
    return [_out(r, users, scope) for r in rows]


def count_cases(conn: Connection, scope: Scope, **where: Any) -> int:
    """How many cases ``list_cases`` with the same filters would page through."""
    matching = _case_filter(conn, scope, **where).subquery("matching")
    return int(conn.execute(sa.select(sa.func.count()).select_from(matching)).scalar_one())


def _row(conn: Connection, scope: Scope, case_id: str) -> dict[str, Any]:
    row = conn.execute(_scoped(sa.select(cases).where(cases.c.id == case_id), scope)).mappings()
    found = row.first()
    if found is None:
        # Outside the caller's scope reads as absent, never as forbidden.
        raise NotFound(f"case '{case_id}' does not exist")
    return dict(found)


def get_case(conn: Connection, scope: Scope, case_id: str) -> dict[str, Any]:
    """One case with its history, notes, root causes and follow-up answer."""
    users = _users(conn)
    row = _row(conn, scope, case_id)
    titles.render(conn, [row])
    case = _out(row, users, scope)
    case["history"] = [
        dict(r)
        for r in conn.execute(
            sa.select(case_events)
            .where(case_events.c.case_id == case_id)
            .order_by(case_events.c.occurred_at, case_events.c.id)
        ).mappings()
    ]
    for e in case["history"]:
        e["occurred_at"] = as_utc(e["occurred_at"])
        if e["field"] == "assignee":
            for k in ("old_value", "new_value"):
                if e[k] in users:
                    e[k] = users[e[k]]["email"] if scope.personal_data else MASK
    case["notes"] = [
        {
            **dict(r),
            "created_at": as_utc(r["created_at"]),
            "body": r["body"] if scope.personal_data else MASK,
        }
        for r in conn.execute(
            sa.select(case_notes)
            .where(case_notes.c.case_id == case_id)
            .order_by(case_notes.c.created_at)
        ).mappings()
    ]
    case["root_causes"] = list(
        conn.execute(
            sa.select(case_root_causes.c.root_cause_key)
            .where(case_root_causes.c.case_id == case_id)
            .order_by(case_root_causes.c.root_cause_key)
        ).scalars()
    )
    return case


def _user_id(conn: Connection, who: str) -> str:
    for u in auth.list_users(conn):
        if who in (u["id"], u["email"]):
            return str(u["id"])
    raise NotFound(f"user '{who}' does not exist; give a user's email (see 'cxm users list')")


def _record(
    conn: Connection,
    case_id: str,
    actor: str,
    kind: str,
    field: str | None = None,
    old: str | None = None,
    new: str | None = None,
    reason: str | None = None,
    now: dt.datetime | None = None,
) -> None:
    conn.execute(
        case_events.insert().values(
            **rules._event(case_id, now or utcnow(), actor, kind, field, old, new, reason)
        )
    )


def _actor(scope: Scope, email: str | None) -> str:
    return email or f"api key ({scope.role})"


def _first_response(conn: Connection, case: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    if case["first_response_at"] is None:
        return {"first_response_at": now}
    return {}


def assign(
    conn: Connection,
    scope: Scope,
    actor: str | None,
    case_id: str,
    assignee: str | None,
    *,
    team: str | None = None,
    reason: str | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Reassign a case (to a user, or to a team's queue); the reason goes into the history."""
    _can_work(scope)
    now = now or utcnow()
    case = _row(conn, scope, case_id)
    changes: dict[str, Any] = {}
    who = _actor(scope, actor)
    if team and team != case["team_key"]:
        if scope.by_team:
            raise Forbidden("agents cannot move cases to another team; ask your team lead")
        t = org.get_team(conn, team)
        changes |= {"team_key": t.key, "department_key": t.department_key}
        _record(conn, case_id, who, "moved", "team", case["team_key"], t.key, reason, now)
        if assignee is None:
            changes["assignee_id"] = None
    if assignee is not None:
        user_id = assignable_user_id(conn, scope, assignee)
        target_team = changes.get("team_key", case["team_key"])
        user = _users(conn)[user_id]
        if user["role"] == "agent" and user["team_key"] != target_team:
            here = f"team '{target_team}'" if target_team else "the CX lead queue"
            raise Invalid(
                f"'{user['email']}' works in team '{user['team_key']}', not "
                f"{here}; move the case to that team first (team '{user['team_key']}')"
            )
        changes["assignee_id"] = user_id
    if "assignee_id" in changes and changes["assignee_id"] != case["assignee_id"]:
        _record(
            conn,
            case_id,
            who,
            "assigned",
            "assignee",
            case["assignee_id"],
            changes["assignee_id"],
            reason,
            now,
        )
    elif "team_key" not in changes:
        return get_case(conn, scope, case_id)
    conn.execute(cases.update().where(cases.c.id == case_id).values(**changes, updated_at=now))
    if changes.get("assignee_id"):
        notify.raise_event(conn, {**case, **changes}, "case_assigned")
    return get_case(conn, scope, case_id)


def bulk_assign(
    conn: Connection,
    scope: Scope,
    actor: str | None,
    case_ids: list[str],
    assignee: str | None,
    reason: str | None = None,
) -> int:
    """Assign many cases at once (all or nothing)."""
    for case_id in case_ids:
        assign(conn, scope, actor, case_id, assignee, reason=reason)
    return len(case_ids)


def set_status(
    conn: Connection,
    scope: Scope,
    actor: str | None,
    case_id: str,
    status: str,
    *,
    reason: str | None = None,
    followup: bool = True,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Move a case through new, in progress, waiting on customer, resolved, closed."""
    _can_work(scope)
    now = now or utcnow()
    case = _row(conn, scope, case_id)
    old = case["status"]
    if status == old:
        return get_case(conn, scope, case_id)
    if old == "closed":
        raise Conflict(f"case '{case_id}' is closed; it cannot change status any more")
    changes: dict[str, Any] = {"status": status, "updated_at": now}
    changes |= _first_response(conn, case, now)
    if status in ("resolved", "closed") and case["resolved_at"] is None:
        changes["resolved_at"] = now
        # The SLA is met or missed once, when the case is resolved.
        missed = case["sla_state"] == "breached" or now > as_utc(case["resolution_due"])  # type: ignore[operator]
        changes["sla_state"] = "breached" if missed else "met"
    if status == "closed":
        changes["closed_at"] = now
    if status in OPEN and old in ("resolved",):
        changes |= {"resolved_at": None, "sla_state": "ok"}
    conn.execute(cases.update().where(cases.c.id == case_id).values(**changes))
    _record(conn, case_id, _actor(scope, actor), "status", "status", old, status, reason, now)
    if status == "closed" and followup:
        request_followup(conn, {**case, **changes}, _actor(scope, actor), now)
    return get_case(conn, scope, case_id)


def resolve(
    conn: Connection, scope: Scope, actor: str | None, case_id: str, reason: str | None = None
) -> dict[str, Any]:
    return set_status(conn, scope, actor, case_id, "resolved", reason=reason)


def add_note(
    conn: Connection,
    scope: Scope,
    actor: str | None,
    case_id: str,
    body: str,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    _can_work(scope)
    now = now or utcnow()
    case = _row(conn, scope, case_id)
    if not body.strip():
        raise Invalid("body: write the note text")
    conn.execute(
        case_notes.insert().values(
            id=secrets.token_hex(16),
            case_id=case_id,
            author=_actor(scope, actor),
            body=body.strip(),
            created_at=now,
        )
    )
    changes = _first_response(conn, case, now)
    conn.execute(cases.update().where(cases.c.id == case_id).values(**changes, updated_at=now))
    _record(conn, case_id, _actor(scope, actor), "note", None, None, None, None, now)
    return get_case(conn, scope, case_id)


# ---- root causes ----


def apply_root_causes(conn: Connection, doc: YamlDoc) -> list[str]:
    parsed = validate(doc, RootCausesFile)
    for rc in parsed.root_causes:
        values = {"name": rc.name, "category": rc.category, "department_key": rc.department}
        done = conn.execute(
            root_causes.update()
            .where(root_causes.c.key == rc.key)
            .values(**values)
            .returning(root_causes.c.key)
        ).first()
        if done is None:
            conn.execute(root_causes.insert().values(key=rc.key, **values))
    return [rc.key for rc in parsed.root_causes]


def list_root_causes(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(root_causes).order_by(root_causes.c.category, root_causes.c.key)
    ).mappings()
    found = [dict(r) for r in rows]
    if not found:
        apply_root_causes(conn, read(ROOT_CAUSES))
        return list_root_causes(conn)
    return found


def set_root_causes(
    conn: Connection,
    scope: Scope,
    actor: str | None,
    case_id: str,
    keys: list[str],
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Replace a case's root-cause codes with ``keys`` (from the taxonomy)."""
    _can_work(scope)
    now = now or utcnow()
    _row(conn, scope, case_id)
    known = {r["key"] for r in list_root_causes(conn)}
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise Invalid(
            f"root_causes: {', '.join(unknown)} not in the taxonomy; known: "
            f"{', '.join(sorted(known))}"
        )
    before = list(
        conn.execute(
            sa.select(case_root_causes.c.root_cause_key).where(
                case_root_causes.c.case_id == case_id
            )
        ).scalars()
    )
    conn.execute(case_root_causes.delete().where(case_root_causes.c.case_id == case_id))
    if keys:
        conn.execute(
            case_root_causes.insert(),
            [
                {"case_id": case_id, "root_cause_key": k, "tagged_at": now}
                for k in dict.fromkeys(keys)
            ],
        )
    _record(
        conn,
        case_id,
        _actor(scope, actor),
        "root_cause",
        "root_causes",
        ",".join(sorted(before)) or None,
        ",".join(sorted(set(keys))) or None,
        None,
        now,
    )
    conn.execute(cases.update().where(cases.c.id == case_id).values(updated_at=now))
    return get_case(conn, scope, case_id)


# ---- follow-up ----


def ensure_followup_survey(conn: Connection) -> None:
    try:
        surveys.get_definition(conn, FOLLOWUP_SURVEY)
    except NotFound:
        surveys.apply_definition(conn, read(FOLLOWUP))


def request_followup(conn: Connection, case: dict[str, Any], actor: str, now: dt.datetime) -> str:
    """Plan the follow-up survey; the surveys module applies the fatigue rules when it sends."""
    if not case["customer_id"]:
        status = "no_customer"
    else:
        ensure_followup_survey(conn)
        jobs.enqueue(
            conn,
            distribution.INVITE,
            {
                "survey": FOLLOWUP_SURVEY,
                "customer_id": case["customer_id"],
                "channel": "email",
                "touchpoint": case["touchpoint_key"],
                "trigger_event_id": f"case:{case['id']}",
                "hidden": {"case_id": case["id"]},
                "dedupe": f"case-followup:{case['id']}",
            },
            dedupe_key=f"case-followup:{case['id']}",
        )
        status = "requested"
    conn.execute(cases.update().where(cases.c.id == case["id"]).values(followup_status=status))
    _record(conn, case["id"], actor, "followup", "followup", None, status, None, now)
    return status


def followup_state(conn: Connection, case: dict[str, Any]) -> str | None:
    """What became of a case's follow-up survey, in words: "requested" alone hides an email
    that could not be sent. None when no follow-up was asked for."""
    status = case.get("followup_status")
    if not status:
        return None
    if status == "no_customer":
        return "not sent: the case has no customer"
    if status == "answered":
        return "answered"
    state = distribution.delivery_state(conn, f"case:{case['id']}")
    if state is None:
        planned = conn.execute(
            sa.select(sa.func.max(jobs.jobs.c.run_at)).where(
                jobs.jobs.c.dedupe_key.like(f"case-followup:{case['id']}:quiet:%"),
                jobs.jobs.c.status == "pending",
            )
        ).scalar()
        if planned is not None:
            return (
                f"requested: held for the customer's quiet hours, to be sent after "
                f"{as_utc(planned):%Y-%m-%d %H:%M} UTC"
            )
        return "requested: the invitation is waiting to be planned"
    if state["status"] == "sent":
        return "sent, not answered yet"
    if state["status"] == "suppressed":
        return f"not sent: {(state['reason'] or 'held back').replace('_', ' ')}"
    if state["status"] == "failed":
        return f"failed: the email could not be sent ({state['last_error'] or 'no detail'})"
    if state["attempts"]:
        return (
            f"not sent yet: {state['attempts']} attempt(s) failed, retrying "
            f"({state['last_error'] or 'no detail'})"
        )
    return "requested: the email is queued"


def notification_state(conn: Connection, case_id: str) -> dict[str, Any]:
    """Emails and webhooks about one case: ``{sent, failed, last_error}`` (failed counts
    attempts that did not reach the mail server or the receiver)."""
    mails = conn.execute(
        sa.select(notifications.c.status, notifications.c.error, notifications.c.attempted_at)
        .where(notifications.c.case_id == case_id)
        .order_by(notifications.c.attempted_at)
    ).all()
    hooks = conn.execute(
        sa.select(
            webhook_deliveries.c.status, webhook_deliveries.c.error,
            webhook_deliveries.c.attempted_at,
        ).where(webhook_deliveries.c.case_id == case_id)
    ).all()  # fmt: skip
    rows = sorted([*mails, *hooks], key=lambda r: r.attempted_at)
    ok = ("sent", "delivered")
    failed = [r for r in rows if r.status not in ok]
    return {
        "sent": len(rows) - len(failed),
        "failed": len(failed),
        "last_error": failed[-1].error if failed else None,
    }


def delivery_health(conn: Connection) -> dict[str, Any]:
    """Case emails and webhooks at a glance: ``{mail_sent, mail_failed, cases_with_failed_mail,
    hooks_delivered, hooks_failed, last_mail_error, last_hook_error}``."""
    n = notifications
    mail: dict[str, int] = dict(
        conn.execute(sa.select(n.c.status, sa.func.count()).group_by(n.c.status)).tuples().all()
    )
    cases_failed = conn.execute(
        sa.select(sa.func.count(sa.distinct(n.c.case_id))).where(n.c.status == "failed")
    ).scalar_one()
    w = webhook_deliveries
    hooks: dict[str, int] = dict(
        conn.execute(sa.select(w.c.status, sa.func.count()).group_by(w.c.status)).tuples().all()
    )

    def last(table: Any, ok: str) -> tuple[str, Any] | None:
        row = conn.execute(
            sa.select(table.c.error, table.c.attempted_at)
            .where(table.c.status != ok)
            .order_by(table.c.attempted_at.desc())
            .limit(1)
        ).first()
        return (row.error, row.attempted_at) if row else None

    return {
        "mail_sent": int(mail.get("sent", 0)), "mail_failed": int(mail.get("failed", 0)),
        "cases_with_failed_mail": int(cases_failed),
        "hooks_delivered": int(hooks.get("delivered", 0)),
        "hooks_failed": int(hooks.get("failed", 0)) + int(hooks.get("gave_up", 0)),
        "last_mail_error": last(n, "sent"), "last_hook_error": last(w, "delivered"),
    }  # fmt: skip


def link_followups(conn: Connection) -> int:
    """Attach answered follow-up responses to their cases (the answer carries case:<id>)."""
    from cxm.surveys.facts import responses_table as responses

    waiting = (
        conn.execute(sa.select(cases.c.id).where(cases.c.followup_status == "requested"))
        .scalars()
        .all()
    )
    if not waiting:
        return 0
    answered = conn.execute(
        sa.select(responses.c.trigger_event_id, responses.c.id).where(
            responses.c.completed, responses.c.trigger_event_id.in_([f"case:{w}" for w in waiting])
        )
    ).all()
    for trigger, response_id in answered:
        case_id = trigger.removeprefix("case:")
        conn.execute(
            cases.update()
            .where(cases.c.id == case_id)
            .values(followup_status="answered", followup_response_id=response_id)
        )
        _record(conn, case_id, "system", "followup", "followup", "requested", "answered")
    return len(answered)


# ---- SLA checks ----


def sla_check(conn: Connection, payload: dict[str, Any], now: dt.datetime | None = None) -> str:
    """A due SLA check: warn when at risk, escalate to the team lead when breached."""
    now = now or utcnow()
    row = conn.execute(sa.select(cases).where(cases.c.id == payload["case_id"])).mappings().first()
    if row is None:
        return "gone"
    case = dict(row)
    stage, level = payload["stage"], payload["level"]
    done = case["first_response_at"] if stage == "first_response" else case["resolved_at"]
    if done is not None or case["status"] not in OPEN:
        return "met"
    if level == "at_risk":
        if case["sla_state"] != "ok":
            return case["sla_state"]
        conn.execute(cases.update().where(cases.c.id == case["id"]).values(sla_state="at_risk"))
        _record(conn, case["id"], "system", "sla", "sla_state", "ok", "at_risk", stage, now)
        notify.raise_event(conn, case, "sla_at_risk")
        return "at_risk"
    conn.execute(
        cases.update()
        .where(cases.c.id == case["id"])
        .values(sla_state="breached", escalated_at=now)
    )
    _record(
        conn,
        case["id"],
        "system",
        "sla",
        "sla_state",
        case["sla_state"],
        "breached",
        f"{stage} due {as_utc(case[stage + '_due'])}; escalated to the team lead",
        now,
    )
    notify.raise_event(conn, case, "sla_breached")
    return "breached"


def handlers(settings: Settings | None = None) -> dict[str, jobs.Handler]:
    """The closed loop's job handlers: SLA checks, case emails, webhooks."""

    def run_sla(conn: Connection, payload: dict[str, Any]) -> None:
        sla_check(conn, payload)

    def run_email(conn: Connection, payload: dict[str, Any]) -> None:
        notify.send_email(conn, payload, settings or load_settings())

    def run_webhook(conn: Connection, payload: dict[str, Any]) -> None:
        notify.deliver_webhook(conn, payload, settings=settings)

    return {rules.SLA_CHECK: run_sla, notify.EMAIL: run_email, notify.WEBHOOK: run_webhook}


def send_digests(engine: Engine) -> dict[str, int]:
    """The periodic task: email the department digests due today (once per week each)."""
    return digest.send_due(engine, load_settings())


def scan(engine: Engine) -> dict[str, int]:
    """The periodic task: evaluate the rules in one transaction."""
    with engine.begin() as conn:
        return run_rules(conn)


# ---- webhooks ----


def add_webhook(conn: Connection, body: WebhookIn) -> dict[str, Any]:
    hook_id = secrets.token_hex(16)
    conn.execute(
        webhooks.insert().values(
            id=hook_id,
            url=body.url,
            secret=body.secret,
            events=list(body.events),
            active=True,
            created_at=utcnow(),
            format=body.format,
            name=body.name,
        )
    )
    return {
        "id": hook_id,
        "url": body.url,
        "events": list(body.events),
        "active": True,
        "format": body.format,
        "name": body.name,
    }


def list_webhooks(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(
            webhooks.c.id,
            webhooks.c.url,
            webhooks.c.events,
            webhooks.c.active,
            webhooks.c.created_at,
            webhooks.c.format,
            webhooks.c.name,
        )
    ).mappings()
    return [dict(r) | {"format": r["format"] or "cxm"} for r in rows]


def deliveries(conn: Connection, webhook_id: str | None = None) -> list[dict[str, Any]]:
    query = sa.select(webhook_deliveries).order_by(
        webhook_deliveries.c.attempted_at, webhook_deliveries.c.attempt
    )
    if webhook_id:
        query = query.where(webhook_deliveries.c.webhook_id == webhook_id)
    return [dict(r) for r in conn.execute(query).mappings()]


# ---- initiatives ----


INITIATORS = ("admin", "cx_lead", "manager")


def create_initiative(
    conn: Connection, body: InitiativeIn, scope: Scope | None = None
) -> dict[str, Any]:
    """Record an improvement initiative; with a ``scope``, a manager may only create one owned
    by their own department, and agents and viewers none."""
    if scope is not None:
        if scope.role not in INITIATORS:
            raise Forbidden(f"role '{scope.role}' cannot create initiatives")
        if scope.by_department and body.owner_department != scope.department_key:
            raise Forbidden(
                f"owner_department: a manager creates initiatives for their own department "
                f"('{scope.department_key}'), not '{body.owner_department}'"
            )
    departments = {d.key for d in org.list_departments(conn)}
    if body.owner_department not in departments:
        raise Invalid(
            f"owner_department: '{body.owner_department}' does not exist; known: "
            f"{', '.join(sorted(departments))}"
        )
    touchpoints = {t.key for t in org.list_touchpoints(conn)}
    missing = [tp for tp in body.touchpoints if tp not in touchpoints]
    if missing:
        raise Invalid(
            f"touchpoints: {', '.join(missing)} not found; known: {', '.join(sorted(touchpoints))}"
        )
    known = {r["key"] for r in list_root_causes(conn)}
    unknown = [k for k in body.root_causes if k not in known]
    if unknown:
        raise Invalid(
            f"root_causes: {', '.join(unknown)} not in the taxonomy; known: "
            f"{', '.join(sorted(known))}"
        )
    init_id = secrets.token_hex(8)
    conn.execute(
        initiatives.insert().values(
            id=init_id,
            name=body.name,
            description=body.description,
            owner_department=body.owner_department,
            root_causes=body.root_causes,
            touchpoints=body.touchpoints,
            metric=body.metric,
            start_date=body.start_date,
            expected_effect=body.expected_effect,
            status="active",
            created_at=utcnow(),
        )
    )
    return get_initiative(conn, init_id)


def list_initiatives(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(initiatives).order_by(initiatives.c.start_date.desc()))
    return [dict(r) for r in rows.mappings()]


def get_initiative(conn: Connection, initiative_id: str) -> dict[str, Any]:
    row = (
        conn.execute(sa.select(initiatives).where(initiatives.c.id == initiative_id))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"initiative '{initiative_id}' does not exist")
    return dict(row)


def agents_of(conn: Connection, team_key: str) -> list[dict[str, object]]:
    return team_agents(conn, team_key)


ERASED_NOTE = "[erased on the customer's request]"


def forget_customers(conn: Connection, customer_ids: Sequence[str]) -> int:
    """Blank the notes of these customers' cases (privacy erasure); cases, their times and
    statuses stay so closed-loop metrics stay right. Returns how many notes were cleared."""
    theirs = sa.select(cases.c.id).where(cases.c.customer_id.in_(list(customer_ids)))
    return len(
        conn.execute(
            case_notes.update()
            .where(case_notes.c.case_id.in_(theirs))
            .values(body=ERASED_NOTE)
            .returning(case_notes.c.id)
        ).all()
    )


def team_has_customer(conn: Connection, team_key: str | None, customer_ids: Sequence[str]) -> bool:
    """Whether any case of ``team_key`` is about one of these customer ids (an agent's reach)."""
    if team_key is None:
        return False
    query = sa.select(cases.c.id).where(
        cases.c.team_key == team_key, cases.c.customer_id.in_(list(customer_ids))
    )
    return conn.execute(query.limit(1)).first() is not None

"""Contact-fatigue rules, checked at send time across every survey."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cxm.surveys import people, suppressions
from cxm.surveys.service import DEFAULT_RULE, ContactRule, contact_rules_list, is_unsubscribed
from cxm.surveys.tables import invitations, surveys


@dataclass(frozen=True)
class Verdict:
    """``send``; or held back for ``reason``; or deferred until ``defer_until`` (quiet hours)."""

    send: bool
    reason: str | None = None
    defer_until: datetime | None = None


def _quiet_until(rule: ContactRule, tz_name: str | None, now: datetime) -> datetime | None:
    """End of the quiet hours when ``now`` falls inside them in the customer's time zone."""
    if rule.quiet_start_hour is None or rule.quiet_end_hour is None or not tz_name:
        return None
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        return None  # an unknown zone is treated as unknown, not as a reason to hold back
    local = now.astimezone(tz)
    start, end = rule.quiet_start_hour, rule.quiet_end_hour
    hour = local.hour
    inside = (start <= hour or hour < end) if start > end else (start <= hour < end)
    if not inside:
        return None
    until = local.replace(hour=end, minute=0, second=0, microsecond=0)
    if until <= local:
        until += timedelta(days=1)
    return until


def check(
    conn: Connection, survey_key: str, customer_id: str | None, now: datetime, *,
    trigger_event_id: str | None = None, channel: str = "email",
) -> Verdict:  # fmt: skip
    """Whether an invitation to ``customer_id`` may go out now, and if not, why."""
    if customer_id is None:
        return Verdict(False, "unknown_customer")
    if people.erased(conn, customer_id):
        return Verdict(False, "erased")
    if is_unsubscribed(conn, customer_id):
        return Verdict(False, "unsubscribed")
    if trigger_event_id is not None:
        twice = conn.execute(
            sa.select(invitations.c.id)
            .where(
                invitations.c.status != "suppressed",
                invitations.c.trigger_event_id == trigger_event_id,
            )
            .limit(1)
        ).first()
        if twice is not None:
            return Verdict(False, "same_interaction")
    if channel == "email":
        address = people.email(conn, customer_id)
        if not address:
            return Verdict(False, "no_email")
        # A bounced address is held back like an unsubscribe, until the customer's current
        # address is another one.
        held = suppressions.reason_for(conn, "email", address)
        if held is not None:
            return Verdict(False, held)
    if channel == "sms":
        number = people.phone(conn, customer_id)
        if not number:
            return Verdict(False, "no_phone")
        held = suppressions.reason_for(conn, "sms", number)
        if held is not None:
            return Verdict(False, held)
    # Held back or never delivered (bounced, given up): no contact that fatigues anyone.
    live = invitations.c.status.not_in(["suppressed", "failed"])
    kind = conn.execute(sa.select(surveys.c.kind).where(surveys.c.key == survey_key)).scalar()
    rules = {r.scope: r for r in contact_rules_list(conn)}
    for scope in ("all", kind):
        rule = rules.get(scope or "")
        if rule is None or rule.min_days <= 0:
            continue
        recent = sa.select(invitations.c.id).where(
            live,
            invitations.c.customer_id == customer_id,
            invitations.c.created_at > now - timedelta(days=rule.min_days),
        )
        if scope != "all":
            recent = recent.where(
                invitations.c.survey_key.in_(sa.select(surveys.c.key).where(surveys.c.kind == kind))
            )
        if conn.execute(recent.limit(1)).first() is not None:
            return Verdict(False, "fatigue" if scope == "all" else f"fatigue_{scope}")
    tz = people.traits(conn, customer_id).get("timezone")
    until = _quiet_until(rules.get("all", DEFAULT_RULE), tz, now)
    if until is not None:
        return Verdict(False, None, until)
    return Verdict(True)

"""Durable distribution jobs: invite (fatigue checked at send time) and send the email.

A send that the mail server refuses for good (5xx at RCPT or DATA) is a hard bounce: the
invitation fails with the reason ``bounced`` and the address goes on the contact-suppression
ledger (``cxm.surveys.suppressions``), so no later invitation is attempted to it. A failure
worth retrying (4xx, a lost connection) is tried again through the jobs table with
exponential backoff, up to ``MAX_SEND_ATTEMPTS``.
"""

from __future__ import annotations

import datetime as dt
import secrets
import smtplib
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cxm.config import Settings, load_settings
from cxm.errors import Invalid
from cxm.mail import classify_failure, sender_domain
from cxm.store import jobs, utcnow
from cxm.surveys import bounces, email, fatigue, people, sms, suppressions
from cxm.surveys.service import (
    create_invitation,
    get_definition,
    invitation_link,
    is_unsubscribed,
    record_suppressed,
)
from cxm.surveys.tables import email_deliveries, invitations

INVITE = "surveys.invite"
SEND_EMAIL = "surveys.send_email"
READ_BOUNCES = "surveys.read_bounces"
BOUNCE_READ_MINUTES = 5
MAX_SEND_ATTEMPTS = 5


def unsubscribe_link(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/s/{token}/unsubscribe"


def invite(conn: Connection, payload: dict[str, Any], now: dt.datetime | None = None) -> str:
    """Run the contact rules for one planned invitation; returns sent | deferred | the reason."""
    now = now or utcnow()
    survey = payload["survey"]
    customer_id = payload.get("customer_id")
    channel = payload.get("channel", "email")
    common = {
        "customer_id": customer_id, "channel": channel, "touchpoint": payload.get("touchpoint"),
        "trigger_event_id": payload.get("trigger_event_id"),
        "trigger_rule_id": payload.get("trigger_rule_id"),
    }  # fmt: skip
    verdict = fatigue.check(
        conn, survey, customer_id, now, trigger_event_id=payload.get("trigger_event_id"),
        channel=channel,
    )  # fmt: skip
    if verdict.defer_until is not None:
        # Quiet hours: the same invitation, later; the key keeps it from being planned twice.
        base = payload.get("dedupe") or secrets.token_hex(8)
        key = f"{base}:quiet:{verdict.defer_until:%Y%m%d%H}"[:200]
        jobs.enqueue(conn, INVITE, payload | {"dedupe": base}, run_at=verdict.defer_until,
                     dedupe_key=key)  # fmt: skip
        return "deferred"
    if not verdict.send:
        record_suppressed(conn, survey, verdict.reason or "suppressed", now=now, **common)
        return verdict.reason or "suppressed"
    defn = get_definition(conn, survey)
    language = payload.get("language")
    if language not in defn.languages and customer_id:
        language = people.traits(conn, customer_id).get("language")
    inv = create_invitation(
        conn, survey, language=language if language in defn.languages else None,
        hidden=payload.get("hidden") or {}, now=now, **common,
    )  # fmt: skip
    if channel == "email":
        jobs.enqueue(conn, SEND_EMAIL, {"invitation_id": inv.id, "attempt": 1},
                     dedupe_key=f"survey-email:{inv.id}")  # fmt: skip
    elif channel == "sms":
        jobs.enqueue(conn, sms.SEND_SMS, {"invitation_id": inv.id, "attempt": 1},
                     dedupe_key=f"survey-sms:{inv.id}")  # fmt: skip
    return "sent"


def _record(
    conn: Connection, invitation_id: str, attempt: int, recipient: str, status: str,
    error: str | None, now: dt.datetime,
) -> None:  # fmt: skip
    conn.execute(
        email_deliveries.insert().values(
            id=secrets.token_hex(16), invitation_id=invitation_id, attempt=attempt,
            recipient=recipient, status=status, error=error, attempted_at=now,
        )
    )  # fmt: skip


def send_invitation_email(
    conn: Connection, payload: dict[str, Any], settings: Settings, now: dt.datetime | None = None
) -> str:
    """Send one invitation email; failures are recorded and retried with backoff."""
    now = now or utcnow()
    inv = conn.execute(
        sa.select(invitations).where(invitations.c.id == payload["invitation_id"])
    ).mappings().first()  # fmt: skip
    if inv is None or inv["status"] != "created":
        return "skipped"  # already sent, failed for good, or held back: never twice
    attempt = int(payload.get("attempt", 1))
    held = inv["customer_id"] is None or is_unsubscribed(conn, inv["customer_id"])
    if held or people.erased(conn, inv["customer_id"]):
        # An unsubscribe between planning and sending is honoured too.
        conn.execute(
            invitations.update().where(invitations.c.id == inv["id"])
            .values(status="suppressed", reason="unsubscribed" if held else "erased")
        )  # fmt: skip
        return "suppressed"
    recipient = people.email(conn, inv["customer_id"])
    held_back = "no_email" if not recipient else suppressions.reason_for(conn, "email", recipient)
    if held_back or not recipient:
        conn.execute(
            invitations.update().where(invitations.c.id == inv["id"])
            .values(status="suppressed", reason=held_back)
        )  # fmt: skip
        return "suppressed"
    defn = get_definition(conn, inv["survey_key"])
    language = inv["language"] or defn.default_language
    unsub = unsubscribe_link(settings.base_url, inv["token"])
    message = email.render(defn, language, invitation_link(settings.base_url, inv["token"]), unsub)
    msg_id = email.message_id(inv["id"], attempt, sender_domain(settings))
    try:
        email.send(settings, recipient, message, unsub, message_id=msg_id)
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        failure = classify_failure(exc, recipient)
        _record(conn, inv["id"], attempt, recipient,
                "bounced" if failure.permanent else "failed", failure.text, now)  # fmt: skip
        if failure.permanent:
            suppressions.record_bounce(conn, inv, recipient, "smtp", failure.status, now)
            return "bounced"
        if attempt >= MAX_SEND_ATTEMPTS:
            conn.execute(
                invitations.update().where(invitations.c.id == inv["id"])
                .values(status="failed", reason="send_failed")
            )  # fmt: skip
            return "failed"
        jobs.enqueue(
            conn, SEND_EMAIL, {"invitation_id": inv["id"], "attempt": attempt + 1},
            run_at=now + jobs.backoff(attempt),
            dedupe_key=f"survey-email:{inv['id']}:{attempt + 1}",
        )  # fmt: skip
        return "retry"
    _record(conn, inv["id"], attempt, recipient, "sent", None, now)
    conn.execute(
        invitations.update().where(invitations.c.id == inv["id"]).values(status="sent", sent_at=now)
    )
    return "sent"


def read_bounces(conn: Connection, settings: Settings) -> dict[str, int]:
    """Read the configured bounce maildir once (see ``cxm.surveys.bounces``); the counts.

    Messages are flagged as seen before the caller commits; reading a report twice changes
    nothing (one delivery row per report and recipient), so a failed commit loses at most
    the bounces of that pass. Raises ``Invalid`` when no maildir is configured or it is none.
    """
    if not settings.bounce_maildir:
        raise Invalid("no bounce mailbox is configured: set CXM_BOUNCE_MAILDIR to a maildir")
    path = Path(settings.bounce_maildir)
    report = bounces.read_maildir(conn, path)
    bounces.mark_seen(path, report.keys)
    return report.as_dict()


def schedule_bounce_reads(engine: Engine, settings: Settings | None = None) -> bool:
    """The periodic task: plan one read of the bounce maildir per ``BOUNCE_READ_MINUTES``
    when one is configured (``CXM_BOUNCE_MAILDIR``); whether a job was planned."""
    settings = settings or load_settings()
    if not settings.bounce_maildir:
        return False
    now = utcnow()
    slot = now.replace(minute=now.minute - now.minute % BOUNCE_READ_MINUTES)
    with engine.begin() as conn:
        planned = jobs.enqueue(
            conn, READ_BOUNCES, {}, dedupe_key=f"survey-bounces:{slot:%Y%m%d%H%M}", max_attempts=1
        )
    return planned is not None


def handlers(settings: Settings | None = None) -> dict[str, jobs.Handler]:
    """The surveys domain's job handlers (settings read from the environment when not given)."""

    def run_invite(conn: Connection, payload: dict[str, Any]) -> None:
        invite(conn, payload)

    def run_send(conn: Connection, payload: dict[str, Any]) -> None:
        send_invitation_email(conn, payload, settings or load_settings())

    def run_read_bounces(conn: Connection, payload: dict[str, Any]) -> None:
        read_bounces(conn, settings or load_settings())

    def run_send_sms(conn: Connection, payload: dict[str, Any]) -> None:
        sms.send_invitation_sms(conn, payload, settings or load_settings())

    return {
        INVITE: run_invite,
        SEND_EMAIL: run_send,
        sms.SEND_SMS: run_send_sms,
        READ_BOUNCES: run_read_bounces,
    }


def delivery_state(conn: Connection, trigger_event_id: str) -> dict[str, Any] | None:
    """The invitation planned for ``trigger_event_id`` (e.g. ``case:<id>``) and how its email
    fared: ``{status, reason, attempts, last_error, sent_at}``; None when none was planned yet.

    ``status`` is the invitation's (created, sent, failed, suppressed); ``attempts`` counts the
    hand-overs to the SMTP server, and ``last_error`` is the last failed one's message."""
    inv = conn.execute(
        sa.select(invitations)
        .where(invitations.c.trigger_event_id == trigger_event_id)
        .order_by(invitations.c.created_at.desc())
        .limit(1)
    ).mappings().first()  # fmt: skip
    if inv is None:
        return None
    tries = conn.execute(
        sa.select(email_deliveries.c.status, email_deliveries.c.error)
        .where(email_deliveries.c.invitation_id == inv["id"])
        .order_by(email_deliveries.c.attempt)
    ).all()  # fmt: skip
    errors = [t.error for t in tries if t.status != "sent" and t.error]
    return {
        "status": inv["status"],
        "reason": inv["reason"],
        "attempts": len(tries),
        "last_error": errors[-1] if errors else None,
        "sent_at": inv["sent_at"],
    }


def email_health(conn: Connection) -> dict[str, Any]:
    """Invitation emails at a glance: ``{sent, failed, bounced, retrying, gave_up,
    last_error, last_error_at}`` over every attempt recorded (``gave_up``: invitations that
    failed for good; ``retrying``: created ones with a failed attempt behind them)."""
    d = email_deliveries
    by_status: dict[str, int] = {
        str(k): int(v)
        for k, v in conn.execute(sa.select(d.c.status, sa.func.count()).group_by(d.c.status))
    }
    tried = sa.select(email_deliveries.c.invitation_id).where(email_deliveries.c.status == "failed")
    retrying = conn.execute(
        sa.select(sa.func.count()).select_from(invitations)
        .where(invitations.c.status == "created", invitations.c.id.in_(tried))
    ).scalar_one()  # fmt: skip
    gave_up = conn.execute(
        sa.select(sa.func.count()).select_from(invitations)
        .where(invitations.c.status == "failed")
    ).scalar_one()  # fmt: skip
    last = conn.execute(
        sa.select(email_deliveries.c.error, email_deliveries.c.attempted_at)
        .where(email_deliveries.c.status != "sent")
        .order_by(email_deliveries.c.attempted_at.desc())
        .limit(1)
    ).first()  # fmt: skip
    return {
        "sent": int(by_status.get("sent", 0)), "failed": int(by_status.get("failed", 0)),
        "bounced": int(by_status.get("bounced", 0)), "retrying": int(retrying),
        "gave_up": int(gave_up), "last_error": last.error if last else None,
        "last_error_at": last.attempted_at if last else None,
    }  # fmt: skip

"""Case notifications: emails over SMTP and signed webhooks, each a durable, retried job."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import smtplib
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cxm.actions import outbound, titles
from cxm.actions.tables import cases, notifications, webhook_deliveries, webhooks
from cxm.config import Settings, load_settings
from cxm.mail import classify_failure, send_mail
from cxm.org import auth
from cxm.org import service as org
from cxm.store import as_utc, jobs, utcnow
from cxm.store.bulk import insert_rows

EMAIL = "actions.email"
WEBHOOK = "actions.webhook"
MAX_ATTEMPTS = 6
SUBJECTS = {
    "case_opened": "New case: {title}",
    "case_assigned": "Case assigned to you: {title}",
    "sla_at_risk": "SLA at risk: {title}",
    "sla_breached": "SLA breached, escalated: {title}",
}


def sign(secret: str, body: bytes) -> str:
    """The X-Cxm-Signature header value: HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _user_email(conn: Connection, user_id: str | None) -> str | None:
    if not user_id:
        return None
    for u in auth.list_users(conn):
        if u["id"] == user_id:
            return str(u["email"])
    return None


def _team_lead(conn: Connection, team_key: str | None) -> list[str]:
    if team_key is None:
        # The CX lead's queue: everyone with the cx_lead role hears about it.
        return [
            str(u["email"])
            for u in auth.list_users(conn)
            if u["role"] == "cx_lead" and u["is_active"]
        ]
    lead = org.get_team(conn, team_key).lead_email
    return [lead] if lead else []


def recipients(conn: Connection, case: dict[str, Any], event: str) -> list[str]:
    """Who hears about ``event``: the assignee; the team lead when nobody is assigned or on
    a breach (escalation)."""
    assignee = _user_email(conn, case["assignee_id"])
    found: list[str] = [assignee] if assignee else []
    if event == "sla_breached" or assignee is None:
        found += _team_lead(conn, case["team_key"])
    return list(dict.fromkeys(found))


def raise_event(conn: Connection, case: dict[str, Any], event: str) -> int:
    """Plan every email and webhook for ``event`` on ``case``, in the caller's transaction."""
    return raise_events(conn, [case], event)


def raise_events(conn: Connection, many: list[dict[str, Any]], event: str) -> int:
    """Plan the emails and webhooks of ``event`` for many cases with a few queries."""
    stamp = secrets.token_hex(4)
    users = {str(u["id"]): u for u in auth.list_users(conn)}
    hooks = [
        h
        for h in conn.execute(sa.select(webhooks).where(webhooks.c.active)).mappings().all()
        if event in (h["events"] or [])
    ]
    leads: dict[str | None, list[str]] = {}
    rows: list[dict[str, Any]] = []
    for case in many:
        assignee = users.get(case["assignee_id"] or "")
        found: list[str] = [str(assignee["email"])] if assignee else []
        if event == "sla_breached" or assignee is None:
            if case["team_key"] not in leads:
                leads[case["team_key"]] = _team_lead(conn, case["team_key"])
            found += leads[case["team_key"]]
        for email in dict.fromkeys(found):
            payload = {"case_id": case["id"], "event": event, "recipient": email, "attempt": 1}
            rows.append(_job(EMAIL, payload, f"case-mail:{case['id']}:{event}:{email}:{stamp}"))
        for hook in hooks:
            payload = {
                "webhook_id": hook["id"],
                "case_id": case["id"],
                "event": event,
                "attempt": 1,
            }
            rows.append(
                _job(WEBHOOK, payload, f"case-hook:{hook['id']}:{case['id']}:{event}:{stamp}")
            )
    insert_rows(conn, jobs.jobs, rows)
    return len(rows)


def _job(
    kind: str, payload: dict[str, Any], key: str, run_at: dt.datetime | None = None
) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": secrets.token_hex(16),
        "kind": kind,
        "payload": payload,
        "dedupe_key": key[:200],
        "status": "pending",
        "attempts": 0,
        "max_attempts": 3,
        "last_error": None,
        "run_at": run_at or now,
        "created_at": now,
        "started_at": None,
        "finished_at": None,
    }


def case_json(conn: Connection, case_id: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(cases).where(cases.c.id == case_id)).mappings().first()
    if row is None:
        return None
    out: dict[str, Any] = {}
    for k, v in row.items():
        out[k] = as_utc(v).isoformat() if isinstance(v, dt.datetime) else v  # type: ignore[union-attr]
    titles.render(conn, [out])
    return out


def send_email(conn: Connection, payload: dict[str, Any], settings: Settings) -> str:
    """Send one case email; a failure is logged and retried with backoff."""
    case = case_json(conn, payload["case_id"])
    if case is None:
        return "skipped"
    event, recipient, attempt = payload["event"], payload["recipient"], int(payload["attempt"])
    subject = SUBJECTS.get(event, "Case update: {title}").format(title=case["title"])
    link = f"{settings.base_url.rstrip('/')}/cases/{case['id']}"
    names = titles.Names(conn)
    touchpoint = names.get("touchpoint", case["touchpoint_key"]) if case["touchpoint_key"] else "-"
    team = names.get("team", case["team_key"]) if case["team_key"] else "CX lead queue"
    text = (
        f"{subject}\n\nPriority {case['priority']}, status {case['status']}, "
        f"touchpoint {touchpoint}, team {team}.\n"
        f"First response due {case['first_response_due']}, resolution due "
        f"{case['resolution_due']} (UTC).\n\nOpen the case: {link}\n"
    )
    now = utcnow()
    row = {
        "id": secrets.token_hex(16),
        "case_id": case["id"],
        "event": event,
        "recipient": recipient,
        "attempted_at": now,
    }
    try:
        message_id = send_mail(
            settings,
            recipient,
            subject,
            text,
            headers={"X-Cxm-Case": case["id"], "X-Cxm-Event": event},
        )
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        conn.execute(
            notifications.insert().values(
                **row,
                status="failed",
                message_id=None,
                error=classify_failure(exc, recipient).text,
            )
        )
        if attempt < MAX_ATTEMPTS:
            conn.execute(
                jobs.jobs.insert().values(
                    **_job(
                        EMAIL,
                        payload | {"attempt": attempt + 1},
                        f"case-mail-retry:{case['id']}:{event}:{recipient}:{secrets.token_hex(4)}",
                        now + jobs.backoff(attempt),
                    )
                )
            )
        return "retry"
    conn.execute(
        notifications.insert().values(**row, status="sent", message_id=message_id, error=None)
    )
    return "sent"


def deliver_webhook(
    conn: Connection,
    payload: dict[str, Any],
    timeout: float = 10.0,
    settings: Settings | None = None,
) -> str:
    """POST one event to a webhook in its format; non-2xx or a network error is logged and
    retried with backoff, up to ``MAX_ATTEMPTS`` attempts.

    ``payload`` names the hook, the event and its subject: ``case_id`` for case events, or
    ``subject_kind`` (response | alert) and ``subject_id`` for facts queued by
    :func:`cxm.actions.outbound.queue_fact_events`. Returns delivered | failed | gave_up |
    skipped (the hook was removed or paused, or the subject no longer exists).
    """
    hook = (
        conn.execute(sa.select(webhooks).where(webhooks.c.id == payload["webhook_id"]))
        .mappings()
        .first()
    )
    if "case_id" in payload:
        kind, subject_id = "case", str(payload["case_id"])
        subject = case_json(conn, subject_id)
    else:
        kind, subject_id = str(payload["subject_kind"]), str(payload["subject_id"])
        subject = outbound.subject_json(conn, kind, subject_id)
    if hook is None or not hook["active"] or subject is None:
        return "skipped"
    attempt = int(payload["attempt"])
    event = str(payload["event"])
    now = utcnow()
    fmt = hook["format"] or "cxm"
    if fmt == "cxm":
        message: dict[str, Any] = {
            "event": event,
            "attempt": attempt,
            "sent_at": now.isoformat(),
            kind: subject,
        }
    else:
        base_url = (settings or load_settings()).base_url
        title, facts, link = outbound.summary(conn, kind, event, subject, base_url)
        message = (outbound.slack_body if fmt == "slack" else outbound.teams_body)(
            title, facts, link
        )
    body = json.dumps(message, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Cxm-Event": event,
        "X-Cxm-Signature": sign(hook["secret"], body),
    }
    code: int | None = None
    error: str | None = None
    try:
        answer = httpx.post(hook["url"], content=body, headers=headers, timeout=timeout)
        code = answer.status_code
        if not 200 <= code < 300:
            error = f"receiver answered {code}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    status = "delivered" if error is None else "failed" if attempt < MAX_ATTEMPTS else "gave_up"
    conn.execute(
        webhook_deliveries.insert().values(
            id=secrets.token_hex(16),
            webhook_id=hook["id"],
            event=event,
            case_id=subject_id if kind == "case" else None,
            subject_kind=kind,
            subject_id=subject_id,
            attempt=attempt,
            status=status,
            status_code=code,
            error=error[:2000] if error else None,
            attempted_at=now,
        )
    )
    if status == "failed":
        conn.execute(
            jobs.jobs.insert().values(
                **_job(
                    WEBHOOK,
                    payload | {"attempt": attempt + 1},
                    f"hook-retry:{hook['id']}:{kind}:{subject_id}:{event}:{attempt + 1}:"
                    f"{secrets.token_hex(4)}",
                    now + jobs.backoff(attempt),
                )
            )
        )
    return status

"""Survey invitations by SMS through an HTTP gateway: one adapter for Twilio-compatible APIs
and any gateway that takes a JSON body, configured by URL, auth and a body template.

Channels share one contact ledger: an SMS invitation is an ``invitations`` row like an email
one, so the contact-fatigue rules (:mod:`cxm.surveys.fatigue`) count contacts across email,
SMS and in-product surveys alike. Each attempt is logged beside email attempts in
``email_deliveries`` (recipient = the phone number).

Gateway answers: 2xx sent (Twilio's ``sid`` or a JSON ``id`` / ``message_id`` kept as the
provider's reference); 4xx refused for good (an invalid number, a blocked recipient: the
invitation fails and is never retried); 5xx or no answer retried with backoff up to
``MAX_SEND_ATTEMPTS``. Twilio's message resource: https://www.twilio.com/docs/messaging/api/message-resource
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cxm.config import Settings
from cxm.store import jobs, utcnow
from cxm.surveys import people, suppressions
from cxm.surveys.service import get_definition, invitation_link, is_unsubscribed
from cxm.surveys.tables import email_deliveries, invitations

SEND_SMS = "surveys.send_sms"
MAX_SEND_ATTEMPTS = 5
FORMATS = ("twilio", "json")


def _json_text(value: str) -> str:
    """``value`` escaped to sit inside a JSON string literal of the body template."""
    return json.dumps(value)[1:-1]


def request(settings: Settings, to: str, text: str) -> dict[str, Any]:
    """The gateway request (``url``, ``headers``, and ``data`` or ``content``) for one message.

    Raises ValueError for a missing URL, an unknown format or auth, or a body template that
    is not JSON once filled in.
    """
    if not settings.sms_url:
        raise ValueError("no SMS gateway: set CXM_SMS_URL")
    headers: dict[str, str] = {}
    if settings.sms_auth:
        kind, _, secret = settings.sms_auth.partition(":")
        if kind == "basic":
            token = base64.b64encode(secret.encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        elif kind == "bearer":
            headers["Authorization"] = f"Bearer {secret}"
        else:
            raise ValueError("CXM_SMS_AUTH is 'basic:USER:PASSWORD' or 'bearer:TOKEN'")
    if settings.sms_format == "twilio":
        data = {"To": to, "From": settings.sms_sender, "Body": text}
        return {"url": settings.sms_url, "headers": headers, "data": data}
    if settings.sms_format == "json":
        body = (
            settings.sms_body.replace("{to}", _json_text(to))
            .replace("{sender}", _json_text(settings.sms_sender))
            .replace("{text}", _json_text(text))
        )
        try:
            json.loads(body)
        except json.JSONDecodeError as exc:
            raise ValueError(f"CXM_SMS_BODY is not JSON once filled in: {exc.msg}") from None
        headers["Content-Type"] = "application/json"
        return {"url": settings.sms_url, "headers": headers, "content": body.encode()}
    raise ValueError(f"CXM_SMS_FORMAT '{settings.sms_format}' is not one of {', '.join(FORMATS)}")


def message_text(title: str, link: str) -> str:
    """The SMS: the survey's title and its link, one segment where the title allows."""
    return f"{title} {link}"


def _reference(answer: httpx.Response) -> str | None:
    try:
        doc = answer.json()
    except ValueError:
        return None
    if isinstance(doc, dict):
        for key in ("sid", "id", "message_id"):
            if doc.get(key):
                return str(doc[key])[:300]
    return None


def _log(conn: Connection, inv_id: str, attempt: int, to: str, status: str, error: str | None,
         now: dt.datetime) -> None:  # fmt: skip
    conn.execute(
        email_deliveries.insert().values(
            id=secrets.token_hex(16), invitation_id=inv_id, attempt=attempt, recipient=to,
            status=status, error=error, attempted_at=now,
        )
    )  # fmt: skip


def send_invitation_sms(
    conn: Connection, payload: dict[str, Any], settings: Settings, now: dt.datetime | None = None
) -> str:
    """Send one invitation by SMS; returns sent | retry | failed | suppressed | skipped."""
    now = now or utcnow()
    inv = conn.execute(
        sa.select(invitations).where(invitations.c.id == payload["invitation_id"])
    ).mappings().first()  # fmt: skip
    if inv is None or inv["status"] != "created":
        return "skipped"
    attempt = int(payload.get("attempt", 1))
    customer = inv["customer_id"]
    to = people.phone(conn, customer) if customer else None
    held = (
        "unsubscribed" if customer is None or is_unsubscribed(conn, customer)
        else "erased" if people.erased(conn, customer)
        else "no_phone" if not to
        else suppressions.reason_for(conn, "sms", to)
    )  # fmt: skip
    if held or not to:
        conn.execute(invitations.update().where(invitations.c.id == inv["id"])
                     .values(status="suppressed", reason=held))  # fmt: skip
        return "suppressed"
    defn = get_definition(conn, inv["survey_key"])
    language = inv["language"] or defn.default_language
    title = defn.title.get(language) or defn.title[defn.default_language]
    text = message_text(title, invitation_link(settings.base_url, inv["token"]))
    error: str | None = None
    permanent = False
    try:
        spec = request(settings, to, text)
        answer = httpx.post(spec.pop("url"), timeout=15, **spec)
        if 400 <= answer.status_code < 500:
            permanent = True
            error = f"gateway refused the message: {answer.status_code} {answer.text[:300]}"
        elif not 200 <= answer.status_code < 300:
            error = f"gateway answered {answer.status_code}"
    except ValueError as exc:
        permanent, error = True, str(exc)
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    if error is None:
        reference = _reference(answer)
        _log(conn, inv["id"], attempt, to, "sent", reference and f"gateway id {reference}", now)
        conn.execute(invitations.update().where(invitations.c.id == inv["id"])
                     .values(status="sent", sent_at=now))  # fmt: skip
        return "sent"
    _log(conn, inv["id"], attempt, to, "failed", error[:2000], now)
    if permanent or attempt >= MAX_SEND_ATTEMPTS:
        conn.execute(invitations.update().where(invitations.c.id == inv["id"])
                     .values(status="failed", reason="send_failed"))  # fmt: skip
        return "failed"
    jobs.enqueue(conn, SEND_SMS, {"invitation_id": inv["id"], "attempt": attempt + 1},
                 run_at=now + jobs.backoff(attempt),
                 dedupe_key=f"survey-sms:{inv['id']}:{attempt + 1}")  # fmt: skip
    return "retry"

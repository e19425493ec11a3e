"""Bounces that arrive later by mail: delivery status notifications (RFC 3464) in a maildir.

A receiving server may accept an invitation and refuse it afterwards, mailing a DSN back to
the sender. Pointed at the maildir those reports are delivered to (``CXM_BOUNCE_MAILDIR``;
fetchmail, getmail or the mail server's own delivery can fill it), ``read_maildir`` parses
each unread message with Python's ``email`` package. A recipient with ``Action: failed`` and
a permanent status (5.x.x, RFC 3463) is a hard bounce, handled like a 5xx at send time: the
invitation fails as ``bounced`` and the address goes on the suppression ledger. A delayed
or 4.x.x report is counted and otherwise ignored (the server is still trying). The report is
matched to the invitation by the original Message-ID that the DSN returns (its
``text/rfc822-headers`` or ``message/rfc822`` part), otherwise to the latest invitation sent
to that address. IMAP is not read directly.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import mailbox
from dataclasses import dataclass, field
from email.message import Message
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cxm.errors import Invalid
from cxm.store import utcnow
from cxm.store.bulk import insert_rows
from cxm.surveys import people
from cxm.surveys.email import invitation_of
from cxm.surveys.suppressions import record_bounce
from cxm.surveys.tables import email_deliveries, invitations


@dataclass(frozen=True)
class DsnRecipient:
    """One per-recipient block of a DSN: the address, its action and RFC 3463 status."""

    address: str
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # e.g. 5.1.1
    original_message_id: str | None

    @property
    def permanent(self) -> bool:
        """A hard bounce: the server gave up (``failed``) with a permanent (5.x.x) status."""
        return self.action == "failed" and self.status.startswith("5")


@dataclass
class BounceReport:
    """What one pass over the maildir did (counts)."""

    read: int = 0
    not_dsn: int = 0
    hard: int = 0
    soft: int = 0
    unmatched: int = 0
    keys: list[str] = field(default_factory=list)  # maildir keys to mark as seen

    def as_dict(self) -> dict[str, int]:
        return {
            "read": self.read, "not_dsn": self.not_dsn, "hard_bounces": self.hard,
            "soft_or_delayed": self.soft, "unmatched": self.unmatched,
        }  # fmt: skip


def _address(value: str | None) -> str:
    """``rfc822; a@b`` (the address-type prefix of RFC 3464) → ``a@b``."""
    text = str(value or "")
    kind, sep, rest = text.partition(";")
    return parseaddr((rest if sep else kind).strip())[1].strip().lower()


def _original_message_id(msg: Message) -> str | None:
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
            if not text:
                text = str(part.get_payload())
            found = email.message_from_string(text).get("Message-ID")
            if found:
                return str(found)
        if kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                found = inner[0].get("Message-ID")
                if found:
                    return str(found)
    return None


def parse_dsn(msg: Message) -> list[DsnRecipient]:
    """The per-recipient blocks of a DSN (``multipart/report; report-type=delivery-status``,
    RFC 3464); an empty list for any other message. Python's ``email`` parses the
    ``message/delivery-status`` part into header blocks: the first is per message, the rest
    per recipient."""
    if msg.get_content_type() != "multipart/report":
        return []
    original = _original_message_id(msg)
    found: list[DsnRecipient] = []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        for block in blocks[1:]:
            if not isinstance(block, Message):
                continue
            address = _address(block.get("Final-Recipient") or block.get("Original-Recipient"))
            if not address:
                continue
            action = str(block.get("Action", "")).strip().lower()
            status = str(block.get("Status", "")).strip().split(" ")[0]
            found.append(DsnRecipient(address, action, status, original))
    return found


def _invitation_for(conn: Connection, rcpt: DsnRecipient) -> dict[str, Any] | None:
    named = invitation_of(rcpt.original_message_id)
    if named is not None:
        row = conn.execute(
            sa.select(invitations).where(invitations.c.id == named[0])
        ).mappings().first()  # fmt: skip
        if row is not None:
            return dict(row)
    customer_id = people.find(conn, f"email:{rcpt.address}")
    if customer_id is None:
        return None
    sent = (
        sa.select(invitations)
        .where(
            invitations.c.customer_id == customer_id,
            invitations.c.channel == "email",
            invitations.c.status.in_(["sent", "failed"]),
        )
        .order_by(invitations.c.sent_at.desc().nulls_last(), invitations.c.created_at.desc())
        .limit(1)
    )
    row = conn.execute(sent).mappings().first()
    return dict(row) if row is not None else None


def record_dsn(
    conn: Connection, msg: Message, report_id: str, now: dt.datetime
) -> tuple[int, int, int]:
    """Apply one DSN: ``(hard bounces, soft or delayed, unmatched)``. Idempotent per report:
    a delivery row keyed by ``report_id`` and recipient is written once."""
    hard = soft = unmatched = 0
    for rcpt in parse_dsn(msg):
        if not rcpt.permanent:
            soft += 1
            continue
        inv = _invitation_for(conn, rcpt)
        if inv is None:
            unmatched += 1
            continue
        row_id = hashlib.sha256(f"dsn|{report_id}|{rcpt.address}".encode()).hexdigest()[:32]
        named = invitation_of(rcpt.original_message_id)
        insert_rows(
            conn, email_deliveries,
            [{"id": row_id, "invitation_id": inv["id"], "attempt": named[1] if named else 0,
              "recipient": rcpt.address, "status": "bounced",
              "error": f"DSN: action {rcpt.action}, status {rcpt.status}",
              "attempted_at": now}],
            ignore=True,
        )  # fmt: skip
        record_bounce(conn, inv, rcpt.address, "dsn", rcpt.status, now)  # as a 5xx at send
        hard += 1
    return hard, soft, unmatched


def read_maildir(conn: Connection, path: Path, now: dt.datetime | None = None) -> BounceReport:
    """Process every unseen message of the maildir at ``path``; the caller commits, then
    calls ``mark_seen`` with ``report.keys``. Raises ``Invalid`` when ``path`` is no maildir."""
    if not (path / "new").is_dir() or not (path / "cur").is_dir():
        raise Invalid(f"'{path}' is not a maildir (it needs new/ and cur/ folders)")
    now = now or utcnow()
    box = mailbox.Maildir(path, factory=None, create=False)
    report = BounceReport()
    for key in box.iterkeys():
        message = box.get_message(key)
        if "S" in message.get_flags():
            continue
        report.read += 1
        report.keys.append(key)
        parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.compat32)
        if not parse_dsn(parsed):
            report.not_dsn += 1
            continue
        report_id = str(parsed.get("Message-ID") or key)
        hard, soft, unmatched = record_dsn(conn, parsed, report_id, now)
        report.hard += hard
        report.soft += soft
        report.unmatched += unmatched
    return report


def mark_seen(path: Path, keys: list[str]) -> None:
    """Flag processed messages as seen (moved to cur/ with the ``S`` flag)."""
    box = mailbox.Maildir(path, factory=None, create=False)
    for key in keys:
        try:
            message = box.get_message(key)
        except KeyError:
            continue  # removed meanwhile
        message.set_subdir("cur")
        message.add_flag("S")
        box[key] = message

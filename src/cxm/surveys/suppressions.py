"""The contact-suppression ledger: customers and addresses no invitation may go to, and why.

An unsubscribe is a row for the customer on every channel (reason ``unsubscribed``, no
address).

A hard bounce (the receiving server refuses an address for good: a 5xx reply at RCPT or DATA,
or a DSN with action ``failed`` and a 5.x.x status) puts the address on the ledger with the
reason ``bounced``. Every later invitation to that address is recorded as suppressed with the
same reason, exactly like an unsubscribe, until the customer gives a new address: the ledger
is keyed by address, so the customer's current address (``cxm.customers.contacts``) moving
on releases them, and by customer, so a merge of customers can move their rows. Erasure keeps
only a SHA-256 digest of the address, which still holds the address back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Sequence
from typing import Any

import ibis
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cxm.store import analytics as backend
from cxm.store import utcnow
from cxm.surveys.tables import contact_suppressions, invitations

BOUNCED = "bounced"
UNSUBSCRIBED = "unsubscribed"
EVERY_CHANNEL = "all"  # an unsubscribe holds on every channel and address


def digest(address: str) -> str:
    """The form an address is kept in after its owner was erased: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(address.strip().lower().encode()).hexdigest()


def suppress(
    conn: Connection, *, channel: str, address: str, reason: str, source: str,
    customer_id: str | None = None, status_code: str | None = None,
    survey_key: str | None = None, invitation_id: str | None = None,
    now: dt.datetime | None = None,
) -> bool:  # fmt: skip
    """Put ``address`` of ``channel`` on the ledger for ``reason``; returns False when it was
    already there for that reason (the first record is kept)."""
    address = address.strip().lower()
    if reason_for(conn, channel, address) == reason:
        return False
    conn.execute(
        contact_suppressions.insert().values(
            id=secrets.token_hex(16), customer_id=customer_id, channel=channel, address=address,
            reason=reason, source=source, status_code=status_code, survey_key=survey_key,
            invitation_id=invitation_id, created_at=now or utcnow(),
        )
    )  # fmt: skip
    return True


def record_bounce(
    conn: Connection, inv: Any, recipient: str, source: str, status_code: str | None,
    now: dt.datetime,
) -> None:  # fmt: skip
    """A hard bounce of invitation ``inv`` (a row of the invitations table) to ``recipient``,
    reported by ``source`` (``smtp`` at send time, ``dsn`` later by mail): the invitation
    fails as ``bounced`` and the address goes on the ledger."""
    conn.execute(
        invitations.update().where(invitations.c.id == inv["id"])
        .values(status="failed", reason=BOUNCED)
    )  # fmt: skip
    suppress(
        conn, channel="email", address=recipient, reason=BOUNCED, source=source,
        customer_id=inv["customer_id"], status_code=status_code, survey_key=inv["survey_key"],
        invitation_id=inv["id"], now=now,
    )  # fmt: skip


def unsubscribe(
    conn: Connection, customer_id: str, source: str, now: dt.datetime | None = None
) -> None:
    """No survey reaches this customer again, on any channel: one ledger row per customer
    (unsubscribing again keeps one row, with the latest time)."""
    mine = sa.and_(
        contact_suppressions.c.customer_id == customer_id,
        contact_suppressions.c.reason == UNSUBSCRIBED,
    )
    conn.execute(contact_suppressions.delete().where(mine))
    conn.execute(
        contact_suppressions.insert().values(
            id=secrets.token_hex(16), customer_id=customer_id, channel=EVERY_CHANNEL,
            address=None, reason=UNSUBSCRIBED, source=source, status_code=None,
            survey_key=None, invitation_id=None, created_at=now or utcnow(),
        )
    )  # fmt: skip


def is_unsubscribed(conn: Connection, customer_id: str) -> bool:
    """Whether the customer unsubscribed (from every survey, on every channel)."""
    found = conn.execute(
        sa.select(contact_suppressions.c.id)
        .where(
            contact_suppressions.c.customer_id == customer_id,
            contact_suppressions.c.reason == UNSUBSCRIBED,
        )
        .limit(1)
    ).first()
    return found is not None


def reason_for(conn: Connection, channel: str, address: str) -> str | None:
    """Why ``address`` of ``channel`` may not be contacted (``bounced``, ...), or None."""
    address = address.strip().lower()
    row = conn.execute(
        sa.select(contact_suppressions.c.reason)
        .where(
            contact_suppressions.c.channel == channel,
            contact_suppressions.c.address.in_([address, digest(address)]),
        )
        .order_by(contact_suppressions.c.created_at)
        .limit(1)
    ).first()
    return str(row.reason) if row else None


def forget(conn: Connection, customer_ids: Sequence[str], addresses: Sequence[str]) -> int:
    """Privacy erasure: keep only digests of these customers' (and these) addresses, so a
    bounced address stays held back without being readable. Returns the rows changed."""
    ids = list(customer_ids)
    wanted = {a.strip().lower() for a in addresses}
    rows = conn.execute(
        sa.select(contact_suppressions.c.id, contact_suppressions.c.address).where(
            sa.or_(
                contact_suppressions.c.customer_id.in_(ids),
                contact_suppressions.c.address.in_(sorted(wanted)),
            )
        )
    ).all()
    changed = 0
    for row in rows:
        if row.address and not row.address.startswith("sha256:"):
            conn.execute(
                contact_suppressions.update()
                .where(contact_suppressions.c.id == row.id)
                .values(address=digest(row.address))
            )
            changed += 1
    return changed


def ledger(conn: Connection, survey: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """The newest ledger rows (optionally of one survey), as dicts."""
    query = sa.select(contact_suppressions).order_by(contact_suppressions.c.created_at.desc())
    if survey is not None:
        query = query.where(contact_suppressions.c.survey_key == survey)
    return [dict(r) for r in conn.execute(query.limit(limit)).mappings()]


def per_survey(engine: Engine) -> dict[str, dict[str, int]]:
    """Per survey: ``bounced`` (invitations the mail server refused for good, at send time or
    later by DSN), ``suppressed_bounced`` (invitations held back because the address had
    bounced before) and ``suppressed`` (every invitation held back, for any reason)."""
    con = backend(engine)
    inv = con.table("survey_invitations")
    one, zero = ibis.literal(1, type="int64"), ibis.literal(0, type="int64")
    bounced = inv.reason == BOUNCED
    counts = inv.group_by(survey_key=inv.survey_key.cast("string")).aggregate(
        bounced=((inv.status == "failed") & bounced).ifelse(one, zero).sum(),
        suppressed_bounced=((inv.status == "suppressed") & bounced).ifelse(one, zero).sum(),
        suppressed=(inv.status == "suppressed").ifelse(one, zero).sum(),
    )
    return {
        r["survey_key"]: {
            k: int(r[k] or 0) for k in ("bounced", "suppressed_bounced", "suppressed")
        }
        for r in counts.to_pyarrow().to_pylist()
    }

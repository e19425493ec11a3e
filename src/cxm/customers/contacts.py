"""A customer's current contact details: the address to reach them at, chosen by recency.

A customer may hold several identifiers of one kind (an old and a new email address). All of
them keep matching events to the customer, but only one is the address to write to: the one
seen most recently. "Seen" means the last event of the log that carried the identifier, or,
for an identifier no stored event carries (written by ``resolve``), when it was first linked;
the trait of the same name (``email``, ``phone``), when it names one of those identifiers,
counts as seeing it when the trait was set. On a tie the trait wins.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cxm.customers.service import current_id, normalise
from cxm.customers.tables import customer_identities, customer_traits
from cxm.errors import Invalid
from cxm.interactions.facts import interactions
from cxm.store import as_utc

CONTACT_KINDS = ("email", "phone")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _at(value: dt.datetime | None) -> dt.datetime:
    return as_utc(value) or _EPOCH


def contact_candidates(
    conn: Connection, customer_id: str, kind: str
) -> list[tuple[str, dt.datetime, int]]:
    """``(value, last seen (aware UTC), priority)`` of each address of ``kind`` the customer
    holds, newest first (priority 1 for the trait, 0 for an identifier).

    Raises ``Invalid`` for a kind that is not a contact kind (``email``, ``phone``).
    """
    if kind not in CONTACT_KINDS:
        raise Invalid(f"'{kind}' is not a contact kind; known: {', '.join(CONTACT_KINDS)}")
    cid = current_id(conn, customer_id)
    seen: dict[str, tuple[dt.datetime, int]] = {}
    linked = conn.execute(
        sa.select(customer_identities.c.value, customer_identities.c.first_seen).where(
            customer_identities.c.customer_id == cid, customer_identities.c.kind == kind
        )
    ).all()
    if not linked:
        return []
    for value, first in linked:
        seen[value] = (_at(first), 0)
    # The customer's log read first by its customer_id index (DuckDB uses it only for a lone
    # equality), then grouped by address.
    column = interactions.c.email if kind == "email" else interactions.c.phone
    mine = (
        sa.select(column.label("value"), interactions.c.event_time)
        .where(interactions.c.customer_id == cid)
        .cte("mine")
        .prefix_with("MATERIALIZED")
    )
    last = conn.execute(
        sa.select(mine.c.value, sa.func.max(mine.c.event_time))
        .where(mine.c.value.is_not(None))
        .group_by(mine.c.value)
    ).all()
    for value, at in last:
        if value in seen:
            seen[value] = (max(seen[value][0], _at(at)), 0)
    trait = conn.execute(
        sa.select(customer_traits.c.value, customer_traits.c.set_at).where(
            customer_traits.c.customer_id == cid, customer_traits.c.name == kind
        )
    ).first()
    if trait is not None and trait.value:
        value = normalise(kind, trait.value)
        if value in seen:
            # The trait names the address the customer gave last; it competes on its time.
            seen[value] = (max(_at(trait.set_at), seen[value][0]), 1)
    order = sorted(seen.items(), key=lambda kv: (kv[1][0], kv[1][1], kv[0]), reverse=True)
    return [(value, at, prio) for value, (at, prio) in order]


def current_contact(conn: Connection, customer_id: str, kind: str) -> str | None:
    """The address of ``kind`` (``email`` or ``phone``) to reach the customer at now: the most
    recently seen one of their identifiers of that kind (see the module docstring), or None
    when they have none. A trait naming an address that is not their identifier (another
    customer's, say) is never used.
    """
    found = contact_candidates(conn, customer_id, kind)
    return found[0][0] if found else None

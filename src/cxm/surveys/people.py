"""What surveys need to know about a customer, asked of the customers domain's service."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.engine import Connection

from cxm.customers import service as customers
from cxm.customers.contacts import current_contact


def resolve(conn: Connection, identifiers: dict[str, str], seen_at: dt.datetime) -> str:
    """The customer id for these identifiers (created when none matches)."""
    return customers.resolve(conn, identifiers, seen_at)


def resolve_many(conn: Connection, requests: list[tuple[dict[str, str], dt.datetime]]) -> list[str]:
    """Customer ids for many identifier sets at once (file imports)."""
    return customers.resolve_many(conn, requests) if requests else []


def find(conn: Connection, identifier: str) -> str | None:
    """A customer by ``kind:value`` or a bare email, phone or id."""
    return customers.find(conn, identifier)


def email(conn: Connection, customer_id: str) -> str | None:
    """The address to mail the customer at: their most recently seen email (never the
    alphabetically first); None when they have none."""
    return current_contact(conn, customer_id, "email")


def phone(conn: Connection, customer_id: str) -> str | None:
    """The number to text the customer at: their most recently seen phone (E.164 as stored);
    None when they have none."""
    return current_contact(conn, customer_id, "phone")


def traits(conn: Connection, customer_id: str) -> dict[str, str]:
    return dict(customers.traits(conn, customer_id))


def erased(conn: Connection, customer_id: str) -> bool:
    """Whether the customer asked to be erased (no survey may reach them again)."""
    row = customers.get(conn, customer_id)
    return row is not None and row["erased_at"] is not None

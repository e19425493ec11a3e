"""Display names for the keys and ids that facts carry (touchpoints, teams, departments,
surveys, customers), read once per request or command, for pages and CLI tables alike.

Keys stay where a person types them (filters, YAML, URLs, ids to paste back); everywhere else a
table asks ``names.touchpoint(key)`` and gets the name, or the key itself when no name is known.
This module sits below the domains' command lines, so every CLI table can use it; the web adds
the kinds that live in higher layers (themes, metrics) in ``cxm.web.names``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar

from sqlalchemy.engine import Connection, Engine

from cxm.org.scope import MASK

Reader = Callable[[Connection], dict[str, str]]

# Dimensions whose values are keys with a name of their own (metric slices, --by columns).
NAMED_DIMENSIONS = ("touchpoint", "department", "team", "survey")


def humanize(key: str) -> str:
    """A key nobody named, written as words: ``staff_friendliness`` → "Staff friendliness"."""
    words = key.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:]


# Identifier kinds as people say them; another kind (``loyalty_id``) reads as words.
IDENTITY_KINDS = {"email": "Email", "phone": "Phone", "user_id": "User id",
                  "anonymous_id": "Anonymous id", "crm_id": "CRM id"}  # fmt: skip


# Case statuses as the case pages and CLI tables show them (``cxm.actions.schemas.STATUSES``).
CASE_STATUSES = {
    "new": "New",
    "in_progress": "In progress",
    "waiting_on_customer": "Waiting on customer",
    "resolved": "Resolved",
    "closed": "Closed",
}


def case_status(key: str | None, empty: str = "—") -> str:
    """A case status's name: ``in_progress`` → "In progress"; an unknown one as it is."""
    if not key:
        return empty
    return CASE_STATUSES.get(key, key)


def sla_state(key: str | None, empty: str = "—") -> str:
    """A case's SLA state as the case inbox shows it: ``at_risk`` → "at risk", ``ok`` → "ok"."""
    return key.replace("_", " ") if key else empty


def period_label(value: object, grain: str) -> str:
    """A period as people say it: 2026-09 for a month, 2026 Q3 for a quarter, 2026 for a year,
    the date (2026-09-07) for a day or week. ``value`` is the period's first day (a date, a
    datetime or its ISO text)."""
    text = str(value)
    if grain == "quarter" and len(text) >= 7:
        return f"{text[:4]} Q{(int(text[5:7]) - 1) // 3 + 1}"
    if grain == "year":
        return text[:4]
    return text[:7] if grain == "month" else text[:10]


def identity_kind(kind: str) -> str:
    """An identifier kind's name: ``crm_id`` → "CRM id", ``loyalty_id`` → "Loyalty id"."""
    return IDENTITY_KINDS.get(kind) or humanize(kind)


def _touchpoints(conn: Connection) -> dict[str, str]:
    from cxm.org import service as org

    return {t.key: t.name for t in org.list_touchpoints(conn)}


def _teams(conn: Connection) -> dict[str, str]:
    from cxm.org import service as org

    return {t.key: t.name for t in org.list_teams(conn)}


def _departments(conn: Connection) -> dict[str, str]:
    from cxm.org import service as org

    return {d.key: d.name for d in org.list_departments(conn)}


def _surveys(conn: Connection) -> dict[str, str]:
    from cxm.surveys import service as surveys

    return {s.key: s.name or s.title for s in surveys.list_surveys(conn)}


class Names:
    """Name look-ups for one request or command; each kind is read once, on first use.

    ``source`` is a connection, or an engine that a connection is opened on when a name is
    first asked for. ``personal`` is False for roles that may not see personal data: customer
    names then read as a mask.
    """

    readers: ClassVar[dict[str, Reader]] = {
        "touchpoint": _touchpoints,
        "team": _teams,
        "department": _departments,
        "survey": _surveys,
    }

    def __init__(self, source: Connection | Engine, *, personal: bool = True) -> None:
        self._source = source
        self._personal = personal
        self._maps: dict[str, dict[str, str]] = {}
        self._customers: dict[str, str] = {}

    def _read(self, read: Reader) -> dict[str, str]:
        if isinstance(self._source, Connection):
            return read(self._source)
        with self._source.connect() as conn:
            return read(conn)

    def _map(self, kind: str) -> dict[str, str]:
        if kind not in self._maps:
            self._maps[kind] = self._read(self.readers[kind])
        return self._maps[kind]

    def _name(self, kind: str, key: str | None, empty: str) -> str:
        if not key:
            return empty
        return self._map(kind).get(key) or key

    def touchpoint(self, key: str | None, empty: str = "—") -> str:
        return self._name("touchpoint", key, empty)

    def team(self, key: str | None, empty: str = "—") -> str:
        return self._name("team", key, empty)

    def department(self, key: str | None, empty: str = "—") -> str:
        return self._name("department", key, empty)

    def survey(self, key: str | None, empty: str = "—") -> str:
        return self._name("survey", key, empty)

    def of(self, dimension: str, key: str | None, empty: str = "—") -> str:
        """The name of ``key`` as a value of ``dimension`` (one of ``NAMED_DIMENSIONS``);
        a value of any other dimension (a channel, a segment) is returned as it is."""
        if dimension in NAMED_DIMENSIONS:
            return self._name(dimension, key, empty)
        return key if key else empty

    def history_value(self, field: str | None, value: str | None, empty: str = "") -> str:
        """A case history entry's old or new value as the case page and ``cxm cases show`` word
        it: a team's name (the CX lead's queue by name), a status's name, an SLA state or a
        follow-up state in words; any other value as it is."""
        if not value:
            return empty
        if field == "team":
            return "CX lead queue" if value == "cx_lead_queue" else self.team(value)
        if field == "status":
            return case_status(value)
        if field == "sla_state":
            return sla_state(value)
        return value.replace("_", " ") if field == "followup" else value

    def slice(self, text: str | None, empty: str = "whole company") -> str:
        """A metric slice ``department=service,touchpoint=delivery`` with names, comma-joined."""
        parts = []
        for part in filter(None, (text or "").split(",")):
            dim, _, value = part.partition("=")
            if dim in NAMED_DIMENSIONS:
                parts.append(self._name(dim, value, value))
            else:
                parts.append(f"{humanize(dim.removeprefix('trait:'))} {value}")
        return ", ".join(parts) or empty

    def words(self, key: str | None, empty: str = "—") -> str:
        """A key that has no name of its own (a channel, a reason), written as words."""
        return humanize(key) if key else empty

    def identity_kind(self, kind: str) -> str:
        """An identifier kind's name (``crm_id`` → "CRM id")."""
        return identity_kind(kind)

    def prefetch(self, customer_ids: Iterable[str | None]) -> str:
        """Read the names of these customers in one query (returns "" for use in templates)."""
        wanted = {c for c in customer_ids if c and c != MASK and c not in self._customers}
        if wanted and self._personal:
            from cxm.customers import service as customers

            found = self._read(lambda conn: customers.display_names(conn, sorted(wanted)))
            for cid in wanted:
                self._customers[cid] = found.get(cid) or ""
        return ""

    def customer(
        self, customer_id: str | None, empty: str = "anonymous", unnamed: str | None = None
    ) -> str:
        """The customer's name (trait ``name``, else email); for a customer with neither,
        ``unnamed`` when given (a table that shows the id beside it), else "Customer 1a2b3c4d"."""
        if not customer_id:
            return empty
        if not self._personal or customer_id == MASK:
            return MASK
        if customer_id not in self._customers:
            self.prefetch([customer_id])
        found = self._customers[customer_id]
        if found:
            return found
        return f"Customer {customer_id[:8]}" if unnamed is None else unnamed

"""Display names for the keys and ids that facts carry, so pages and CLI tables show a person
"Last mile" and "Relationship survey" instead of ``last_mile`` and ``relationship_nps``.

Keys stay where a person types them (filters, YAML, URLs); everywhere else a page asks
``names.touchpoint(key)`` and gets the name, or the key itself when no name is known.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.engine import Connection, Engine

from cxm.org.scope import MASK


def humanize(key: str) -> str:
    """A key nobody named, written as words: ``staff_friendliness`` → "Staff friendliness"."""
    words = key.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:]


# What each kind of durable job does, as the status page names it.
JOB_KINDS = {
    "actions.email": "Case notification emails",
    "actions.sla": "Case SLA checks",
    "actions.webhook": "Case webhook deliveries",
    "surveys.invite": "Survey invitations",
    "surveys.send_email": "Survey invitation emails",
    "surveys.send_sms": "Survey invitation text messages",
    "surveys.read_bounces": "Reading bounced emails",
    "text.annotate": "Text analysis of comments",
    "text.discover": "Theme discovery",
}


# Roles as the people who hold them say them.
ROLES = {"admin": "Admin", "cx_lead": "CX lead", "manager": "Manager", "agent": "Agent",
         "viewer": "Viewer", "partner": "Partner"}  # fmt: skip


def role_name(key: str) -> str:
    """A role's name: ``cx_lead`` → "CX lead"."""
    return ROLES.get(key) or humanize(key)


def job_kind(kind: str) -> str:
    """A job kind's name: ``actions.sla`` → "Case SLA checks"; an unknown one as words."""
    return JOB_KINDS.get(kind) or humanize(kind.replace(".", " "))


class Names:
    """Name look-ups for one request or command; each kind is read once, on first use.

    ``source`` is a connection, or an engine that a connection is opened on when a name is
    first asked for. ``personal`` is False for roles that may not see personal data: customer
    names then read as a mask.
    """

    def __init__(self, source: Connection | Engine, *, personal: bool = True) -> None:
        self._source = source
        self._personal = personal
        self._maps: dict[str, dict[str, str]] = {}
        self._customers: dict[str, str] = {}

    def _read(self, read: Callable[[Connection], dict[str, str]]) -> dict[str, str]:
        if isinstance(self._source, Connection):
            return read(self._source)
        with self._source.connect() as conn:
            return read(conn)

    def _map(self, kind: str) -> dict[str, str]:
        if kind not in self._maps:
            self._maps[kind] = self._read(_READERS[kind])
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

    def theme(self, key: str | None, empty: str = "—") -> str:
        if not key:
            return empty
        return self._map("theme").get(key) or humanize(key)

    def metric(self, key: str) -> str:
        """A metric as a person reads it: ``nps`` → "NPS", ``csat_mean`` → "CSAT mean"."""
        from cxm.actions.titles import metric_label

        return metric_label(key)

    def slice(self, text: str | None, empty: str = "whole company") -> str:
        """A metric slice ``department=service,touchpoint=delivery`` with names, comma-joined."""
        parts = []
        for part in filter(None, (text or "").split(",")):
            dim, _, value = part.partition("=")
            if dim in ("touchpoint", "department", "team"):
                parts.append(self._name(dim, value, value))
            else:
                parts.append(f"{humanize(dim.removeprefix('trait:'))} {value}")
        return ", ".join(parts) or empty

    def words(self, key: str | None, empty: str = "—") -> str:
        """A key that has no name of its own (a channel, a reason), written as words."""
        return humanize(key) if key else empty

    def prefetch(self, customer_ids: Iterable[str | None]) -> str:
        """Read the names of these customers in one query (returns "" for use in templates)."""
        wanted = {c for c in customer_ids if c and c != MASK and c not in self._customers}
        if wanted and self._personal:
            from cxm.customers import service as customers

            found = self._read(lambda conn: customers.display_names(conn, sorted(wanted)))
            for cid in wanted:
                self._customers[cid] = found.get(cid) or f"Customer {cid[:8]}"
        return ""

    def customer(self, customer_id: str | None, empty: str = "anonymous") -> str:
        """The customer's name (trait ``name``, else email), or "Customer 1a2b3c4d"."""
        if not customer_id:
            return empty
        if not self._personal or customer_id == MASK:
            return MASK
        if customer_id not in self._customers:
            self.prefetch([customer_id])
        return self._customers[customer_id]


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


def _themes(conn: Connection) -> dict[str, str]:
    from cxm.text import taxonomy

    return {t.key: t.name for t in taxonomy.list_themes(conn)}


_READERS: dict[str, Callable[[Connection], dict[str, str]]] = {
    "touchpoint": _touchpoints,
    "team": _teams,
    "department": _departments,
    "survey": _surveys,
    "theme": _themes,
}


def names_for(source: Connection | Engine, scope: Any) -> Names:
    """Names for a caller with ``scope`` (customer names only where it sees personal data)."""
    return Names(source, personal=bool(getattr(scope, "personal_data", False)))

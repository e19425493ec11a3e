"""What each role may see, as data the queries apply (never as something hidden in a page).

admin and cx_lead see everything; a manager sees their department's touchpoints, the
responses given there and the customers who touched them; an agent sees their team's cases and
the customers in them; a viewer sees aggregates only, with personal data masked.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cxm.org.auth import Principal
from cxm.org.tables import touchpoints

MASK = "•••"


@dataclass(frozen=True)
class Scope:
    role: str
    department_key: str | None = None
    team_key: str | None = None

    @property
    def everything(self) -> bool:
        return self.role in ("admin", "cx_lead")

    @property
    def personal_data(self) -> bool:
        """Whether names, emails, phones and free text may be shown."""
        return self.role != "viewer"

    @property
    def by_department(self) -> bool:
        return self.role == "manager"

    @property
    def by_team(self) -> bool:
        return self.role == "agent"


def scope_for(who: Principal) -> Scope:
    return Scope(role=who.role, department_key=who.department_key, team_key=who.team_key)


def visible_touchpoints(conn: Connection, scope: Scope) -> set[str] | None:
    """The touchpoint keys a scope covers; None means all of them."""
    if not scope.by_department:
        return None
    rows = conn.execute(
        sa.select(touchpoints.c.key).where(touchpoints.c.department_key == scope.department_key)
    )
    return set(rows.scalars())


def mask(value: str | None, scope: Scope) -> str | None:
    """Personal data for scopes that may see it, a mask for the rest."""
    if value is None or scope.personal_data:
        return value
    return MASK

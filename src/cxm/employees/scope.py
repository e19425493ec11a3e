"""What each principal may read of the employee directory (one helper, used everywhere)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cxm.employees.tables import employee_teams, employees
from cxm.errors import Forbidden, NotFound
from cxm.org.auth import Principal
from cxm.org.facts import teams


@dataclass(frozen=True)
class DirectoryScope:
    """``department`` None: the whole directory; otherwise that department's employees."""

    department: str | None


def directory_scope(who: Principal) -> DirectoryScope:
    """admin and cx_lead (and HR, who sign in as cx_lead) read everyone; a manager reads their
    department; agents and viewers read no one's record (pulse results stay open to them in
    aggregate, under the confidentiality rule)."""
    if who.role in ("admin", "cx_lead"):
        return DirectoryScope(None)
    if who.role == "manager" and who.department_key:
        return DirectoryScope(who.department_key)
    raise Forbidden(
        "the employee directory is open to admins, the CX lead and managers "
        "(their own department); pulse results are open in aggregate"
    )


def check_team_spread(conn: Connection, who: Principal, team_key: str) -> None:
    """Who may see a team's spread of per-agent figures: admins and the CX lead, the manager of
    the team's department, and the team's lead (the employee linked to the caller manages a
    member of the team). Everyone else is told the team does not exist (NotFound)."""
    if who.role in ("admin", "cx_lead"):
        return
    department = conn.execute(
        sa.select(teams.c.department_key).where(teams.c.key == team_key)
    ).scalar()
    if who.role == "manager" and department is not None and department == who.department_key:
        return
    if who.user_id:
        me = conn.execute(
            sa.select(employees.c.employee_id).where(employees.c.user_id == who.user_id)
        ).scalar()
        members = (
            sa.select(employee_teams.c.employee_id)
            .where(employee_teams.c.team_key == team_key, employee_teams.c.valid_to.is_(None))
            .scalar_subquery()
        )
        leads = conn.execute(
            sa.select(sa.func.count())
            .select_from(employees)
            .where(employees.c.manager_id == me, employees.c.employee_id.in_(members))
        ).scalar_one()
        if me is not None and leads:
            return
    raise NotFound(f"team '{team_key}' does not exist")

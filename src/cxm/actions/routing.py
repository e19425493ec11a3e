"""Routing a case to the team that owns its touchpoint, and to an agent within that team."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cxm.actions.schemas import RouteIn
from cxm.actions.tables import case_events, cases
from cxm.errors import NotFound
from cxm.org import auth
from cxm.org import service as org

OPEN = ("new", "in_progress", "waiting_on_customer")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Destination:
    """Where a case lands; team None is the CX lead's queue."""

    department_key: str | None
    team_key: str | None


def _default_team(conn: Connection, department_key: str) -> str | None:
    teams = org.list_teams(conn, department_key)
    for team in teams:
        if team.is_default:
            return team.key
    return teams[0].key if teams else None


def destination(conn: Connection, touchpoint_key: str | None, route: RouteIn) -> Destination:
    """The rule's team or department if it names one, else the touchpoint's owner."""
    if route.team:
        team = org.get_team(conn, route.team)
        return Destination(team.department_key, team.key)
    department = route.department
    team_key: str | None = None
    if department is None and touchpoint_key:
        try:
            tp = org.get_touchpoint(conn, touchpoint_key)
        except NotFound:
            tp = None
        if tp is not None:
            department, team_key = tp.department_key, tp.team_key
    if department and not team_key:
        team_key = _default_team(conn, department)
    return Destination(department, team_key)


def team_agents(conn: Connection, team_key: str) -> list[dict[str, object]]:
    return [
        u
        for u in auth.list_users(conn)
        if u["role"] == "agent" and u["team_key"] == team_key and u["is_active"]
    ]


@dataclass
class Assigner:
    """Picks agents for many cases at once, keeping load and turn in memory between picks."""

    conn: Connection
    _agents: dict[str, list[str]] = field(default_factory=dict)
    _load: dict[str, int] = field(default_factory=dict)
    _last: dict[str, dt.datetime] = field(default_factory=dict)
    _tick: int = 0

    def _team(self, team_key: str) -> list[str]:
        if team_key not in self._agents:
            ids = sorted(str(u["id"]) for u in team_agents(self.conn, team_key))
            self._agents[team_key] = ids
            if ids:
                load = self.conn.execute(
                    sa.select(cases.c.assignee_id, sa.func.count())
                    .where(cases.c.assignee_id.in_(ids), cases.c.status.in_(OPEN))
                    .group_by(cases.c.assignee_id)
                ).all()
                self._load.update({a: 0 for a in ids} | {str(a): int(n) for a, n in load})
                last = self.conn.execute(
                    sa.select(case_events.c.new_value, sa.func.max(case_events.c.occurred_at))
                    .where(case_events.c.field == "assignee", case_events.c.new_value.in_(ids))
                    .group_by(case_events.c.new_value)
                ).all()
                self._last.update({str(a): at for a, at in last if at is not None})
        return self._agents[team_key]

    def pick(self, team_key: str | None, mode: str) -> str | None:
        """An agent id for the next case of ``team_key``, or None (unassigned in the queue)."""
        if team_key is None or mode == "none":
            return None
        agents = self._team(team_key)
        if not agents:
            return None
        if mode == "round_robin":
            # The agent whose last assignment is oldest goes next.
            chosen = min(agents, key=lambda a: (self._last.get(a, EPOCH), a))
        else:
            chosen = min(agents, key=lambda a: (self._load.get(a, 0), self._last.get(a, EPOCH), a))
        self._tick += 1
        self._load[chosen] = self._load.get(chosen, 0) + 1
        self._last[chosen] = dt.datetime.now(dt.UTC) + dt.timedelta(microseconds=self._tick)
        return chosen

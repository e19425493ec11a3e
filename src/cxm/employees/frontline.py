"""Frontline contribution: the customer outcomes of the interactions an employee handled.

An interaction names its handler in ``properties.agent_id`` (an employee id; map a file column
to it on import). A customer answer triggered by that interaction (a support CSAT after
``ticket_closed``) is an outcome of the agent's work. Agents and team leads see their own
figure beside their team's; a manager sees the team's spread of per-agent figures without
names, each agent only when they have at least the minimum number of answers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import pandas as pd
from ibis.backends import BaseBackend
from sqlalchemy.engine import Engine

from cxm.actions.facts import case_events_expr, cases_expr
from cxm.employees.confidential import DEFAULT_MINIMUM
from cxm.employees.facts import directory, memberships
from cxm.errors import NotFound
from cxm.interactions.facts import log
from cxm.metrics.stats import nps_interval, wilson_interval
from cxm.org.facts import users
from cxm.store.analytics import reading
from cxm.surveys.facts import responses

TOP_TWO = 4  # CSAT 4 or 5 of 5 counts as satisfied: the ``csat`` metric's definition


def handled_answers(con: BaseBackend) -> ir.Table:
    """Customer CSAT answers whose triggering interaction names its handler:
    ``response_id, agent_id, team_key`` (the agent's team when the customer answered),
    ``submitted_at, csat``."""
    r = responses(con)
    r = r.filter(r.completed, r.csat.notnull(), r.trigger_event_id.notnull())
    ix = log(con)
    raw = ix.properties["agent_id"].cast("string")
    agent = raw.replace('"', "")
    ix = ix.filter(raw.notnull(), raw != "null").select(_eid=ix.event_id, agent_id=agent)
    j = r.inner_join(ix, r.trigger_event_id == ix._eid)
    m = memberships(con)
    m = m.select(_emp=m.employee_id, team_key=m.team_key, _from=m.valid_from, _to=m.valid_to)
    j = j.left_join(m, [j.agent_id == m._emp, m._from <= j.submitted_at,
                        m._to.isnull() | (j.submitted_at < m._to)])  # fmt: skip
    return j.select(response_id=j.id, agent_id=j.agent_id, team_key=j.team_key,
                    submitted_at=j.submitted_at, csat=j.csat)  # fmt: skip


@dataclass(frozen=True)
class Figure:
    """CSAT (% of answers 4-5) with its Wilson interval; ``n`` answers."""

    n: int
    value: float | None
    low: float | None
    high: float | None


def _figure(x: int, n: int) -> Figure:
    if n == 0:
        return Figure(0, None, None, None)
    iv = wilson_interval(x, n)
    return Figure(n, round(100 * iv.value, 1), round(100 * iv.low, 1), round(100 * iv.high, 1))


@dataclass
class Outcomes:
    employee_id: str
    team_key: str | None
    own: Figure
    team: Figure


@dataclass
class TeamSpread:
    team_key: str
    minimum: int
    team: Figure
    agents: list[Figure] = field(default_factory=list)  # sorted by value, no names
    pooled_agents: int = 0  # agents with fewer answers than the minimum, not listed


def _per_agent(
    con: BaseBackend, start: dt.datetime | None, end: dt.datetime | None
) -> pd.DataFrame:
    a = handled_answers(con)
    if start is not None:
        a = a.filter(a.submitted_at >= start)
    if end is not None:
        a = a.filter(a.submitted_at < end)
    one, zero = ibis.literal(1), ibis.literal(0)
    g = a.group_by(["agent_id", "team_key"]).aggregate(
        n=a.count(), x=ibis.ifelse(a.csat >= TOP_TWO, one, zero).sum()
    )
    return g.to_pandas()


def own_outcomes(
    source: Engine | BaseBackend, employee_id: str, team_key: str | None, *,
    start: dt.datetime | None = None, end: dt.datetime | None = None,
) -> Outcomes:  # fmt: skip
    """The employee's own CSAT over the interactions they handled, beside their team's (every
    answer handled by anyone while in ``team_key``). Never another person's figure."""
    with reading(source) as con:
        df = _per_agent(con, start, end)
    mine = df[df["agent_id"] == employee_id]
    team = df[df["team_key"] == team_key] if team_key else df.iloc[0:0]
    return Outcomes(employee_id, team_key, _figure(int(mine["x"].sum()), int(mine["n"].sum())),
                    _figure(int(team["x"].sum()), int(team["n"].sum())))  # fmt: skip


def team_spread(
    source: Engine | BaseBackend, team_key: str, *, minimum: int = DEFAULT_MINIMUM,
    start: dt.datetime | None = None, end: dt.datetime | None = None,
) -> TeamSpread:  # fmt: skip
    """The team's CSAT and the spread of its agents' figures, sorted and without names; an
    agent with fewer than ``minimum`` answers is not listed (``pooled_agents`` counts them)."""
    with reading(source) as con:
        df = _per_agent(con, start, end)
    team = df[df["team_key"] == team_key]
    if team.empty:
        raise NotFound(f"no handled interactions with customer answers in team {team_key!r}")
    listed = team[team["n"] >= minimum]
    pairs = zip(listed["x"].astype(int), listed["n"].astype(int), strict=True)
    agents = sorted((_figure(int(x), int(n)) for x, n in pairs),
                    key=lambda f: (f.value or 0.0, f.n))  # fmt: skip
    return TeamSpread(team_key, minimum, _figure(int(team["x"].sum()), int(team["n"].sum())),
                      agents, int(len(team) - len(listed)))  # fmt: skip


# ---- follow-up surveys of the cases an employee closed ---------------------------------------


def closed_case_followups(con: BaseBackend) -> ir.Table:
    """The answered follow-up surveys of closed cases, with who closed each case:
    ``case_id, agent_id`` (the employee whose sign-in closed it), ``team_key`` (their team at
    the close), ``closed_at, nps`` (the follow-up's 0-10 answer). A case closed by an API key,
    the system or a sign-in not linked to an employee has no agent and is left out."""
    ev = case_events_expr(con)
    ev = ev.filter(ev.kind == "status", ev.field == "status", ev.new_value == "closed")
    ev = ev.select(case_id=ev.case_id, _actor=ev.actor.lower(), closed_at=ev.occurred_at)
    u = con.table(users.name)
    u = u.select(_email=u.email.lower(), _uid=u.id)
    e = directory(con)
    e = e.filter(e.user_id.notnull()).select(agent_id=e.employee_id, _user=e.user_id)
    who = u.inner_join(e, u._uid == e._user).select("_email", "agent_id")
    j = ev.inner_join(who, ev._actor == who._email)
    m = memberships(con)
    m = m.select(_emp=m.employee_id, team_key=m.team_key, _from=m.valid_from, _to=m.valid_to)
    j = j.left_join(m, [j.agent_id == m._emp, m._from <= j.closed_at,
                        m._to.isnull() | (j.closed_at < m._to)])  # fmt: skip
    c = cases_expr(con)
    c = c.filter(c.followup_response_id.notnull()).select(_cid=c.id, _rid=c.followup_response_id)
    j = j.inner_join(c, j.case_id == c._cid)
    r = responses(con, customer=False)
    r = r.filter(r.completed, r.nps.notnull()).select(_resp=r.id, nps=r.nps)
    j = j.inner_join(r, j._rid == r._resp)
    return j.select("case_id", "agent_id", "team_key", "closed_at", "nps")


@dataclass(frozen=True)
class NpsFigure:
    """NPS of follow-up answers (points, -100..100) with the adjusted Wald interval of Rocks
    (2016); ``n`` answers (one per case)."""

    n: int
    value: float | None
    low: float | None
    high: float | None


@dataclass
class FollowupOutcomes:
    employee_id: str
    team_key: str | None
    own: NpsFigure
    team: NpsFigure


def _nps_figure(scores: pd.Series) -> NpsFigure:
    if len(scores) == 0:
        return NpsFigure(0, None, None, None)
    s = scores.astype(int)
    iv = nps_interval(float((s >= 9).sum()), float(((s >= 7) & (s <= 8)).sum()),
                      float((s <= 6).sum()))  # fmt: skip
    return NpsFigure(len(s), round(100 * iv.value, 1), round(100 * iv.low, 1),
                     round(100 * iv.high, 1))  # fmt: skip


def own_followups(
    source: Engine | BaseBackend, employee_id: str, team_key: str | None, *,
    start: dt.datetime | None = None, end: dt.datetime | None = None,
) -> FollowupOutcomes:  # fmt: skip
    """The NPS of the follow-up surveys of the cases the employee closed, beside their team's
    (every follow-up of a case closed by anyone while in ``team_key``). ``start``/``end``
    bound the close time, ``[start, end)``. Never another person's figure."""
    with reading(source) as con:
        f = closed_case_followups(con)
        if start is not None:
            f = f.filter(f.closed_at >= start)
        if end is not None:
            f = f.filter(f.closed_at < end)
        wanted = f.agent_id == employee_id
        if team_key:
            wanted = wanted | (f.team_key == team_key)
        df = f.filter(wanted).select("agent_id", "team_key", "nps").to_pandas()
    mine = df[df["agent_id"] == employee_id]["nps"]
    team = df[df["team_key"] == team_key]["nps"] if team_key else df["nps"].iloc[0:0]
    return FollowupOutcomes(employee_id, team_key, _nps_figure(mine), _nps_figure(team))

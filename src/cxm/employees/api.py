"""REST endpoints for employees: the directory, pulse results, EX beside CX (HTTP only)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.engine import Connection

from cxm.apitypes import Page, paging
from cxm.employees import directory, frontline, kudos, partner_pulse, partners, schemas, service
from cxm.employees.directory import Employee, EmployeeIn
from cxm.employees.scope import check_team_spread, directory_scope
from cxm.errors import Forbidden, NotFound, responses
from cxm.metrics.definitions import installation_dir as metrics_dir
from cxm.metrics.definitions import load as load_metrics
from cxm.org.auth import Principal
from cxm.org.scope import scope_for
from cxm.org.security import db, get_engine, require

router = APIRouter(tags=["employees"])
Db = Annotated[Connection, Depends(db, scope="function")]
Reader = Annotated[Principal, Depends(require("read"))]
Admin = Annotated[Principal, Depends(require("admin"))]
Paging = Annotated[Page, Depends(paging(100))]
By = Literal["company", "department", "team"]
Grain = Literal["month", "quarter", "year"]


def _out(e: Employee) -> schemas.EmployeeOut:
    return schemas.EmployeeOut(
        employee_id=e.employee_id,
        email=e.email,
        name=e.name,
        role=e.role,
        manager_id=e.manager_id,
        start_date=e.start_date,
        location=e.location,
        user_id=e.user_id,
        team=e.team_key,
        department=e.department_key,
        history=[
            schemas.StintOut(team=s.team_key, valid_from=s.valid_from, valid_to=s.valid_to)
            for s in e.history
        ],
    )


def _minimum(request: Request) -> int:
    return int(request.app.state.settings.employee_min_group)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


@router.get("/employees", response_model=schemas.EmployeePage, responses=responses(403))
def list_employees(
    conn: Db, who: Reader, page: Paging, team: str | None = None, department: str | None = None
) -> schemas.EmployeePage:
    """The directory (now), by employee id; a manager reads their own department only."""
    scope = directory_scope(who)
    if scope.department is not None:
        if department not in (None, scope.department):
            return schemas.EmployeePage(total=0, items=[])
        department = scope.department
    total, rows = directory.list_employees(
        conn, team=team, department=department, limit=page.limit, offset=page.offset
    )
    return schemas.EmployeePage(total=total, items=[_out(e) for e in rows])


@router.put("/employees", response_model=schemas.ApplyOut, responses=responses(422))
def put_employees(body: list[schemas.EmployeeBody], conn: Db, who: Admin) -> schemas.ApplyOut:
    """Create or update employees (all or nothing); a changed team is a move now."""
    people = [
        EmployeeIn(
            employee_id=b.employee_id,
            team_key=b.team,
            email=b.email,
            name=b.name,
            role=b.role,
            manager_id=b.manager_id,
            start_date=b.start_date,
            location=b.location,
            user_email=b.user_email,
        )
        for b in body
    ]
    r = directory.apply(conn, people)
    return schemas.ApplyOut(
        created=r.created, updated=r.updated, moved=r.moved, unchanged=r.unchanged
    )


@router.get("/employees/pulse", response_model=schemas.PulseOut, responses=responses(422))
def pulse(
    request: Request,
    who: Reader,
    by: By = Query("team"),
    grain: Grain | None = Query(None),
    start: dt.datetime | None = Query(None, description="inclusive, a month's first day (UTC)"),
    end: dt.datetime | None = Query(None, description="exclusive, a month's first day (UTC)"),
) -> schemas.PulseOut:
    """eNPS per group and period; groups below the minimum size (or that would reveal one by
    subtraction) are listed as hidden, without figures."""
    minimum = _minimum(request)
    rows = service.pulse_results(
        get_engine(request), by, grain, minimum=minimum, start=_utc(start), end=_utc(end)
    )
    return schemas.PulseOut(
        minimum_group=minimum,
        groups=[
            schemas.GroupOut(
                period=r.period,
                level=r.level,
                key=r.key,
                department=r.department_key,
                hidden=r.hidden,
                respondents=r.respondents,
                enps=r.enps,
                enps_low=r.enps_low,
                enps_high=r.enps_high,
                score_mean=r.score_mean,
                engagement=r.engagement,
                engagement_low=r.engagement_low,
                engagement_high=r.engagement_high,
            )
            for r in rows
        ],
    )


@router.get("/employees/pulse/comments", response_model=list[str], responses=responses(422))
def pulse_comments(
    request: Request, who: Reader, key: str, by: Literal["department", "team"] = Query("team")
) -> list[str]:
    """A group's pulse comments, sorted, without who or when; 422 for a hidden group."""
    return service.pulse_comments(get_engine(request), by, key, minimum=_minimum(request))


@router.get(
    "/employees/experience", response_model=schemas.PeopleAndExperienceOut, responses=responses(422)
)
def experience(
    request: Request,
    who: Reader,
    grain: Grain = Query("quarter"),
    department: str | None = None,
) -> schemas.PeopleAndExperienceOut:
    """Each team's eNPS beside the CX of its touchpoints, and their relation across teams."""
    r = service.people_and_experience(
        get_engine(request),
        request.app.state.settings.data_dir,
        grain,
        minimum=_minimum(request),
        department=department,
    )
    return schemas.PeopleAndExperienceOut(
        grain=r.grain,
        minimum_group=r.minimum,
        teams=[schemas.TeamPeriodOut.model_validate(row) for row in r.rows],
        relations=[schemas.RelationOut.model_validate(rel.__dict__) for rel in r.relations],
    )


def _fig(f: frontline.Figure) -> schemas.FigureOut:
    return schemas.FigureOut(n=f.n, value=f.value, low=f.low, high=f.high)


@router.get("/employees/me/outcomes", response_model=schemas.OutcomesOut, responses=responses(404))
def my_outcomes(request: Request, conn: Db, who: Reader) -> schemas.OutcomesOut:
    """The caller's own customer outcomes (CSAT of the interactions they handled) beside their
    team's; only ever the caller's own figure."""
    employee_id = directory.employee_of_user(conn, who.user_id) if who.user_id else None
    if employee_id is None:
        raise NotFound("your sign-in is not linked to an employee in the directory")
    me = directory.get_employee(conn, employee_id)
    o = frontline.own_outcomes(get_engine(request), employee_id, me.team_key)
    return schemas.OutcomesOut(
        employee_id=employee_id, team=o.team_key, own=_fig(o.own), team_figure=_fig(o.team)
    )


@router.get(
    "/employees/me/followups", response_model=schemas.FollowupsOut, responses=responses(404)
)
def my_followups(request: Request, conn: Db, who: Reader) -> schemas.FollowupsOut:
    """The NPS of the follow-up surveys of the cases the caller closed, beside their team's;
    only ever the caller's own figure."""
    employee_id = directory.employee_of_user(conn, who.user_id) if who.user_id else None
    if employee_id is None:
        raise NotFound("your sign-in is not linked to an employee in the directory")
    me = directory.get_employee(conn, employee_id)
    f = frontline.own_followups(get_engine(request), employee_id, me.team_key)
    return schemas.FollowupsOut(
        employee_id=employee_id,
        team=f.team_key,
        own=schemas.NpsFigureOut(**f.own.__dict__),
        team_figure=schemas.NpsFigureOut(**f.team.__dict__),
    )


@router.get("/employees/me/kudos", response_model=list[schemas.KudosOut], responses=responses(404))
def my_kudos(request: Request, conn: Db, who: Reader) -> list[schemas.KudosOut]:
    """Positive customer comments about the caller and the people who report to them."""
    employee_id = directory.employee_of_user(conn, who.user_id) if who.user_id else None
    if employee_id is None:
        raise NotFound("your sign-in is not linked to an employee in the directory")
    return [
        schemas.KudosOut(employee_id=k.employee_id, comment=k.comment,
                         submitted_at=k.submitted_at, touchpoint=k.touchpoint_key, why=k.why)
        for k in kudos.feed(get_engine(request), conn, employee_id)
    ]  # fmt: skip


@router.get(
    "/employees/teams/{team}/outcomes",
    response_model=schemas.TeamSpreadOut,
    responses=responses(404),
)
def team_outcomes(request: Request, team: str, conn: Db, who: Reader) -> schemas.TeamSpreadOut:
    """A team's CSAT and the sorted spread of its agents' figures, without names; agents with
    fewer answers than the minimum group size are pooled, not listed."""
    check_team_spread(conn, who, team)
    s = frontline.team_spread(get_engine(request), team, minimum=_minimum(request))
    return schemas.TeamSpreadOut(
        team=team,
        minimum_group=s.minimum,
        team_figure=_fig(s.team),
        agents=[_fig(a) for a in s.agents],
        pooled_agents=s.pooled_agents,
    )


@router.get(
    "/employees/{employee_id}", response_model=schemas.EmployeeOut, responses=responses(403, 404)
)
def get_employee(employee_id: str, conn: Db, who: Reader) -> schemas.EmployeeOut:
    """One employee with their team history."""
    scope = directory_scope(who)
    e = directory.get_employee(conn, employee_id)
    if scope.department is not None and e.department_key != scope.department:
        raise NotFound(f"employee {employee_id!r} is not in the directory")
    return _out(e)


@router.get(
    "/partners/{key}/scorecard", response_model=schemas.ScorecardOut, responses=responses(404, 422)
)
def partner_scorecard(
    key: str,
    request: Request,
    who: Reader,
    conn: Db,
    start: dt.datetime | None = Query(None, description="inclusive, ISO 8601 with time zone"),
    end: dt.datetime | None = Query(None, description="exclusive, ISO 8601 with time zone"),
) -> schemas.ScorecardOut:
    """CSAT, NPS and CES of the touchpoints partner ``key`` runs, overall and per touchpoint,
    and the NPS cost of the signals there. A partner user reads their own partner's only."""
    scope = scope_for(who)
    partners.readable_partner(conn, scope, key)
    settings = request.app.state.settings
    card = partners.scorecard(
        get_engine(request), conn, settings.data_dir, key,
        metrics=load_metrics(metrics_dir(settings.data_dir)), start=start, end=end,
        min_slice=0 if scope.everything else settings.min_slice_size,
        minimum=settings.employee_min_group,
    )  # fmt: skip
    return schemas.ScorecardOut.model_validate(card)


def _contacts_reader(who: Principal) -> None:
    if who.role not in ("admin", "cx_lead"):
        raise Forbidden("partner contacts are open to admins and the CX lead")


@router.get(
    "/partners/{key}/contacts",
    response_model=list[schemas.PartnerContactOut],
    responses=responses(403, 404),
)
def list_partner_contacts(key: str, conn: Db, who: Reader) -> list[schemas.PartnerContactOut]:
    """The people at partner ``key`` who answer the partner pulse (admins and the CX lead)."""
    _contacts_reader(who)
    return [
        schemas.PartnerContactOut.model_validate(row)
        for row in partner_pulse.contact_rows(partner_pulse.list_contacts(conn, key))
    ]


@router.post(
    "/partners/{key}/contacts",
    status_code=201,
    response_model=schemas.ContactsApplyOut,
    responses=responses(404, 422),
)
def post_partner_contacts(
    key: str,
    body: list[schemas.PartnerContactBody] | schemas.PartnerContactBody,
    conn: Db,
    who: Admin,
) -> schemas.ContactsApplyOut:
    """Create or update people at partner ``key`` (one contact or a list), matched by email.
    All or nothing: an unknown partner is 404, any invalid contact 422 naming every problem."""
    items = body if isinstance(body, list) else [body]
    result = partner_pulse.apply_contacts(conn, [(key, c) for c in items])
    return schemas.ContactsApplyOut(
        created=result.created, updated=result.updated, unchanged=result.unchanged
    )

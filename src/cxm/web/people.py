"""The "People and experience" page: each team's eNPS beside the CX of its touchpoints.

For the CX lead and HR (who sign in as cx_lead) and admins; every figure comes from
``cxm.employees.service``, which applies the confidentiality rule before anything is shown.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.engine import Connection

from cxm.employees import directory, frontline, kudos
from cxm.employees import service as employees
from cxm.errors import Invalid, NotFound
from cxm.org import service as org
from cxm.org.auth import Principal
from cxm.org.scope import scope_for
from cxm.org.security import db, get_engine
from cxm.web.pages import render
from cxm.web.sessions import signed_in

router = APIRouter(include_in_schema=False)
ROLES = ("admin", "cx_lead")
GRAINS = ("quarter", "month")


def _by_team(rows: list[dict[str, Any]]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    periods = sorted({r["period"][:10] for r in rows})
    teams: dict[str, dict[str, Any]] = {}
    for r in rows:
        teams.setdefault(r["team"], {})[r["period"][:10]] = r
    return periods, teams


@router.get("/people", response_class=HTMLResponse)
def people(
    request: Request,
    who: Principal = Depends(signed_in),
    conn: Connection = Depends(db, scope="function"),
) -> HTMLResponse:
    if who.role not in ROLES:
        # Outside a role's scope a page answers as absent, like every other staff page.
        raise NotFound("page not found")
    grain = request.query_params.get("grain") or "quarter"
    if grain not in GRAINS:
        raise Invalid(f"grain: use {' or '.join(GRAINS)}, not {grain[:20]!r}")
    settings = request.app.state.settings
    minimum = settings.employee_min_group
    engine = get_engine(request)
    result = employees.people_and_experience(engine, settings.data_dir, grain, minimum=minimum)
    departments = employees.pulse_results(engine, "department", minimum=minimum)
    periods, teams = _by_team(result.rows)
    team_names = {t.key: (t.name, t.department_key) for t in org.list_teams(conn)}
    return render(request, who, "people.html", grain=grain, grains=GRAINS, minimum=minimum,
                  periods=periods, teams=teams, team_names=team_names,
                  relations=result.relations, departments=departments)  # fmt: skip


@router.get("/people/me", response_class=HTMLResponse)
def my_outcomes(
    request: Request,
    who: Principal = Depends(signed_in),
    conn: Connection = Depends(db, scope="function"),
) -> HTMLResponse:
    """The signed-in employee's own customer outcomes (CSAT of the interactions they handled,
    with its interval, beside their team's) and their kudos; never anyone else's figure."""
    employee_id = directory.employee_of_user(conn, who.user_id) if who.user_id else None
    if employee_id is None or scope_for(who).by_partner:
        raise NotFound("your sign-in is not linked to an employee in the directory")
    me = directory.get_employee(conn, employee_id)
    engine = get_engine(request)
    outcomes = frontline.own_outcomes(engine, employee_id, me.team_key)
    followups = frontline.own_followups(engine, employee_id, me.team_key)
    feed = kudos.feed(engine, conn, employee_id)
    return render(request, who, "people_me.html", me=me, outcomes=outcomes, followups=followups,
                  kudos=feed)  # fmt: skip

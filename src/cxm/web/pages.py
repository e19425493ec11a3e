"""Server-rendered pages."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.engine import Connection

from cxm.org import service as org
from cxm.org.auth import Principal
from cxm.org.security import db
from cxm.web.sessions import csrf_token, signed_in
from cxm.web.templating import templates

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(
    request: Request, who: Principal = Depends(signed_in), conn: Connection = Depends(db)
) -> HTMLResponse:
    """The organization at a glance: departments, their teams and the touchpoints they own."""
    departments = org.list_departments(conn)
    teams = org.list_teams(conn)
    touchpoints = org.list_touchpoints(conn)
    names = {d.key: d.name for d in departments}
    team_names = {t.key: t.name for t in teams}
    return templates.TemplateResponse(
        request,
        "home.html",
        {
            "company": org.company_name(conn),
            "departments": departments,
            "teams": teams,
            "touchpoints": touchpoints,
            "department_names": names,
            "team_names": team_names,
            "unowned": [t for t in touchpoints if not t.owned],
            "who": who,
            "csrf_token": csrf_token(request),
        },
    )

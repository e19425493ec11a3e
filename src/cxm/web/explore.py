"""Pages for finding things: the feedback explorer and customer 360."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Connection

from cxm.actions import service as actions
from cxm.apitypes import checked_offset
from cxm.customer360 import service as c360
from cxm.errors import Invalid, NotFound
from cxm.feedback import service as feedback
from cxm.org import service as org
from cxm.org.auth import Principal
from cxm.org.scope import customer_not_found, readable_customer, scope_for, visible_touchpoints
from cxm.org.security import db
from cxm.surveys import service as surveys
from cxm.text.sentiment import unscored_reason
from cxm.web.filters import Filters
from cxm.web.pages import render
from cxm.web.sessions import signed_in

router = APIRouter(include_in_schema=False)
PAGE = 50


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise Invalid(f"{name}: '{raw}' is not a number") from exc


@router.get("/feedback", response_class=HTMLResponse)
def explorer(
    request: Request, who: Principal = Depends(signed_in), conn: Connection = Depends(db)
) -> HTMLResponse:
    """Responses with filters; each links to its customer."""
    scope = scope_for(who)
    if scope.by_team:
        raise NotFound("page not found")
    f = Filters.from_request(request, scope)
    q = request.query_params
    offset = checked_offset(request.query_params.get("offset"))
    query = feedback.Query(
        start=f.start_at, end=f.end_at, department=f.department, segment=f.segment,
        touchpoint=q.get("touchpoint") or None, survey=q.get("survey") or None,
        band=q.get("band") or None, text=(q.get("q") or "").strip() or None,
        sentiment=q.get("sentiment") or None, theme=q.get("theme") or None,
        limit=PAGE, offset=offset,
    )  # fmt: skip
    result = feedback.explore(conn, scope, query)
    touchpoints = org.list_touchpoints(conn)
    visible = visible_touchpoints(conn, scope)
    if visible is not None:
        touchpoints = [t for t in touchpoints if t.key in visible]
    return render(
        request, who, "feedback.html",
        filters=f, query=query, page=result, departments=org.list_departments(conn),
        department_names={d.key: d.name for d in org.list_departments(conn)},
        touchpoints=touchpoints, surveys=surveys.list_surveys(conn),
        bands=list(feedback.BANDS), sentiments=feedback.SENTIMENTS,
        themes=feedback.theme_keys(conn), scope=scope, offset=offset, size=PAGE,
        unscored_reason=unscored_reason,
        next_query=_page_query(request, offset + PAGE) if offset + PAGE < result.total else None,
        prev_query=_page_query(request, offset - PAGE) if offset > 0 else None,
    )  # fmt: skip


def _page_query(request: Request, offset: int) -> str:
    params = dict(request.query_params) | {"offset": str(max(0, offset))}
    return "&".join(f"{k}={v}" for k, v in params.items() if v)


@router.get("/customers", response_class=HTMLResponse, response_model=None)
def customers_search(
    request: Request, who: Principal = Depends(signed_in), conn: Connection = Depends(db)
) -> Response:
    """Find a customer by any identifier."""
    scope = scope_for(who)
    if not scope.personal_data or scope.by_team:
        raise NotFound("page not found")
    identifier = (request.query_params.get("q") or "").strip()
    error = None
    if identifier:
        # Only a customer in the caller's scope is a match; any other reads as unknown.
        try:
            found = c360.profile(conn, c360.lookup(conn, identifier))
            readable_customer(conn, scope, found, actions.team_has_customer)
            return RedirectResponse(f"/customers/{found['id']}", status_code=303)
        except NotFound:
            error = str(customer_not_found())
    return render(request, who, "customers.html", q=identifier, error=error,
                  status_code=404 if error else 200)  # fmt: skip


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer_page(
    customer_id: str, request: Request, who: Principal = Depends(signed_in),
    conn: Connection = Depends(db),
) -> HTMLResponse:  # fmt: skip
    """Profile, identities, and one timeline across all departments, colour-coded."""
    scope = scope_for(who)
    try:
        found = c360.profile(conn, customer_id)
    except NotFound:
        raise customer_not_found() from None
    profile = readable_customer(conn, scope, found, actions.team_has_customer)
    cursor = request.query_params.get("cursor") or None
    timeline = c360.timeline(conn, profile["id"], limit=50, cursor=cursor)
    tps = {t.key: t for t in org.list_touchpoints(conn)}
    departments = org.list_departments(conn)
    palette = _palette([d.key for d in departments])
    items: list[dict[str, Any]] = []
    for item in timeline["items"]:
        tp = tps.get(item.get("touchpoint_key") or "")
        dept = tp.department_key if tp and tp.department_key else None
        items.append(item | {"department": dept, "touchpoint_name": tp.name if tp else None})
    return render(
        request, who, "customer.html",
        profile=profile, items=items, next_cursor=timeline["next_cursor"], palette=palette,
        department_names={d.key: d.name for d in departments},
    )  # fmt: skip


def _palette(keys: list[str]) -> dict[str, str]:
    # Colour-blind-safe (Okabe-Ito and Tol), dark enough for white text at 4.5:1.
    colours = ["#0b5cad", "#a6501b", "#2f7d4f", "#8e3b7a", "#5a5a9e", "#8a6d00", "#b42318",
               "#20707a", "#6b4f2c", "#3d5a80"]  # fmt: skip
    return {k: colours[i % len(colours)] for i, k in enumerate(keys)}

"""Pages for finding things: the feedback explorer and customer 360."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Connection

from cxm.actions import service as actions
from cxm.customer360 import service as c360
from cxm.customers import service as customer_service
from cxm.errors import Invalid, NotFound
from cxm.feedback import service as feedback
from cxm.insights import facts as insights
from cxm.org import service as org
from cxm.org.auth import Principal
from cxm.org.scope import (
    Scope,
    customer_not_found,
    readable_customer,
    scope_for,
    visible_touchpoints,
)
from cxm.org.security import db
from cxm.surveys import service as surveys
from cxm.text.sentiment import unscored_reason
from cxm.web import journey_pages
from cxm.web.filters import Filters
from cxm.web.listing import CSV_MAX, Listing, csv_response
from cxm.web.names import names_for
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


@router.get("/feedback", response_class=HTMLResponse, response_model=None)
def explorer(
    request: Request,
    who: Principal = Depends(signed_in),
    conn: Connection = Depends(db, scope="function"),
) -> Response:
    """Responses with filters, a total, pages, sorting and a CSV of the whole filtered list;
    each links to its customer."""
    scope = scope_for(who)
    if scope.by_team:
        raise NotFound("page not found")
    f = Filters.from_request(request, scope)
    q = request.query_params
    listing = Listing.from_request(request, feedback.SORTS, size=PAGE)
    query = feedback.Query(
        start=f.start_at, end=f.end_at, department=f.department, segment=f.segment,
        touchpoint=q.get("touchpoint") or None, survey=q.get("survey") or None,
        band=q.get("band") or None, text=(q.get("q") or "").strip() or None,
        sentiment=q.get("sentiment") or None, theme=q.get("theme") or None,
        limit=PAGE, offset=listing.offset, sort=listing.sort or None,
        descending=listing.descending,
    )  # fmt: skip
    if listing.wants_csv:
        return _feedback_csv(conn, scope, query)
    result = feedback.explore(conn, scope, query)
    listing = listing.counted(result.total)
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
        themes=feedback.theme_keys(conn), scope=scope, listing=listing,
        unscored_reason=unscored_reason,
    )  # fmt: skip


def _feedback_csv(conn: Connection, scope: Scope, query: feedback.Query) -> Response:
    """Every response the filters match (500 at a time), as the explorer shows them."""
    rows: list[dict[str, Any]] = []
    while len(rows) < CSV_MAX:
        batch = feedback.explore(conn, scope, replace(query, limit=500, offset=len(rows))).rows
        rows += batch
        if len(batch) < 500:
            break
    names = names_for(conn, scope)
    names.prefetch(r["customer_id"] for r in rows)
    columns: list[tuple[str, Any]] = [
        ("id", "id"), ("submitted_at", "submitted_at"),
        ("survey", lambda r: names.survey(r["survey_key"], "")),
        ("touchpoint", lambda r: names.touchpoint(r["touchpoint_key"], "")),
        ("department", lambda r: names.department(r["department_key"], "")),
        ("nps", "nps"), ("nps_category", "nps_category"), ("csat", "csat"), ("ces", "ces"),
        ("comment", "comment"), ("sentiment", "sentiment"),
        ("themes", lambda r: "; ".join(names.theme(t) for t in r["themes"])),
    ]  # fmt: skip
    if scope.personal_data:
        columns += [("customer", lambda r: names.customer(r["customer_id"], "")),
                    ("customer_id", "customer_id")]  # fmt: skip
    return csv_response(rows, columns, "feedback.csv")


@router.get("/customers", response_class=HTMLResponse, response_model=None)
def customers_search(
    request: Request,
    who: Principal = Depends(signed_in),
    conn: Connection = Depends(db, scope="function"),
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
    listing = Listing.from_request(request, customer_service.CUSTOMER_SORTS)
    rows: list[dict[str, Any]] = []
    if scope.everything:
        # The whole list is for roles that read every customer; others search.
        listing = listing.counted(customer_service.count_customers(conn))
        order: dict[str, Any] = {"sort": listing.sort or None, "descending": listing.descending}
        if listing.wants_csv and not identifier:
            every = customer_service.list_customers(conn, 100_000, 0, **order)
            names = names_for(conn, scope)
            names.prefetch(r["id"] for r in every)
            return csv_response(every, [
                ("id", "id"), ("name", lambda r: names.customer(r["id"], "")),
                ("first_seen", "first_seen"), ("last_seen", "last_seen"),
                ("interactions", "interaction_count")], "customers.csv")  # fmt: skip
        rows = customer_service.list_customers(conn, listing.size, listing.offset, **order)
    return render(request, who, "customers.html", q=identifier, error=error, rows=rows,
                  listing=listing, status_code=404 if error else 200)  # fmt: skip


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer_page(
    customer_id: str, request: Request, who: Principal = Depends(signed_in),
    conn: Connection = Depends(db, scope="function"),
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
    journeys = journey_pages.customer_journeys(request, profile["id"])
    return render(
        request, who, "customer.html",
        profile=profile, items=items, next_cursor=timeline["next_cursor"], palette=palette,
        department_names={d.key: d.name for d in departments}, journeys=journeys,
        prediction=insights.prediction_for(conn, profile["id"]),
    )  # fmt: skip


def _palette(keys: list[str]) -> dict[str, str]:
    # Colour-blind-safe (Okabe-Ito and Tol), dark enough for white text at 4.5:1.
    colours = ["#0b5cad", "#a6501b", "#2f7d4f", "#8e3b7a", "#5a5a9e", "#8a6d00", "#b42318",
               "#20707a", "#6b4f2c", "#3d5a80"]  # fmt: skip
    return {k: colours[i % len(colours)] for i, k in enumerate(keys)}

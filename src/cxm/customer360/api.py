"""``/api/v1/customers`` (360 profile, timeline, lookup) and ``/api/v1/privacy`` (admin)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from sqlalchemy.engine import Connection

from cxm.apitypes import Page, Record, paging
from cxm.customer360 import service
from cxm.customers import service as customers
from cxm.errors import Invalid, NotFound, responses
from cxm.org.auth import Principal
from cxm.org.scope import scope_for, visible_touchpoints
from cxm.org.security import db, require

router = APIRouter(tags=["customers"])
LOOKUP_KINDS = ("email", "phone", "user_id", "anonymous_id", "crm_id")
Paging = Annotated[Page, Depends(paging(50, 500))]


class CustomerRow(Record):
    """A customer as listed (no personal data: identifiers and traits are in the profile)."""

    id: str
    first_seen: dt.datetime | None = None
    last_seen: dt.datetime | None = None
    interaction_count: int | None = None


class CustomerProfile(Record):
    """One customer's 360: identifiers, traits, touchpoints and departments, merges."""

    id: str
    identifiers: dict[str, list[str]]
    traits: dict[str, Any]
    touchpoints: list[str]
    departments: list[str]
    merged_from: list[str] = []


class Timeline(Record):
    customer_id: str
    items: list[Record]
    next_cursor: str | None = None


def requester(who: Principal) -> str:
    return who.email or f"api key ({who.scope})"


TeamReach = Callable[[Connection, str | None, Sequence[str]], bool]


def _in_scope(request: Request, conn: Connection, who: Principal,
              profile: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The profile, if the caller's role may see this customer; else 404, as for the pages.

    Viewers see no personal data; a manager sees the customers who touched their department's
    touchpoints; an agent sees the customers in their team's cases. Cases belong to a domain
    above this one, so the app gives the question "does this team have a case about these
    customers?" as ``app.state.team_reach``.
    """
    scope = scope_for(who)
    visible = visible_touchpoints(conn, scope)
    if scope.by_team:
        reach: TeamReach | None = getattr(request.app.state, "team_reach", None)
        ids = [profile["id"], *profile.get("merged_from", [])]
        allowed = reach is not None and reach(conn, scope.team_key, ids)
    else:
        allowed = scope.personal_data and (
            visible is None or bool(visible & set(profile["touchpoints"]))
        )
    if not allowed:
        raise NotFound(f"customer '{profile['id']}' does not exist")
    return profile


@router.get(
    "/customers", response_model=list[CustomerRow] | CustomerProfile, responses=responses(404)
)
def list_or_find(
    request: Request,
    page: Paging,
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db),
) -> Any:
    """Profiles, most recently seen first; with ``?email=`` (or phone, user_id, anonymous_id,
    crm_id, identifier=kind:value) the one matching profile."""
    given = {k: v for k, v in request.query_params.items() if k in (*LOOKUP_KINDS, "identifier")}
    if len(given) > 1:
        raise Invalid(f"look up by one identifier at a time, not {', '.join(sorted(given))}")
    if given:
        ((kind, value),) = given.items()
        customer_id = service.lookup(conn, value if kind == "identifier" else f"{kind}:{value}")
        found = service.profile(conn, customer_id)
        return jsonable_encoder(_in_scope(request, conn, who, found))
    if not scope_for(who).everything:
        raise NotFound("listing every customer needs the admin or cx_lead role; "
                       "look one up by identifier instead, e.g. ?email=...")  # fmt: skip
    return jsonable_encoder(customers.list_customers(conn, page.limit, page.offset))


@router.get("/customers/{customer_id}", response_model=CustomerProfile, responses=responses(404))
def get_customer(
    request: Request, customer_id: str, who: Principal = Depends(require("read")),
    conn: Connection = Depends(db),
) -> Any:  # fmt: skip
    """Profile, identifiers, traits, facts and interactions per department."""
    found = service.profile(conn, customer_id)
    return jsonable_encoder(_in_scope(request, conn, who, found))


@router.get("/customers/{customer_id}/timeline", response_model=Timeline,
            responses=responses(404))  # fmt: skip
def get_timeline(
    request: Request,
    customer_id: str,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db),
) -> Any:
    """Interactions and survey responses newest first; pass ``next_cursor`` for the next page."""
    _in_scope(request, conn, who, service.profile(conn, customer_id))
    return jsonable_encoder(service.timeline(conn, customer_id, limit, cursor))


@router.post("/privacy/export", response_model=Record, responses=responses(404))
def privacy_export(
    identifier: str = Query(..., description="customer id, email, phone or kind:value"),
    who: Principal = Depends(require("admin")),
    conn: Connection = Depends(db),
) -> Any:
    """Everything cxm holds on one person (the request is recorded)."""
    return jsonable_encoder(service.export(conn, identifier, requester(who)))


@router.get("/privacy/requests", dependencies=[Depends(require("admin"))],
            response_model=list[Record])  # fmt: skip
def privacy_requests(conn: Connection = Depends(db)) -> Any:
    """Who exported or erased whom, and when."""
    return jsonable_encoder(service.requests(conn))

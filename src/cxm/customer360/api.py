"""``/api/v1/customers`` (360 profile, timeline, lookup) and ``/api/v1/privacy`` (admin)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from sqlalchemy.engine import Connection

from cxm.apitypes import Page, Record, paging
from cxm.customer360 import service
from cxm.customers import service as customers
from cxm.errors import Invalid, NotFound, responses
from cxm.org.auth import Principal
from cxm.org.scope import TeamReach, customer_not_found, readable_customer, scope_for
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


def _readable(request: Request, conn: Connection, who: Principal, identifier: str,
              customer_id: str | None = None) -> dict[str, Any]:  # fmt: skip
    """The profile for ``identifier`` if the caller's role may read it; else one 404.

    Unknown and out-of-scope customers answer alike (same status, same message, no id), so
    a lookup cannot tell whether someone is a customer. The rule is ``scope.may_read_customer``;
    agents reach customers through their team's cases, which the app hands in as
    ``app.state.team_reach``.
    """
    try:
        found = service.profile(conn, customer_id or service.lookup(conn, identifier))
    except NotFound:
        raise customer_not_found() from None
    reach: TeamReach | None = getattr(request.app.state, "team_reach", None)
    return readable_customer(conn, scope_for(who), found, reach)


@router.get(
    "/customers", response_model=list[CustomerRow] | CustomerProfile, responses=responses(404)
)
def list_or_find(
    request: Request,
    page: Paging,
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db, scope="function"),
) -> Any:
    """Profiles, most recently seen first; with ``?email=`` (or phone, user_id, anonymous_id,
    crm_id, identifier=kind:value) the one matching profile."""
    given = {k: v for k, v in request.query_params.items() if k in (*LOOKUP_KINDS, "identifier")}
    if len(given) > 1:
        raise Invalid(f"look up by one identifier at a time, not {', '.join(sorted(given))}")
    if given:
        ((kind, value),) = given.items()
        identifier = value if kind == "identifier" else f"{kind}:{value}"
        return jsonable_encoder(_readable(request, conn, who, identifier))
    if not scope_for(who).everything:
        raise NotFound("listing every customer needs the admin or cx_lead role; "
                       "look one up by identifier instead, e.g. ?email=...")  # fmt: skip
    return jsonable_encoder(customers.list_customers(conn, page.limit, page.offset))


@router.get("/customers/{customer_id}", response_model=CustomerProfile, responses=responses(404))
def get_customer(
    request: Request, customer_id: str, who: Principal = Depends(require("read")),
    conn: Connection = Depends(db, scope="function"),
) -> Any:  # fmt: skip
    """Profile, identifiers, traits, facts and interactions per department."""
    return jsonable_encoder(_readable(request, conn, who, customer_id, customer_id))


@router.get("/customers/{customer_id}/timeline", response_model=Timeline,
            responses=responses(404))  # fmt: skip
def get_timeline(
    request: Request,
    customer_id: str,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db, scope="function"),
) -> Any:
    """Interactions and survey responses newest first; pass ``next_cursor`` for the next page."""
    found = _readable(request, conn, who, customer_id, customer_id)
    return jsonable_encoder(service.timeline(conn, found["id"], limit, cursor))


@router.post("/privacy/export", response_model=Record, responses=responses(404))
def privacy_export(
    identifier: str = Query(..., description="customer id, email, phone or kind:value"),
    who: Principal = Depends(require("admin")),
    conn: Connection = Depends(db, scope="function"),
) -> Any:
    """Everything cxm holds on one person (the request is recorded)."""
    return jsonable_encoder(service.export(conn, identifier, requester(who)))


@router.get("/privacy/requests", dependencies=[Depends(require("admin"))],
            response_model=list[Record])  # fmt: skip
def privacy_requests(conn: Connection = Depends(db, scope="function")) -> Any:
    """Who exported or erased whom, and when."""
    return jsonable_encoder(service.requests(conn))


class TraitTypeIn(Record):
    """The type a trait's values read as: number, date, boolean or string."""

    type: str


@router.get("/traits", dependencies=[Depends(require("read"))])
def list_traits(conn: Connection = Depends(db, scope="function")) -> list[Record]:
    """Every customer trait with its type (inferred on first sight, or declared), whether it
    was declared, and how many customers have a value."""
    from cxm.customers import traits

    return [Record.model_validate(r) for r in traits.listing(conn)]


@router.put("/traits/{name}", dependencies=[Depends(require("admin"))], responses=responses(422))
def declare_trait(
    name: str, body: TraitTypeIn, conn: Connection = Depends(db, scope="function")
) -> Record:
    """Declare the type of a trait (it is never re-inferred); 422 for an unknown type."""
    from cxm.customers import traits

    traits.declare(conn, name, body.type)
    return Record.model_validate({"name": name, "type": body.type, "declared": True})

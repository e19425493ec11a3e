"""REST endpoints for surveys: definitions, links, invitations, contact rules, the funnel."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from cxm.errors import NotFound
from cxm.org.security import db, get_engine, require
from cxm.surveys import analytics, people, service

router = APIRouter(tags=["surveys"])
read = Depends(require("read"))
admin = Depends(require("admin"))


class InvitationCreate(BaseModel):
    customer: str = Field(description="email, phone, kind:value or customer id")
    language: str | None = None
    channel: str = "link"


class ContactRuleBody(BaseModel):
    min_days: int = Field(ge=0, le=365)
    quiet_start_hour: int | None = Field(None, ge=0, le=23)
    quiet_end_hour: int | None = Field(None, ge=0, le=23)


class UnsubscribeBody(BaseModel):
    customer: str


def _base(request: Request) -> str:
    return str(request.app.state.settings.base_url)


@router.get("/surveys", dependencies=[read])
def list_surveys(conn: Connection = Depends(db)) -> list[dict[str, Any]]:
    return [s.__dict__ for s in service.list_surveys(conn)]


@router.post("/surveys", dependencies=[admin])
def apply_survey(
    body: dict[str, Any] = Body(..., description="a survey definition (same as the YAML)"),
    conn: Connection = Depends(db),
) -> JSONResponse:
    result = service.apply_data(conn, body)
    return JSONResponse(result.__dict__, status_code=201 if result.status == "created" else 200)


@router.get("/surveys/{key}", dependencies=[read])
def get_survey(key: str, version: int | None = None, conn: Connection = Depends(db)) -> Any:
    if version is None:
        return service.export_definition(conn, key)
    return service.get_definition(conn, key, version).model_dump(mode="json", exclude_none=True)


@router.get("/surveys/{key}/link", dependencies=[read])
def survey_link(
    key: str, request: Request, channel: str = "web", conn: Connection = Depends(db)
) -> dict[str, str]:
    """The open link (for web, QR codes) and an iframe snippet to embed it."""
    if not service.get_definition(conn, key).open_link:
        raise NotFound(f"survey '{key}' has no open link (open_link: false)")
    return {
        "link": service.open_link(_base(request), key, channel),
        "embed": service.embed_snippet(_base(request), key, channel),
    }


@router.post("/surveys/{key}/invitations", status_code=201, dependencies=[admin])
def create_invitation(
    key: str, body: InvitationCreate, request: Request, conn: Connection = Depends(db)
) -> dict[str, str]:
    """A personal link for a channel cxm does not send itself (SMS, receipts)."""
    link = service.personal_link(
        conn, _base(request), key, body.customer, body.language, body.channel
    )
    return {"link": link}


@router.get("/surveys/{key}/funnel", dependencies=[read])
def survey_funnel(
    key: str, request: Request, conn: Connection = Depends(db)
) -> list[dict[str, Any]]:
    service.current_version(conn, key)  # 404 for an unknown survey
    return analytics.funnel(get_engine(request), key)


@router.get("/contact-rules", dependencies=[read])
def list_contact_rules(conn: Connection = Depends(db)) -> list[dict[str, Any]]:
    return [r.__dict__ for r in service.contact_rules_list(conn)]


@router.put("/contact-rules/{scope}", dependencies=[admin])
def set_contact_rule(
    scope: str, body: ContactRuleBody, conn: Connection = Depends(db)
) -> dict[str, Any]:
    rule = service.ContactRule(scope, body.min_days, body.quiet_start_hour, body.quiet_end_hour)
    return service.set_contact_rule(conn, rule).__dict__


@router.post("/unsubscribes", status_code=201, dependencies=[admin])
def unsubscribe(body: UnsubscribeBody, conn: Connection = Depends(db)) -> dict[str, str]:
    customer_id = people.find(conn, body.customer)
    if customer_id is None:
        raise NotFound(f"no customer matches '{body.customer}'")
    service.unsubscribe(conn, customer_id, "api")
    return {"customer_id": customer_id}

"""REST endpoints for surveys: definitions, links, invitations, contact rules, the funnel."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from cxm.config import link_base
from cxm.errors import NotFound, responses
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


class SurveyOut(BaseModel):
    key: str
    title: str
    kind: str
    version: int
    languages: list[str]
    questions: int
    triggers: int
    updated_at: dt.datetime


class ApplyOut(BaseModel):
    key: str
    version: int
    status: Literal["created", "updated", "unchanged"]


class SurveyLink(BaseModel):
    link: str
    embed: str


class PersonalLink(BaseModel):
    link: str


class FunnelRow(BaseModel):
    survey_key: str
    channel: str
    invited: int
    suppressed: int
    sent: int
    opened: int
    started: int
    completed: int
    suppressed_by_reason: dict[str, int]
    response_rate: float | None


class ContactRuleOut(BaseModel):
    scope: str
    min_days: int
    quiet_start_hour: int | None
    quiet_end_hour: int | None


class Unsubscribed(BaseModel):
    customer_id: str


def _base(request: Request) -> str:
    return link_base(request.app.state.settings, str(request.base_url))


@router.get("/surveys", dependencies=[read])
def list_surveys(conn: Connection = Depends(db, scope="function")) -> list[SurveyOut]:
    return [SurveyOut.model_validate(s.__dict__) for s in service.list_surveys(conn)]


@router.post(
    "/surveys",
    dependencies=[admin],
    response_model=ApplyOut,
    status_code=201,
    responses={200: {"model": ApplyOut, "description": "updated or unchanged"}, **responses(409)},
)
def apply_survey(
    body: dict[str, Any] = Body(..., description="a survey definition (same as the YAML)"),
    conn: Connection = Depends(db, scope="function"),
) -> JSONResponse:
    result = service.apply_data(conn, body)
    return JSONResponse(result.__dict__, status_code=201 if result.status == "created" else 200)


@router.get("/surveys/{key}", dependencies=[read], responses=responses(404))
def get_survey(
    key: str, version: int | None = None, conn: Connection = Depends(db, scope="function")
) -> dict[str, Any]:
    """The survey's definition, the same document as its YAML file."""
    if version is None:
        return service.export_definition(conn, key)
    return service.get_definition(conn, key, version).model_dump(mode="json", exclude_none=True)


@router.get("/surveys/{key}/link", dependencies=[read], responses=responses(404))
def survey_link(
    key: str,
    request: Request,
    channel: str = "web",
    conn: Connection = Depends(db, scope="function"),
) -> SurveyLink:
    """The open link (for web, QR codes) and an iframe snippet to embed it."""
    if not service.get_definition(conn, key).open_link:
        raise NotFound(f"survey '{key}' has no open link (open_link: false)")
    return SurveyLink(
        link=service.open_link(_base(request), key, channel),
        embed=service.embed_snippet(_base(request), key, channel),
    )


@router.post("/surveys/{key}/invitations", status_code=201, dependencies=[admin],
             responses=responses(404, 409))  # fmt: skip
def create_invitation(
    key: str,
    body: InvitationCreate,
    request: Request,
    conn: Connection = Depends(db, scope="function"),
) -> PersonalLink:
    """A personal link for a channel cxm does not send itself (SMS, receipts)."""
    link = service.personal_link(
        conn, _base(request), key, body.customer, body.language, body.channel
    )
    return PersonalLink(link=link)


@router.get("/surveys/{key}/funnel", dependencies=[read], responses=responses(404))
def survey_funnel(
    key: str, request: Request, conn: Connection = Depends(db, scope="function")
) -> list[FunnelRow]:
    service.current_version(conn, key)  # 404 for an unknown survey
    return [FunnelRow.model_validate(r) for r in analytics.funnel(get_engine(request), key)]


@router.get("/contact-rules", dependencies=[read])
def list_contact_rules(conn: Connection = Depends(db, scope="function")) -> list[ContactRuleOut]:
    return [ContactRuleOut.model_validate(r.__dict__) for r in service.contact_rules_list(conn)]


@router.put("/contact-rules/{scope}", dependencies=[admin])
def set_contact_rule(
    scope: str, body: ContactRuleBody, conn: Connection = Depends(db, scope="function")
) -> ContactRuleOut:
    rule = service.ContactRule(scope, body.min_days, body.quiet_start_hour, body.quiet_end_hour)
    return ContactRuleOut.model_validate(service.set_contact_rule(conn, rule).__dict__)


@router.post("/unsubscribes", status_code=201, dependencies=[admin], responses=responses(404))
def unsubscribe(
    body: UnsubscribeBody, conn: Connection = Depends(db, scope="function")
) -> Unsubscribed:
    customer_id = people.find(conn, body.customer)
    if customer_id is None:
        raise NotFound(f"no customer matches '{body.customer}'")
    service.unsubscribe(conn, customer_id, "api")
    return Unsubscribed(customer_id=customer_id)

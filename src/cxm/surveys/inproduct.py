"""In-product surveys: a small script on the company's own pages asks cxm, when an event
happens or a page is viewed, whether a survey should show; cxm answers with a personal
invitation link when an in-product trigger matches and the contact rules allow it.

The decision is the same as for email and SMS (:func:`cxm.surveys.fatigue.check` on the one
invitations ledger, channel ``in_product``), so a customer who was emailed a survey inside the
fatigue window is not shown one in the product, and the reverse. The person is identified by the
ids the page passes (``user_id``, the one analytics.js ``identify`` uses, or the snippet's
``anonymous_id``), looked up among known identities only: the endpoint never creates a customer,
and its answer never says why nothing shows (it is public; reasons stay in cxm).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.engine import Connection

from cxm.customers import service as customers
from cxm.org.security import get_engine
from cxm.store import utcnow
from cxm.surveys import fatigue, people, service
from cxm.surveys.tables import invitations, trigger_rules

SCRIPT = Path(__file__).parent / "static" / "inproduct.js"
CHANNEL = "in_product"
router = APIRouter(include_in_schema=False)


class Check(BaseModel):
    """What the page reports: who (a user id or the snippet's anonymous id), what, where."""

    model_config = ConfigDict(extra="ignore")
    user_id: str | None = Field(None, max_length=200)
    anonymous_id: str | None = Field(None, max_length=200)
    event: str = Field("page_viewed", min_length=1, max_length=200)
    path: str = Field("/", max_length=2000)
    properties: dict[str, Any] = Field(default_factory=dict)


def _matches(rule: Any, check: Check) -> bool:
    if rule.event != check.event:
        return False
    for name, wanted in (rule.filters or {}).items():
        if name == "path":
            if not fnmatch.fnmatchcase(check.path, str(wanted)):
                return False
        elif str(check.properties.get(name)) != str(wanted):
            return False
    return True


def _customer(conn: Connection, check: Check) -> str | None:
    for kind, value in (("user_id", check.user_id), ("anonymous_id", check.anonymous_id)):
        if value:
            found = customers.find(conn, f"{kind}:{value}")
            if found:
                return found
    return None


def decide(
    conn: Connection, check: Check, base_url: str, now: dt.datetime | None = None
) -> dict[str, Any]:
    """``{"show": True, "url", "title", "survey"}`` with a new in-product invitation, or
    ``{"show": False}``. One survey at most per call; the first matching trigger wins."""
    now = now or utcnow()
    customer = _customer(conn, check)
    if customer is None:
        return {"show": False}
    rules = conn.execute(
        sa.select(trigger_rules)
        .where(trigger_rules.c.channel == CHANNEL, trigger_rules.c.event == check.event)
        .order_by(trigger_rules.c.id)
    ).all()
    for rule in rules:
        if not _matches(rule, check):
            continue
        verdict = fatigue.check(conn, rule.survey_key, customer, now, channel=CHANNEL)
        if not verdict.send:
            return {"show": False}
        defn = service.get_definition(conn, rule.survey_key)
        preferred = people.traits(conn, customer).get("language")
        language = preferred if preferred in defn.languages else None
        inv = service.create_invitation(
            conn, rule.survey_key, customer_id=customer, channel=CHANNEL, language=language,
            touchpoint=rule.touchpoint_key, trigger_rule_id=rule.id, now=now,
        )  # fmt: skip
        conn.execute(
            invitations.update()
            .where(invitations.c.id == inv.id)
            .values(status="sent", sent_at=now)
        )
        lang = language or defn.default_language
        return {
            "show": True,
            "survey": rule.survey_key,
            "title": defn.title.get(lang) or defn.title[defn.default_language],
            "url": service.invitation_link(base_url, str(inv.token), language),
        }
    return {"show": False}


def _cors(response: Response) -> Response:
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Vary"] = "Origin"
    return response


@router.get("/inproduct/cxm.js")
def script() -> Response:
    """The snippet (plain JavaScript, no framework)."""
    return Response(
        SCRIPT.read_bytes(),
        media_type="application/javascript",
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )


@router.post("/inproduct/check")
async def check_endpoint(request: Request) -> Response:
    """Whether to show a survey now; the body is JSON (sent as text/plain by the snippet)."""
    raw = await request.body()
    if len(raw) > 16_384:
        return _cors(JSONResponse({"detail": "the request is larger than 16 KiB"}, 413))
    try:
        check = Check.model_validate(json.loads(raw or b"{}"))
    except (ValueError, ValidationError) as exc:
        detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else "not JSON"
        return _cors(JSONResponse({"detail": f"invalid check: {detail}"}, 422))
    if not check.user_id and not check.anonymous_id:
        return _cors(JSONResponse({"detail": "give user_id or anonymous_id"}, 422))
    settings = request.app.state.settings

    def work() -> dict[str, Any]:
        with get_engine(request).begin() as conn:
            return decide(conn, check, settings.base_url)

    return _cors(JSONResponse(await run_in_threadpool(work)))

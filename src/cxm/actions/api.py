"""REST: /api/v1/cases, /api/v1/rules, /api/v1/initiatives (scoped per role on the server)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel
from sqlalchemy.engine import Connection

from cxm.actions import analytics, service
from cxm.actions.schemas import (
    AssignBody,
    BulkAssignBody,
    InitiativeIn,
    NoteBody,
    RootCauseBody,
    RuleIn,
    StatusBody,
    WebhookIn,
)
from cxm.apitypes import Page, Record, paging, read_text
from cxm.errors import Invalid, NotFound, responses
from cxm.insights import impact
from cxm.org.auth import Principal
from cxm.org.scope import may_read_initiatives, readable_user_id, scope_for
from cxm.org.security import db, get_engine, require
from cxm.store.analytics import reading
from cxm.yamldoc import parse

router = APIRouter(tags=["closed loop"])
Paging = Annotated[Page, Depends(paging(200))]
# /cases/metrics, /cases/assign and /cases/root-causes are routes, never case ids.
CaseId = Annotated[
    str, PathParam(json_schema_extra={"not": {"enum": ["metrics", "assign", "root-causes"]}})
]
YAML_BODY = {
    "content": {
        "application/yaml": {"schema": {"type": "string"}},
        "application/json": {"schema": {"type": "object"}},
    },
    "required": True,
}


class CaseOut(Record):
    """A case; ``GET /cases/{id}`` adds its history, notes, root causes and follow-up."""

    id: str
    title: str
    status: str
    priority: str
    rule_key: str | None = None
    touchpoint_key: str | None = None
    department_key: str | None = None
    team_key: str | None = None
    assignee: str | None = None
    sla_state: str | None = None
    opened_at: dt.datetime | None = None


class Assigned(BaseModel):
    assigned: int


class Applied(BaseModel):
    applied: list[str]


class RootCauseOut(Record):
    key: str
    name: str
    category: str | None = None
    department_key: str | None = None


class ClosedLoop(Record):
    cases_opened: int
    cases_open: int
    hours_to_first_response: float | None
    hours_to_resolution: float | None
    sla_attainment: float | None
    loop_closure_rate: float | None
    recovery_rate: float | None


class RuleOut(Record):
    key: str
    name: str
    enabled: bool


class Opened(BaseModel):
    opened: dict[str, int]


class WebhookOut(Record):
    id: str
    url: str
    events: list[str]
    active: bool
    format: str
    name: str | None = None


class InitiativeOut(Record):
    id: str
    name: str


@router.get("/cases", responses=responses(404))
def list_cases(
    page: Paging,
    status: list[str] = Query(default=[]),
    team: str | None = None,
    assignee: str | None = Query(None, description="email or id; 'none' for unassigned"),
    priority: str | None = None,
    rule: str | None = None,
    touchpoint: str | None = None,
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db, scope="function"),
) -> list[CaseOut]:
    """Cases the caller may see, sorted by SLA risk (agents: their team's only)."""
    scope = scope_for(who)
    if assignee and assignee != "none":
        # A user outside the caller's scope filters like an unknown one: no cases, no hint.
        assignee = readable_user_id(conn, scope, assignee)
        if assignee is None:
            return []
    found = service.list_cases(
        conn,
        scope,
        status=status or None,
        team=team,
        assignee=assignee,
        priority=priority,
        rule=rule,
        touchpoint=touchpoint,
        limit=page.limit,
        offset=page.offset,
    )
    return [CaseOut.model_validate(c) for c in found]


@router.post("/cases/assign", responses=responses(404))
def bulk_assign(
    body: BulkAssignBody,
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db, scope="function"),
) -> Assigned:
    n = service.bulk_assign(
        conn, scope_for(who), who.email, body.case_ids, body.assignee, body.reason
    )
    return Assigned(assigned=n)


@router.get("/cases/root-causes")
def root_causes(
    who: Principal = Depends(require("read")), conn: Connection = Depends(db, scope="function")
) -> list[RootCauseOut]:
    return [RootCauseOut.model_validate(r) for r in service.list_root_causes(conn)]


@router.put("/cases/root-causes", openapi_extra={"requestBody": YAML_BODY},
            responses=responses(404, 413))  # fmt: skip
async def apply_root_causes(
    request: Request,
    who: Principal = Depends(require("admin")),
    conn: Connection = Depends(db, scope="function"),
) -> Applied:
    """Replace or extend the root-cause taxonomy with a YAML body (see root_causes.yaml)."""
    text = await read_text(request)
    return Applied(applied=service.apply_root_causes(conn, parse(text, "request body")))


@router.get("/cases/metrics")
def closed_loop_metrics(request: Request, who: Principal = Depends(require("read"))) -> ClosedLoop:
    """Cases opened, time to first response and resolution, SLA attainment, loop closure,
    recovery."""
    return ClosedLoop.model_validate(analytics.closed_loop(get_engine(request), scope_for(who)))


@router.get("/cases/{case_id}", response_model=CaseOut, responses=responses(404))
def get_case(
    case_id: CaseId,
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db, scope="function"),
) -> dict[str, Any]:
    return service.get_case(conn, scope_for(who), case_id)


@router.post("/cases/{case_id}/assign", response_model=CaseOut, responses=responses(404))
def assign(
    case_id: CaseId,
    body: AssignBody,
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db, scope="function"),
) -> dict[str, Any]:
    return service.assign(
        conn, scope_for(who), who.email, case_id, body.assignee, team=body.team, reason=body.reason
    )


@router.post("/cases/{case_id}/status", response_model=CaseOut, responses=responses(404, 409))
def set_status(
    case_id: CaseId,
    body: StatusBody,
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db, scope="function"),
) -> dict[str, Any]:
    return service.set_status(
        conn,
        scope_for(who),
        who.email,
        case_id,
        body.status,
        reason=body.reason,
        followup=body.followup,
    )


@router.post("/cases/{case_id}/notes", status_code=201, response_model=CaseOut,
             responses=responses(404))  # fmt: skip
def add_note(
    case_id: CaseId,
    body: NoteBody,
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db, scope="function"),
) -> dict[str, Any]:
    return service.add_note(conn, scope_for(who), who.email, case_id, body.body)


@router.put("/cases/{case_id}/root-causes", response_model=CaseOut, responses=responses(404))
def set_root_causes(
    case_id: CaseId,
    body: RootCauseBody,
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db, scope="function"),
) -> dict[str, Any]:
    return service.set_root_causes(conn, scope_for(who), who.email, case_id, body.root_causes)


# ---- rules ----


@router.get("/rules")
def list_rules(
    who: Principal = Depends(require("read")), conn: Connection = Depends(db, scope="function")
) -> list[RuleOut]:
    return [RuleOut.model_validate(r) for r in service.list_rules(conn)]


@router.put("/rules", openapi_extra={"requestBody": YAML_BODY}, responses=responses(404, 413))
async def apply_rules(
    request: Request,
    who: Principal = Depends(require("admin")),
    conn: Connection = Depends(db, scope="function"),
) -> Applied:
    """Apply a rules file (YAML or JSON body); errors name the line."""
    text = await read_text(request)
    return Applied(applied=service.apply_rules(conn, parse(text, "request body")))


@router.put("/rules/{key}", response_model=Record, responses=responses(404))
def put_rule(
    key: str,
    body: RuleIn,
    who: Principal = Depends(require("admin")),
    conn: Connection = Depends(db, scope="function"),
) -> dict[str, Any]:
    if body.key != key:
        raise Invalid(f"key: the body names rule '{body.key}' but the URL names '{key}'")
    service.apply_rules(conn, parse(yaml.safe_dump({"rules": [body.model_dump(mode="json")]})))
    return service.get_rule(conn, key).model_dump(mode="json")


@router.delete("/rules/{key}", status_code=204, responses=responses(404))
def delete_rule(
    key: str,
    who: Principal = Depends(require("admin")),
    conn: Connection = Depends(db, scope="function"),
) -> None:
    service.delete_rule(conn, key)


@router.post("/rules/run")
def run_rules(
    who: Principal = Depends(require("admin")), conn: Connection = Depends(db, scope="function")
) -> Opened:
    """Evaluate every enabled rule now; idempotent."""
    return Opened(opened=service.run_rules(conn))


@router.get("/rules/webhooks")
def list_webhooks(
    who: Principal = Depends(require("admin")), conn: Connection = Depends(db, scope="function")
) -> list[WebhookOut]:
    return [WebhookOut.model_validate(w) for w in service.list_webhooks(conn)]


@router.post("/rules/webhooks", status_code=201)
def add_webhook(
    body: WebhookIn,
    who: Principal = Depends(require("admin")),
    conn: Connection = Depends(db, scope="function"),
) -> WebhookOut:
    return WebhookOut.model_validate(service.add_webhook(conn, body))


@router.get("/rules/webhooks/deliveries")
def deliveries(
    who: Principal = Depends(require("admin")), conn: Connection = Depends(db, scope="function")
) -> list[Record]:
    return [Record.model_validate(d) for d in service.deliveries(conn)]


# ---- initiatives ----


def _initiatives_reader(who: Principal = Depends(require("read"))) -> Principal:
    if not may_read_initiatives(scope_for(who)):
        raise NotFound("initiatives are for admins, CX leads and managers")
    return who


@router.get("/initiatives", responses=responses(404))
def list_initiatives(
    who: Principal = Depends(_initiatives_reader), conn: Connection = Depends(db, scope="function")
) -> list[InitiativeOut]:
    return [InitiativeOut.model_validate(i) for i in service.list_initiatives(conn)]


@router.post("/initiatives", status_code=201, response_model=InitiativeOut,
             responses=responses(404))  # fmt: skip
def create_initiative(
    body: InitiativeIn,
    who: Principal = Depends(require("admin")),
    conn: Connection = Depends(db, scope="function"),
) -> dict[str, Any]:
    return service.create_initiative(conn, body)


@router.get("/initiatives/{initiative_id}", response_model=InitiativeOut,
            responses=responses(404))  # fmt: skip
def get_initiative(
    initiative_id: str,
    request: Request,
    who: Principal = Depends(_initiatives_reader),
    conn: Connection = Depends(db, scope="function"),
) -> dict[str, Any]:
    """The initiative with its targeted metric before and after the start, and a test; and
    its difference in differences against the same metric at the other touchpoints."""
    init = service.get_initiative(conn, initiative_id)
    with reading(get_engine(request)) as con:
        did = impact.initiative_impact(con, init["touchpoints"], init["metric"],
                                       init["start_date"])  # fmt: skip
    return {**init, "effect": analytics.before_after(get_engine(request), init),
            "difference_in_differences": did}  # fmt: skip


# ---- digests ----


class DigestSubscriptionIn(BaseModel):
    model_config = {"extra": "forbid"}
    email: str | None = None  # default: the caller
    department: str
    weekday: int = 0  # 0 Monday .. 6 Sunday


def _digest_scope(who: Principal, department_key: str) -> Any:
    scope = scope_for(who)
    if not scope.everything and scope.department_key != department_key:
        # Outside the caller's scope reads as missing, like every scoped object.
        raise NotFound(f"department '{department_key}' has no digest you may read")
    return scope


@router.get("/reports/digest/{department_key}", responses=responses(404, 422))
def department_digest(
    department_key: str,
    request: Request,
    week: dt.date | None = Query(None, description="the Monday the week starts; default: last"),
    who: Principal = Depends(require("read")),
) -> Record:
    """A department's weekly digest: scores with change, movers, top themes, overdue cases."""
    from dataclasses import asdict

    from cxm.actions import digest

    _digest_scope(who, department_key)
    start = week or digest.week_of(dt.datetime.now(dt.UTC).date())
    built = digest.build(get_engine(request), department_key, start)
    return Record.model_validate(
        asdict(built) | {"scores": [asdict(s) | {"change": s.change} for s in built.scores]}
    )


@router.post("/reports/digest/subscriptions", status_code=201, responses=responses(403, 404))
def subscribe_digest(
    body: DigestSubscriptionIn,
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db, scope="function"),
) -> Record:
    """Subscribe yourself (or, as admin or CX lead, anyone) to a department's weekly digest."""
    from cxm.actions import digest
    from cxm.errors import Forbidden

    scope = _digest_scope(who, body.department)
    email = body.email or who.email
    if email is None:
        raise Invalid("an API key without a user must name the 'email' to subscribe")
    if email.lower() != (who.email or "").lower() and not scope.everything:
        raise Forbidden("only admins and CX leads subscribe other people")
    return Record.model_validate(
        digest.subscribe(conn, scope, email, body.department, body.weekday)
    )

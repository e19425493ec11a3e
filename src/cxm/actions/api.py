"""REST: /api/v1/cases, /api/v1/rules, /api/v1/initiatives (scoped per role on the server)."""

from __future__ import annotations

from typing import Any

import yaml
from fastapi import APIRouter, Depends, Query, Request
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
from cxm.errors import Invalid, NotFound
from cxm.org.auth import Principal
from cxm.org.scope import may_read_initiatives, readable_user_id, scope_for
from cxm.org.security import db, get_engine, require
from cxm.yamldoc import parse

router = APIRouter(tags=["closed loop"])


@router.get("/cases")
def list_cases(
    status: list[str] = Query(default=[]),
    team: str | None = None,
    assignee: str | None = Query(None, description="email or id; 'none' for unassigned"),
    priority: str | None = None,
    rule: str | None = None,
    touchpoint: str | None = None,
    limit: int = 200,
    offset: int = 0,
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db),
) -> list[dict[str, Any]]:
    """Cases the caller may see, sorted by SLA risk (agents: their team's only)."""
    scope = scope_for(who)
    if assignee and assignee != "none":
        # A user outside the caller's scope filters like an unknown one: no cases, no hint.
        assignee = readable_user_id(conn, scope, assignee)
        if assignee is None:
            return []
    return service.list_cases(
        conn,
        scope,
        status=status or None,
        team=team,
        assignee=assignee,
        priority=priority,
        rule=rule,
        touchpoint=touchpoint,
        limit=limit,
        offset=offset,
    )


@router.post("/cases/assign")
def bulk_assign(
    body: BulkAssignBody, who: Principal = Depends(require("read")), conn: Connection = Depends(db)
) -> dict[str, int]:
    n = service.bulk_assign(
        conn, scope_for(who), who.email, body.case_ids, body.assignee, body.reason
    )
    return {"assigned": n}


@router.get("/cases/root-causes")
def root_causes(
    who: Principal = Depends(require("read")), conn: Connection = Depends(db)
) -> list[dict[str, Any]]:
    return service.list_root_causes(conn)


@router.put("/cases/root-causes")
async def apply_root_causes(
    request: Request, who: Principal = Depends(require("admin")), conn: Connection = Depends(db)
) -> dict[str, list[str]]:
    """Replace or extend the root-cause taxonomy with a YAML body (see root_causes.yaml)."""
    text = (await request.body()).decode("utf-8", "replace")
    return {"applied": service.apply_root_causes(conn, parse(text, "request body"))}


@router.get("/cases/metrics")
def closed_loop_metrics(
    request: Request, who: Principal = Depends(require("read"))
) -> dict[str, Any]:
    """Cases opened, time to first response and resolution, SLA attainment, loop closure,
    recovery."""
    return analytics.closed_loop(get_engine(request), scope_for(who))


@router.get("/cases/{case_id}")
def get_case(
    case_id: str, who: Principal = Depends(require("read")), conn: Connection = Depends(db)
) -> dict[str, Any]:
    return service.get_case(conn, scope_for(who), case_id)


@router.post("/cases/{case_id}/assign")
def assign(
    case_id: str,
    body: AssignBody,
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db),
) -> dict[str, Any]:
    return service.assign(
        conn, scope_for(who), who.email, case_id, body.assignee, team=body.team, reason=body.reason
    )


@router.post("/cases/{case_id}/status")
def set_status(
    case_id: str,
    body: StatusBody,
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db),
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


@router.post("/cases/{case_id}/notes", status_code=201)
def add_note(
    case_id: str,
    body: NoteBody,
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db),
) -> dict[str, Any]:
    return service.add_note(conn, scope_for(who), who.email, case_id, body.body)


@router.put("/cases/{case_id}/root-causes")
def set_root_causes(
    case_id: str,
    body: RootCauseBody,
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db),
) -> dict[str, Any]:
    return service.set_root_causes(conn, scope_for(who), who.email, case_id, body.root_causes)


# ---- rules ----


@router.get("/rules")
def list_rules(
    who: Principal = Depends(require("read")), conn: Connection = Depends(db)
) -> list[dict[str, Any]]:
    return service.list_rules(conn)


@router.put("/rules")
async def apply_rules(
    request: Request, who: Principal = Depends(require("admin")), conn: Connection = Depends(db)
) -> dict[str, list[str]]:
    """Apply a rules file (YAML or JSON body); errors name the line."""
    text = (await request.body()).decode("utf-8", "replace")
    return {"applied": service.apply_rules(conn, parse(text, "request body"))}


@router.put("/rules/{key}")
def put_rule(
    key: str,
    body: RuleIn,
    who: Principal = Depends(require("admin")),
    conn: Connection = Depends(db),
) -> dict[str, Any]:
    if body.key != key:
        raise Invalid(f"key: the body names rule '{body.key}' but the URL names '{key}'")
    service.apply_rules(conn, parse(yaml.safe_dump({"rules": [body.model_dump(mode="json")]})))
    return service.get_rule(conn, key).model_dump(mode="json")


@router.delete("/rules/{key}", status_code=204)
def delete_rule(
    key: str, who: Principal = Depends(require("admin")), conn: Connection = Depends(db)
) -> None:
    service.delete_rule(conn, key)


@router.post("/rules/run")
def run_rules(
    who: Principal = Depends(require("admin")), conn: Connection = Depends(db)
) -> dict[str, dict[str, int]]:
    """Evaluate every enabled rule now; idempotent."""
    return {"opened": service.run_rules(conn)}


@router.get("/rules/webhooks")
def list_webhooks(
    who: Principal = Depends(require("admin")), conn: Connection = Depends(db)
) -> list[dict[str, Any]]:
    return service.list_webhooks(conn)


@router.post("/rules/webhooks", status_code=201)
def add_webhook(
    body: WebhookIn, who: Principal = Depends(require("admin")), conn: Connection = Depends(db)
) -> dict[str, Any]:
    return service.add_webhook(conn, body)


@router.get("/rules/webhooks/deliveries")
def deliveries(
    who: Principal = Depends(require("admin")), conn: Connection = Depends(db)
) -> list[dict[str, Any]]:
    return service.deliveries(conn)


# ---- initiatives ----


def _initiatives_reader(who: Principal = Depends(require("read"))) -> Principal:
    if not may_read_initiatives(scope_for(who)):
        raise NotFound("initiatives are for admins, CX leads and managers")
    return who


@router.get("/initiatives")
def list_initiatives(
    who: Principal = Depends(_initiatives_reader), conn: Connection = Depends(db)
) -> list[dict[str, Any]]:
    return service.list_initiatives(conn)


@router.post("/initiatives", status_code=201)
def create_initiative(
    body: InitiativeIn, who: Principal = Depends(require("admin")), conn: Connection = Depends(db)
) -> dict[str, Any]:
    return service.create_initiative(conn, body)


@router.get("/initiatives/{initiative_id}")
def get_initiative(
    initiative_id: str,
    request: Request,
    who: Principal = Depends(_initiatives_reader),
    conn: Connection = Depends(db),
) -> dict[str, Any]:
    """The initiative with its targeted metric before and after the start, and a test."""
    init = service.get_initiative(conn, initiative_id)
    return {**init, "effect": analytics.before_after(get_engine(request), init)}

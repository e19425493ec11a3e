"""REST endpoints for departments, teams and touchpoints (HTTP only; logic in service)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy.engine import Connection

from cxm.errors import NotFound, responses
from cxm.org import auth, schemas, service
from cxm.org.auth import Principal
from cxm.org.scope import readable_partners, scope_for
from cxm.org.security import db, require

router = APIRouter(tags=["org"])
read = Depends(require("read"))
admin = Depends(require("admin"))


@router.get("/departments", dependencies=[read])
def list_departments(conn: Connection = Depends(db, scope="function")) -> list[schemas.Department]:
    return service.list_departments(conn)


@router.get("/departments/{key}", dependencies=[read], responses=responses(404))
def get_department(
    key: str, conn: Connection = Depends(db, scope="function")
) -> schemas.Department:
    return service.get_department(conn, key)


@router.post("/departments", status_code=201, dependencies=[admin], responses=responses(409))
def create_department(
    body: schemas.DepartmentCreate, conn: Connection = Depends(db, scope="function")
) -> schemas.Department:
    return service.create_department(conn, body)


@router.patch("/departments/{key}", dependencies=[admin], responses=responses(404))
def update_department(
    key: str, body: schemas.DepartmentUpdate, conn: Connection = Depends(db, scope="function")
) -> schemas.Department:
    return service.update_department(conn, key, body)


@router.get("/teams", dependencies=[read])
def list_teams(
    department: str | None = None, conn: Connection = Depends(db, scope="function")
) -> list[schemas.Team]:
    return service.list_teams(conn, department)


@router.get("/teams/{key}", dependencies=[read], responses=responses(404))
def get_team(key: str, conn: Connection = Depends(db, scope="function")) -> schemas.Team:
    return service.get_team(conn, key)


@router.post("/teams", status_code=201, dependencies=[admin], responses=responses(404, 409))
def create_team(
    body: schemas.TeamCreate, conn: Connection = Depends(db, scope="function")
) -> schemas.Team:
    return service.create_team(conn, body)


@router.patch("/teams/{key}", dependencies=[admin], responses=responses(404))
def update_team(
    key: str, body: schemas.TeamUpdate, conn: Connection = Depends(db, scope="function")
) -> schemas.Team:
    return service.update_team(conn, key, body)


@router.get("/touchpoints", dependencies=[read])
def list_touchpoints(
    department: str | None = None, conn: Connection = Depends(db, scope="function")
) -> list[schemas.Touchpoint]:
    return service.list_touchpoints(conn, department)


@router.get("/touchpoints/{key}", dependencies=[read], responses=responses(404))
def get_touchpoint(
    key: str, conn: Connection = Depends(db, scope="function")
) -> schemas.Touchpoint:
    return service.get_touchpoint(conn, key)


@router.post("/touchpoints", status_code=201, dependencies=[admin], responses=responses(404, 409))
def create_touchpoint(
    body: schemas.TouchpointCreate, conn: Connection = Depends(db, scope="function")
) -> schemas.Touchpoint:
    return service.create_touchpoint(conn, body)


@router.patch("/touchpoints/{key}", dependencies=[admin], responses=responses(404))
def update_touchpoint(
    key: str, body: schemas.TouchpointUpdate, conn: Connection = Depends(db, scope="function")
) -> schemas.Touchpoint:
    return service.update_touchpoint(conn, key, body)


def _readable_partner(conn: Connection, who: Principal, key: str) -> schemas.Partner:
    scope = scope_for(who)
    readable = readable_partners(conn, scope)
    if readable is not None and key not in readable:
        raise NotFound(f"partner '{key}' not found in your scope")
    return service.get_partner(conn, key)


@router.get("/partners")
def list_partners(
    who: Principal = Depends(require("read")), conn: Connection = Depends(db, scope="function")
) -> list[schemas.Partner]:
    """Partners (couriers, resellers, installers) and the touchpoints each runs, those the
    caller reads (a partner user: their own; a manager: those running their touchpoints)."""
    readable = readable_partners(conn, scope_for(who))
    return [p for p in service.list_partners(conn) if readable is None or p.key in readable]


@router.get("/partners/{key}", responses=responses(404))
def get_partner(
    key: str,
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db, scope="function"),
) -> schemas.Partner:
    return _readable_partner(conn, who, key)


@router.post("/partners", status_code=201, dependencies=[admin], responses=responses(404, 409))
def create_partner(
    body: schemas.PartnerCreate, conn: Connection = Depends(db, scope="function")
) -> schemas.Partner:
    """Declare a partner and the touchpoints it runs for their owning departments."""
    return service.create_partner(conn, body)


@router.patch("/partners/{key}", dependencies=[admin], responses=responses(404, 409))
def update_partner(
    key: str, body: schemas.PartnerUpdate, conn: Connection = Depends(db, scope="function")
) -> schemas.Partner:
    """Rename a partner, change its kind or replace the touchpoints it runs."""
    return service.update_partner(conn, key, body)


@router.post("/keys", status_code=201, dependencies=[admin], responses=responses(404))
def create_api_key(
    body: schemas.ApiKeyCreate, conn: Connection = Depends(db, scope="function")
) -> schemas.ApiKeyCreated:
    """Create an API key; the answer holds it in plain text, the only time it is shown."""
    user_id = auth.user_id_for(conn, body.user) if body.user else None
    token = auth.create_api_key(conn, body.scope, user_id=user_id, name=body.name)
    return schemas.ApiKeyCreated(token=token, scope=body.scope, name=body.name)

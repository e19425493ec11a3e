"""``POST /api/v1/privacy/erase`` (admin keys only)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy.engine import Connection

from cxm.customer360.api import requester
from cxm.customer360.service import lookup
from cxm.errors import responses
from cxm.org.auth import Principal
from cxm.org.security import db, require
from cxm.privacy import service

router = APIRouter(tags=["privacy"])


class Erasure(BaseModel):
    customer_id: str
    counts: dict[str, int]


@router.post("/privacy/erase", responses=responses(404))
def privacy_erase(
    identifier: str = Query(..., description="customer id, email, phone or kind:value"),
    who: Principal = Depends(require("admin")),
    conn: Connection = Depends(db, scope="function"),
) -> Erasure:
    """Erase one person's personal data everywhere; aggregates stay right (recorded)."""
    customer_id = lookup(conn, identifier)
    return Erasure(customer_id=customer_id, counts=service.erase(conn, customer_id, requester(who)))

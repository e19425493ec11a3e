"""``POST /api/v1/privacy/erase`` (admin keys only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy.engine import Connection

from cxm.customer360.api import requester
from cxm.customer360.service import lookup
from cxm.org.auth import Principal
from cxm.org.security import db, require
from cxm.privacy import service

router = APIRouter(tags=["privacy"])


@router.post("/privacy/erase")
def privacy_erase(
    identifier: str = Query(..., description="customer id, email, phone or kind:value"),
    who: Principal = Depends(require("admin")),
    conn: Connection = Depends(db),
) -> dict[str, Any]:
    """Erase one person's personal data everywhere; aggregates stay right (recorded)."""
    customer_id = lookup(conn, identifier)
    return {"customer_id": customer_id, "counts": service.erase(conn, customer_id, requester(who))}

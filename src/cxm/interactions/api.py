"""HTTP ingest: ``/api/v1/interactions`` (one, batch) and Segment's tracking API (``/v1/*``).

Bodies are read and checked here (size, JSON, shape) so every refusal names what was wrong;
events go to the app's group committer, and the answer comes after the commit.
"""

from __future__ import annotations

import json
import os
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.engine import Connection

from cxm.errors import responses
from cxm.interactions import segment
from cxm.interactions.groupcommit import committer_for
from cxm.interactions.service import ItemResult, unowned_touchpoints
from cxm.org.auth import Principal, authenticate_key
from cxm.org.security import db, get_engine, principal, require

router = APIRouter(tags=["interactions"])
segment_router = APIRouter(tags=["segment"], responses=responses(400, 401, 403, 413, 422))
BODY = {"content": {"application/json": {"schema": {"type": "object"}}}, "required": True}
INGEST_ERRORS = responses(400, 413)


class ItemOut(BaseModel):
    """What became of one event of a request."""

    index: int
    event_id: str | None
    status: str  # stored | duplicate | rejected
    error: str | None
    customer_id: str | None


class BatchOut(BaseModel):
    stored: int
    duplicates: int
    rejected: int
    items: list[ItemOut]


class SegmentOut(BatchOut):
    success: bool


def limits() -> tuple[int, int]:
    """(events per batch, bytes per body), from ``CXM_INGEST_MAX_EVENTS`` / ``_MAX_BYTES``."""
    events = int(os.environ.get("CXM_INGEST_MAX_EVENTS", "1000"))
    size = int(os.environ.get("CXM_INGEST_MAX_BYTES", str(5 * 1024 * 1024)))
    return events, size


async def read_json(request: Request) -> Any:
    """The body as JSON, or a 413/400 that says what to change."""
    _, max_bytes = limits()
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(413, f"body is {declared} bytes; the limit is {max_bytes} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise HTTPException(413, f"body exceeds the limit of {max_bytes} bytes")
    if request.headers.get("content-encoding", "").lower() == "gzip":
        import gzip

        try:
            body = gzip.decompress(body)
        except OSError:
            raise HTTPException(400, "body: content-encoding is gzip but the body is not") from None
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HTTPException(400, f"body: malformed JSON ({exc})") from None


def check_batch(events: Any, field: str) -> list[Any]:
    max_events, _ = limits()
    if not isinstance(events, list):
        raise HTTPException(422, f"{field}: expected a JSON array of events")
    if not events:
        raise HTTPException(422, f"{field}: the batch is empty")
    if len(events) > max_events:
        raise HTTPException(
            413, f"{field}: {len(events)} events; the limit is {max_events} per batch"
        )
    return events


async def store(request: Request, events: list[Any], source: str) -> list[ItemResult]:
    settings = request.app.state.settings
    committer = committer_for(request.app.state, get_engine(request), settings.default_phone_region)
    return await committer.store(events, source)


def summary(results: list[ItemResult]) -> dict[str, Any]:
    counts = {s: sum(r.status == s for r in results) for s in ("stored", "duplicate", "rejected")}
    return {
        "stored": counts["stored"],
        "duplicates": counts["duplicate"],
        "rejected": counts["rejected"],
        "items": [
            {
                "index": r.index,
                "event_id": r.event_id,
                "status": r.status,
                "error": r.error,
                "customer_id": r.customer_id,
            }
            for r in results
        ],
    }


@router.post(
    "/interactions",
    dependencies=[Depends(require("ingest"))],
    openapi_extra={"requestBody": BODY},
    status_code=201,
    response_model=ItemOut,
    responses={200: {"model": ItemOut, "description": "a duplicate"}, **INGEST_ERRORS},
)
async def post_interaction(request: Request) -> JSONResponse:
    """Store one event; 201 when stored, 200 when its ``event_id`` was stored before."""
    event = await read_json(request)
    if not isinstance(event, dict):
        raise HTTPException(422, "body: expected one event as a JSON object")
    (result,) = await store(request, [event], "api")
    if result.status == "rejected":
        raise HTTPException(422, result.error)
    item = summary([result])["items"][0]
    return JSONResponse(item, status_code=201 if result.status == "stored" else 200)


@router.post(
    "/interactions/batch",
    dependencies=[Depends(require("ingest"))],
    openapi_extra={"requestBody": BODY},
    response_model=BatchOut,
    responses=INGEST_ERRORS,
)
async def post_batch(request: Request) -> dict[str, Any]:
    """Store up to the batch limit of events; reports per item stored, duplicate or rejected."""
    body = await read_json(request)
    events = body.get("events") if isinstance(body, dict) else body
    return summary(await store(request, check_batch(events, "events"), "api"))


@router.get("/interactions/touchpoints/unowned", dependencies=[Depends(require("read"))])
def unowned(conn: Connection = Depends(db)) -> list[str]:
    """Touchpoints seen in interactions that no department owns yet (assign them in org)."""
    return unowned_touchpoints(conn)


# ---- Segment HTTP tracking API ----


def _segment_principal(request: Request, body: Any) -> Principal:
    who = principal(request)
    if who is None and isinstance(body, dict) and isinstance(body.get("writeKey"), str):
        with get_engine(request).connect() as conn:
            who = authenticate_key(conn, body["writeKey"])
    if who is None:
        raise HTTPException(
            401,
            "missing or invalid write key: send an ingest API key as the HTTP Basic user "
            "name or as 'writeKey' in the body",
            headers={"WWW-Authenticate": "Basic"},
        )
    if not who.allows("ingest"):
        raise HTTPException(403, f"this key has scope '{who.scope}'; this needs 'ingest'")
    return who


async def _segment(request: Request, kind: str | None) -> dict[str, Any]:
    body = await read_json(request)
    _segment_principal(request, body)
    if kind is None:
        if not isinstance(body, dict):
            raise HTTPException(422, "body: expected an object with a 'batch' array")
        messages = check_batch(body.get("batch"), "batch")
        context = body.get("context")
    else:
        if not isinstance(body, dict):
            raise HTTPException(422, f"body: expected one {kind} message as a JSON object")
        messages, context = [body], None
    events = [segment.to_event(m, kind, context) for m in messages]
    result = summary(await store(request, events, "segment"))
    if kind is not None and result["rejected"]:
        raise HTTPException(400, result["items"][0]["error"])
    return {"success": True, **result}


for _kind in ("track", "identify", "page", "screen", "group", "alias"):

    async def _endpoint(request: Request, _k: str = _kind) -> dict[str, Any]:
        return await _segment(request, _k)

    segment_router.add_api_route(
        f"/v1/{_kind}",
        _endpoint,
        methods=["POST"],
        openapi_extra={"requestBody": BODY},
        summary=f"Segment {_kind}",
        response_model=SegmentOut,
    )


@segment_router.post("/v1/batch", openapi_extra={"requestBody": BODY}, summary="Segment batch",
                     response_model=SegmentOut)  # fmt: skip
async def segment_batch(request: Request) -> dict[str, Any]:
    return await _segment(request, None)

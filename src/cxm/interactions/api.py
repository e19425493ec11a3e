"""HTTP ingest: ``/api/v1/interactions`` (one, batch) and Segment's tracking API (``/v1/*``).

Bodies are read and checked here (size, JSON, shape) so every refusal names what was wrong;
events go to the app's group committer, and the answer comes after the commit.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.engine import Connection

from cxm.errors import responses
from cxm.interactions import limits, segment
from cxm.interactions.groupcommit import committer_for
from cxm.interactions.service import ItemResult, unowned_touchpoints
from cxm.org.auth import Principal, authenticate_key
from cxm.org.scope import may_see_customer_ids
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


def size_limits() -> tuple[int, int]:
    """(events per batch, bytes per body), from ``CXM_INGEST_MAX_EVENTS`` / ``_MAX_BYTES``."""
    events = int(os.environ.get("CXM_INGEST_MAX_EVENTS", "1000"))
    size = int(os.environ.get("CXM_INGEST_MAX_BYTES", str(5 * 1024 * 1024)))
    return events, size


async def read_json(request: Request) -> Any:
    """The body as JSON, or a refusal that says what to change (see ``read_body``)."""
    body, _ = await read_body(request)
    return body


async def read_body(request: Request) -> tuple[Any, bool]:
    """The body as JSON, and whether its text is free of unstorable escapes
    (``limits.storable_json``), or a refusal that says what to change.

    413 past ``CXM_INGEST_MAX_BYTES`` (before and after gzip/deflate decompression), 400 for
    malformed JSON or nesting past ``CXM_INGEST_MAX_DEPTH`` (found by a scan, before parsing),
    415 for an unknown content encoding, 422 for NaN/Infinity (naming the field).
    """
    _, max_bytes = size_limits()
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(413, f"body is {declared} bytes; the limit is {max_bytes} bytes")
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > max_bytes:
            raise HTTPException(413, f"body exceeds the limit of {max_bytes} bytes")
    try:
        encoding = request.headers.get("content-encoding", "")
        body = limits.inflate(bytes(received), encoding, max_bytes)
        return limits.loads(body), limits.storable_json(body)
    except limits.TooLarge as exc:
        raise HTTPException(413, str(exc)) from None
    except limits.Refused as exc:
        raise HTTPException(exc.status, str(exc)) from None


def check_batch(events: Any, field: str) -> list[Any]:
    max_events, _ = size_limits()
    if not isinstance(events, list):
        raise HTTPException(422, f"{field}: expected a JSON array of events")
    if not events:
        raise HTTPException(422, f"{field}: the batch is empty")
    if len(events) > max_events:
        raise HTTPException(
            413, f"{field}: {len(events)} events; the limit is {max_events} per batch"
        )
    return events


async def store(
    request: Request, events: list[Any], source: str, checked: bool = True
) -> list[ItemResult]:
    settings = request.app.state.settings
    committer = committer_for(request.app.state, get_engine(request), settings.default_phone_region)
    return await committer.store(events, source, checked)


def summary(results: list[ItemResult], who: Principal | None = None) -> dict[str, Any]:
    """Counts and per-item outcomes; customer ids only for callers who read every customer (a
    write key learns nothing about profiles, which customer an identifier belongs to)."""
    ids = who is not None and may_see_customer_ids(who)
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
                "customer_id": r.customer_id if ids else None,
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
    item = summary([result], principal(request))["items"][0]
    return JSONResponse(item, status_code=201 if result.status == "stored" else 200)


@router.post(
    "/interactions/batch",
    dependencies=[Depends(require("ingest"))],
    openapi_extra={"requestBody": BODY},
    response_model=BatchOut,
    responses=INGEST_ERRORS,
)
async def post_batch(request: Request) -> JSONResponse:
    """Store up to the batch limit of events; reports per item stored, duplicate or rejected."""
    body, storable = await read_body(request)
    events = check_batch(body.get("events") if isinstance(body, dict) else body, "events")
    sent_at = body.get("sent_at") if isinstance(body, dict) else None
    if sent_at is not None:  # the batch's send time applies to events without their own
        events = [
            {"sent_at": sent_at, **e} if isinstance(e, dict) and "sent_at" not in e else e
            for e in events
        ]
    answer = summary(await store(request, events, "api", not storable), principal(request))
    return JSONResponse(answer)  # already BatchOut's shape: no per-item model validation


@router.get("/interactions/touchpoints/unowned", dependencies=[Depends(require("read"))])
def unowned(conn: Connection = Depends(db, scope="function")) -> list[str]:
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


async def _segment(request: Request, kind: str | None) -> JSONResponse:
    body, storable = await read_body(request)
    who = _segment_principal(request, body)
    if kind is None:
        if not isinstance(body, dict):
            raise HTTPException(422, "body: expected an object with a 'batch' array")
        messages = check_batch(body.get("batch"), "batch")
        context, sent_at = body.get("context"), body.get("sentAt")
    else:
        if not isinstance(body, dict):
            raise HTTPException(422, f"body: expected one {kind} message as a JSON object")
        messages, context, sent_at = [body], None, None
    events = [segment.to_event(m, kind, context, sent_at) for m in messages]
    result = summary(await store(request, events, "segment", not storable), who)
    if kind is not None and result["rejected"]:
        raise HTTPException(400, result["items"][0]["error"])
    # Already SegmentOut's shape (fields in its order): answered without validating each item.
    return JSONResponse({**result, "success": True})


for _kind in ("track", "identify", "page", "screen", "group", "alias"):

    async def _endpoint(request: Request, _k: str = _kind) -> JSONResponse:
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
async def segment_batch(request: Request) -> JSONResponse:
    return await _segment(request, None)

"""The ingest floor: FastAPI + DuckDB, one keyed table, commit before answering.

What a minimal Segment-compatible ``/v1/batch`` endpoint costs on the same engine with no
validation, identity resolution or group commit: ``bench_ingest.py`` runs it side by side with
cxm. Start with ``uvicorn floor_server:app`` and ``FLOOR_DB=path.duckdb``.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from typing import Any

import duckdb
import pyarrow as pa
from fastapi import FastAPI, Request

app = FastAPI()
_db = duckdb.connect(os.environ.get("FLOOR_DB", ":memory:"))
_db.execute(
    "CREATE TABLE IF NOT EXISTS events (event_id VARCHAR PRIMARY KEY, type VARCHAR, "
    "name VARCHAR, user_id VARCHAR, anonymous_id VARCHAR, properties VARCHAR)"
)
_lock = threading.Lock()


def _store(rows: pa.Table) -> None:
    with _lock:
        _db.register("incoming", rows)
        _db.execute("BEGIN")
        _db.execute("INSERT OR IGNORE INTO events SELECT * FROM incoming")
        _db.execute("COMMIT")
        _db.unregister("incoming")


@app.post("/v1/batch")
async def batch(request: Request) -> dict[str, Any]:
    body = await request.json()
    messages = body.get("batch") or []
    rows = pa.table(
        {
            "event_id": [m.get("messageId") for m in messages],
            "type": [m.get("type") for m in messages],
            "name": [m.get("event") for m in messages],
            "user_id": [m.get("userId") for m in messages],
            "anonymous_id": [m.get("anonymousId") for m in messages],
            "properties": [json.dumps(m.get("properties") or {}) for m in messages],
        }
    )
    await asyncio.to_thread(_store, rows)
    return {"success": True}

"""The column-wise import stores what the per-event path stores, and rejects what it rejects."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.interactions import importer
from cxm.interactions import service as interactions
from cxm.interactions.tables import interactions as log

ROWS: list[dict[str, object]] = [
    {"event_id": " a1 ", "name": "visit", "email": " Ana@Example.COM ",
     "timestamp": "2026-01-02T10:00:00Z"},
    {"event_id": "a2", "name": "call", "phone": "030 1234567",
     "timestamp": "2026-01-02T10:00:00+02:00"},
    {"event_id": "a3", "name": "buy", "crm_id": " C-1 ", "properties": '{"amount": 12}',
     "timestamp": "2026-01-02 09:00:00"},
    {"event_id": "a4", "type": "identify", "user_id": "u1",
     "properties": '{"traits": {"tier": "gold"}}'},
    {"event_id": "a5", "name": "x", "properties": "not json", "context": '{"ip": "10.0.0.1"}'},
    {"event_id": "b1", "name": "visit", "email": "not an email"},
    {"event_id": "b2", "type": "shout", "name": "visit"},
    {"event_id": "b3", "type": "track"},
    {"event_id": "b4", "name": "x", "timestamp": "yesterday"},
    {"event_id": "b5", "name": "x", "properties": "[1, 2]"},
    {"event_id": "b6", "name": "x", "properties": '{"revenue": "lots"}'},
    {"event_id": "b7", "name": "x", "phone": "12"},
    {"event_id": "b8", "name": "x", "timestamp": "1970-01-01T00:00:00Z"},
    {"event_id": "a1", "name": "again", "email": "bob@example.com"},
    {"event_id": "a6", "name": "x", "email": "Émile@Example.com", "extra": "kept"},
]  # fmt: skip
for _row in ROWS:  # a fixed time, so the two paths' receipt times do not show
    _row.setdefault("timestamp", "2026-01-03T00:00:00Z")
COLUMNS = ["event_id", "type", "name", "timestamp", "user_id", "email", "phone", "crm_id",
           "properties", "context", "extra"]  # fmt: skip
STORED = ["event_id", "type", "name", "event_time", "user_id", "email", "phone", "external_ids",
          "properties", "context", "revenue"]  # fmt: skip


def _stored(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*[log.c[c] for c in STORED]).order_by(log.c.event_id))
        return [tuple(r) for r in rows]


def _event(row: dict[str, object]) -> dict[str, object]:
    """What the importer's per-row path submits for a row: fields, JSON parsed, extras merged."""
    event = {k: v for k, v in row.items() if k != "extra" and v not in (None, "")}
    for name in ("properties", "context"):
        if isinstance(event.get(name), str):
            try:
                event[name] = json.loads(str(event[name]))
            except json.JSONDecodeError:
                event[name] = {"_invalid_json": event[name]}
    if row.get("extra"):
        event["properties"] = {"extra": row["extra"], **(event.get("properties") or {})}  # type: ignore[dict-item]
    return event


def test_column_wise_import_matches_per_event_ingest(seeded: Engine, tmp_path: Path) -> None:
    full = [{c: r.get(c) for c in COLUMNS} for r in ROWS]
    path = tmp_path / "events.parquet"
    pq.write_table(pa.Table.from_pylist(full), path)
    summary = importer.import_file(seeded, path)
    assert (summary.stored, summary.duplicates, summary.rejected) == (6, 1, 8)
    assert summary.rejects_file is not None
    with summary.rejects_file.open() as f:
        rejected = {r["event_id"]: r["reason"] for r in csv.DictReader(f)}
    imported = _stored(seeded)
    with seeded.begin() as conn:
        conn.execute(log.delete())
        results = interactions.ingest(conn, [_event(r) for r in ROWS], "api")
    assert {r.event_id: r.error for r in results if r.status == "rejected"} == rejected
    assert _stored(seeded) == imported

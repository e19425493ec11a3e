"""Bulk inserts through PostgreSQL's COPY keep NULL apart from '', times, JSON, and conflicts."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.interactions.tables import interactions
from cxm.store.bulk import insert_rows, insert_table, uses_copy

T = dt.datetime(2026, 3, 1, 12, 30, 15, 123456)


def _row(event_id: str, **over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "event_id": event_id, "type": "track", "name": "tick",
        "event_time": T.replace(tzinfo=dt.UTC), "received_at": T.replace(tzinfo=dt.UTC),
        "user_id": None, "email": "", "properties": {"a": [1, 'x,"y"'], "b": None},
        "revenue": 12.5, "source": "api",
    }  # fmt: skip
    row.update(over)
    return row


def test_copy_round_trip_and_conflicts(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            assert uses_copy(conn)
        rows = [_row(f"e{i}") for i in range(150)]  # above the multi-row VALUES size
        rows[3]["name"] = 'quote " comma , newline \n end'
        insert_rows(conn, interactions, rows)
        # Again, with one new row: conflicts are skipped, the new one stored.
        insert_rows(conn, interactions, [*rows, _row("new", user_id="u-1")], ignore=True)
        table = pa.table(
            {
                "event_id": pa.array(["t1", "e0"]),
                "type": pa.array(["track", "track"]).dictionary_encode(),
                "name": pa.array(["from arrow", "must not replace"]),
                "event_time": pa.array([T, T], pa.timestamp("us")),
                "received_at": pa.array([T, T], pa.timestamp("us")),
                "properties": pa.array(['{"k": 1}', None]),
                "source": pa.array(["import", "import"]),
            }
        )
        insert_table(conn, interactions, table, ignore=True)
    with engine.connect() as conn:
        got = {r["event_id"]: r for r in conn.execute(sa.select(interactions)).mappings()}
    assert len(got) == 152
    assert got["e0"]["name"] == "tick" and got["e0"]["email"] == ""  # '' stays ''
    assert got["e0"]["user_id"] is None  # NULL stays NULL
    assert got["e3"]["name"] == 'quote " comma , newline \n end'
    assert got["e0"]["properties"] == {"a": [1, 'x,"y"'], "b": None}
    assert got["e0"]["event_time"] == T.replace(tzinfo=dt.UTC)
    assert got["e0"]["revenue"] == 12.5
    assert got["new"]["user_id"] == "u-1"
    assert got["t1"]["name"] == "from arrow" and got["t1"]["properties"] == {"k": 1}
    assert got["t1"]["type"] == "track"

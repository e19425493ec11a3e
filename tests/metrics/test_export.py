"""The Parquet lake is incremental: fact tables by day, and a re-export rewrites only the
days whose rows changed, on DuckDB and PostgreSQL stores."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.interactions.tables import interactions
from cxm.metrics.export import MANIFEST, export_lake
from cxm.surveys.tables import responses
from tests.metrics import factories as f

DAY1 = dt.datetime(2025, 3, 10, 9, tzinfo=dt.UTC)
DAY2 = dt.datetime(2025, 3, 11, 9, tzinfo=dt.UTC)
DAY3 = dt.datetime(2025, 3, 12, 9, tzinfo=dt.UTC)


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.parquet")}


def _lake_ids(lake: Path, table: str, column: str) -> list[str]:
    return sorted(pq.read_table(lake / table, columns=[column]).column(column).to_pylist())


def _store_ids(engine: Engine, table: sa.Table, column: str) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(table.c[column])).scalars())


def test_reexport_writes_only_changed_days(seeded: Engine, tmp_path: Path) -> None:
    with seeded.begin() as conn:
        f.customer(conn, "c1")
        f.events(conn, [("c1", "chat", DAY1, None), ("c1", "chat", DAY2, 5.0)])
        f.events(conn, [("c1", "order", DAY2 + dt.timedelta(hours=3), 12.5)])
        f.nps_responses(conn, "support_chat", [9, 3], when=DAY1)
    lake = tmp_path / "lake"
    first = export_lake(seeded, lake)
    assert first.days["interactions"] == ["2025-03-10", "2025-03-11"]
    assert first.rows["interactions"] == 3 and first.rows["responses"] == 2
    before = _mtimes(lake / "interactions")
    before_responses = _mtimes(lake / "responses")

    # Nothing changed: nothing of the facts is rewritten.
    again = export_lake(seeded, lake)
    assert again.days["interactions"] == [] and again.days["responses"] == []
    assert _mtimes(lake / "interactions") == before

    # One new day, and a late event for an old day.
    with seeded.begin() as conn:
        f.events(conn, [("c1", "chat", DAY3, None), ("c1", "late", DAY1, 1.0)])
    later = export_lake(seeded, lake)
    assert later.days["interactions"] == ["2025-03-10", "2025-03-12"]
    assert later.days["responses"] == []
    after = _mtimes(lake / "interactions")
    assert set(after) == {"2025-03-10.parquet", "2025-03-11.parquet", "2025-03-12.parquet"}
    assert after["2025-03-11.parquet"] == before["2025-03-11.parquet"]
    assert after["2025-03-10.parquet"] != before["2025-03-10.parquet"]
    assert _mtimes(lake / "responses") == before_responses
    # The lake holds exactly the store's rows, each in its day's file.
    assert _lake_ids(lake, "interactions", "event_id") == _store_ids(
        seeded, interactions, "event_id"
    )
    assert _lake_ids(lake, "responses", "id") == _store_ids(seeded, responses, "id")
    day3 = pq.read_table(lake / "interactions" / "2025-03-12.parquet").to_pylist()
    assert [r["name"] for r in day3] == ["chat"]
    manifest = json.loads((lake / MANIFEST).read_text())["tables"]["interactions"]["days"]
    assert {d: v[0] for d, v in manifest.items()} == {
        "2025-03-10": 2, "2025-03-11": 2, "2025-03-12": 1,
    }  # fmt: skip


def test_updates_and_deletes_reach_the_lake(seeded: Engine, tmp_path: Path) -> None:
    with seeded.begin() as conn:
        f.events(conn, [("c1", "chat", DAY1, None), ("c1", "chat", DAY2, None)])
        f.nps_responses(conn, "support_chat", [9], when=DAY1)
    lake = tmp_path / "lake"
    export_lake(seeded, lake)
    with seeded.begin() as conn:
        conn.execute(interactions.delete().where(interactions.c.event_time >= DAY2))
        # Completing a response later moves its submitted_at: its day is rewritten.
        conn.execute(responses.update().values(submitted_at=DAY3))
    done = export_lake(seeded, lake)
    assert done.removed["interactions"] == ["2025-03-11"] and done.days["interactions"] == []
    assert done.days["responses"] == ["2025-03-10"]
    assert sorted(p.name for p in (lake / "interactions").iterdir()) == ["2025-03-10.parquet"]
    submitted = pq.read_table(lake / "responses").column("submitted_at").to_pylist()
    assert [s.replace(tzinfo=dt.UTC) for s in submitted] == [DAY3]

    # Every fact gone: the table keeps an empty file with its columns.
    with seeded.begin() as conn:
        conn.execute(interactions.delete())
    export_lake(seeded, lake)
    left = pq.read_table(lake / "interactions")
    assert left.num_rows == 0 and "event_id" in left.column_names


def test_a_full_export_rewrites_every_day(seeded: Engine, tmp_path: Path) -> None:
    with seeded.begin() as conn:
        f.events(conn, [("c1", "chat", DAY1, None), ("c1", "chat", DAY2, None)])
    lake = tmp_path / "lake"
    export_lake(seeded, lake)
    assert export_lake(seeded, lake, full=True).days["interactions"] == [
        "2025-03-10", "2025-03-11",
    ]  # fmt: skip

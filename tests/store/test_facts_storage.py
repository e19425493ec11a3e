"""Customers' first / last seen keep a storage DuckDB updates in place quickly (migration 0026),
and the migration keeps every profile."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from cxm.customers import service as customers_service
from cxm.customers.tables import customers
from cxm.store import create_engine, upgrade
from cxm.store.bulk import insert_rows

T = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
N = 30_000


def _profiles() -> list[dict[str, object]]:
    # Two in three merged away (no facts of their own: NULL), which DuckDB stored run-length
    # encoded even where the live profiles' times all differ.
    seen = [T + dt.timedelta(seconds=i) for i in range(N)]
    return [
        {"id": f"c{i:06d}", "created_at": T, "interaction_count": 0 if i % 3 else 1,
         "first_seen": None if i % 3 else seen[i], "last_seen": None if i % 3 else seen[i],
         "merged_into": f"c{i - i % 3:06d}" if i % 3 else None}
        for i in range(N)
    ]  # fmt: skip


def _storage(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT DISTINCT compression FROM pragma_storage_info('customers') "
            "WHERE column_name IN ('first_seen', 'last_seen') AND segment_type = 'TIMESTAMP'"
        ).all()
    return {r[0] for r in rows}


def test_the_facts_columns_stay_bit_packed_through_updates(tmp_path: Path) -> None:
    engine = create_engine(f"duckdb:///{tmp_path / 'cxm.duckdb'}")
    upgrade(engine, "0025")
    with engine.begin() as conn:
        insert_rows(conn, customers, _profiles())
    with engine.connect() as conn:
        conn.exec_driver_sql("CHECKPOINT")
    assert "RLE" in _storage(engine)  # what 0026 changes
    with engine.connect() as conn:
        before = conn.execute(sa.select(customers).order_by(customers.c.id)).all()

    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.select(customers).order_by(customers.c.id)).all() == before
    live = [f"c{i:06d}" for i in range(0, N, 3)]
    later = dt.datetime(2026, 2, 1)
    facts = pa.table(
        {
            "cid": pa.array(live),
            "n": pa.array([2] * len(live), pa.int64()),
            "first_at": pa.array([later] * len(live), pa.timestamp("us")),
            "last_at": pa.array(
                [later + dt.timedelta(seconds=i) for i in range(len(live))], pa.timestamp("us")
            ),
        }
    )
    with engine.begin() as conn:
        customers_service.add_facts(conn, facts)
    with engine.connect() as conn:
        conn.exec_driver_sql("CHECKPOINT")
        got = conn.execute(
            sa.select(customers.c.interaction_count, customers.c.first_seen).where(
                customers.c.id == "c000003"
            )
        ).one()
    assert got == (3, T + dt.timedelta(seconds=3))  # one event, two more; first seen kept
    assert _storage(engine) == {"BitPacking"}
    # The primary key survived the copy.
    with pytest.raises(DBAPIError), engine.begin() as conn:
        insert_rows(conn, customers, [{"id": "c000000", "created_at": T, "interaction_count": 0}])
    engine.dispose()

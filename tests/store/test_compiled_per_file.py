"""Compiled statements are kept per store (a DuckDB file, a PostgreSQL database): a connection
opened for one question reuses what an earlier connection to the same store compiled, and gets
the rows of now."""

from __future__ import annotations

import importlib
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pandas as pd
import pytest
import sqlalchemy as sa

from cxm.org import schemas
from cxm.org import service as org
from cxm.store import create_engine, upgrade

store_analytics = importlib.import_module("cxm.store.analytics")


def test_a_new_connection_to_the_same_file_reuses_the_statement(tmp_path: Path) -> None:
    engine = create_engine(f"duckdb:///{tmp_path / 'cxm.duckdb'}")
    upgrade(engine)
    built: list[str] = []

    def build(backend: ibis.BaseBackend) -> ir.Table:
        built.append("once")
        t = backend.table("departments")
        return t.aggregate(n=t.count())

    def count() -> int:
        with store_analytics.reading(engine) as backend:
            _, rows = store_analytics.to_rows(backend, ("departments", 1), lambda: build(backend))
        return int(rows[0][0])

    assert count() == 0
    with engine.begin() as conn:
        org.create_department(conn, schemas.DepartmentCreate(key="ops", name="Ops"))
    assert count() == 1  # the kept statement reads the rows of now
    assert built == ["once"]
    other = create_engine(f"duckdb:///{tmp_path / 'other.duckdb'}")
    upgrade(other)
    with store_analytics.reading(other) as backend:
        store_analytics.to_rows(backend, ("departments", 1), lambda: build(backend))
    assert built == ["once", "once"]  # another file compiles its own
    engine.dispose()
    other.dispose()


def test_postgres_keeps_the_statement_and_returns_ibis_own_frame(
    engine: sa.Engine, request: pytest.FixtureRequest
) -> None:
    """On both stores a kept statement answers with the frame ``build().to_pandas()`` gives
    (text, integers, floats, timestamps, dates, booleans, missing values; on PostgreSQL the
    very frame, dtypes included), reads the rows of now, and an expression with an in-memory
    table is built (and its table registered) again each time."""
    with engine.begin() as conn:
        org.create_department(conn, schemas.DepartmentCreate(key="ops", name="Ops"))
        org.create_department(conn, schemas.DepartmentCreate(key="cx", name="CX"))
    built: list[int] = []

    def build(backend: ibis.BaseBackend) -> ir.Table:
        built.append(1)
        t = backend.table("departments")
        return t.select(
            t.key, t.name, t.description, t.position, n=ibis.literal(2), flag=t.key == "ops",
            when=ibis.timestamp("2026-01-31 12:30:00"), day=ibis.date("2026-01-31"),
            missing=ibis.null("string"), share=ibis.literal(0.5),
        ).order_by("key")  # fmt: skip

    with store_analytics.reading(engine) as backend:
        expected = build(backend).to_pandas()
        built.clear()
        first = store_analytics.to_frame(backend, ("departments", "typed"), lambda: build(backend))
    with store_analytics.reading(engine) as backend:  # a new connection to the same store
        again = store_analytics.to_frame(backend, ("departments", "typed"), lambda: build(backend))
    if engine.url.get_backend_name() == "postgresql":
        pd.testing.assert_frame_equal(first, expected)
        pd.testing.assert_frame_equal(again, expected)
    else:  # DuckDB's own ``df()``: missing text is None, not NaN; the rest equal
        for frame in (first, again):
            pd.testing.assert_frame_equal(
                frame.drop(columns=["description", "missing"]),
                expected.drop(columns=["description", "missing"]),
                check_dtype=False,
            )
            assert frame[["description", "missing"]].isna().all().all()
    assert built == [1]
    with engine.begin() as conn:
        org.create_department(conn, schemas.DepartmentCreate(key="ux", name="UX"))
    with store_analytics.reading(engine) as backend:
        now = store_analytics.to_frame(backend, ("departments", "typed"), lambda: build(backend))
        assert list(now["key"]) == ["cx", "ops", "ux"]
        assert built == [1]

        def joined() -> ir.Table:
            built.append(1)
            names = ibis.memtable({"key": ["ops"], "label": ["Operations"]})
            return backend.table("departments").join(names, "key").select("key", "label")

        for _ in range(2):
            rows = store_analytics.to_frame(backend, ("departments", "memtable"), joined)
            assert rows.to_dict("records") == [{"key": "ops", "label": "Operations"}]
    assert len(built) == 3

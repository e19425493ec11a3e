"""Compiled statements are kept per DuckDB file: a connection opened for one question reuses
what an earlier connection to the same file compiled, and gets the rows of now."""

from __future__ import annotations

import importlib
from pathlib import Path

import ibis
import ibis.expr.types as ir

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

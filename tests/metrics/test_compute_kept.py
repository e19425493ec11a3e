"""What ``compute`` keeps between calls (compiled, flattened and prepared statements) never
hides a change: a new response, a changed target or a changed definition is in the next
answer; and the column-wise statistics equal the one-row functions to the last bit."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Iterator
from typing import Any

import ibis.expr.types as ir
import pandas as pd
import pytest
from ibis.backends import BaseBackend
from sqlalchemy.engine import Engine

from cxm.metrics import analytics as ax
from cxm.metrics import compute, load, set_target, slices, stats
from cxm.metrics.service import read_targets
from cxm.store import analytics as connect
from cxm.store.analytics import _flattened, _rows_of, to_rows
from tests.metrics import factories as f

APRIL = dt.datetime(2025, 4, 10, tzinfo=dt.UTC)


@pytest.fixture
def store(engine: Engine) -> Engine:
    """Delivery (operations): 10 promoters, 10 passives, 20 detractors. Chat (service):
    20/10/5, all in March."""
    with engine.begin() as conn:
        f.org(conn)
        f.nps_responses(conn, "delivery", [10] * 10 + [8] * 10 + [3] * 20, csat=5)
        f.nps_responses(conn, "support_chat", [9] * 20 + [7] * 10 + [0] * 5, csat=2)
    return engine


@pytest.fixture
def backend(store: Engine) -> Iterator[BaseBackend]:
    """One connection kept open across computes, as the server's readers keep theirs."""
    con = connect(store)
    yield con
    con.disconnect()


def _rows(df: Any, col: str = "department") -> dict[str, dict[str, Any]]:
    return {r[col]: r for r in df.to_dict("records")}


def test_a_kept_statement_sees_each_new_response(store: Engine, backend: BaseBackend) -> None:
    for _ in range(3):  # the first compiles (and prepares); the others reuse it
        rows = _rows(compute(backend, "nps", ["department"]))
        assert rows["operations"]["n"] == 40 and rows["operations"]["value"] == -25.0
    with store.begin() as conn:
        f.nps_responses(conn, "delivery", [10] * 20)
    rows = _rows(compute(backend, "nps", ["department"]))
    assert rows["operations"]["n"] == 60
    assert rows["operations"]["value"] == pytest.approx(100 * (30 - 20) / 60)
    assert rows["service"]["n"] == 35
    # A new month appears as a new slice of the same kept statement.
    with store.begin() as conn:
        f.nps_responses(conn, "support_chat", [10] * 30, when=APRIL)
    months = compute(backend, "nps", ["department", "month"])
    assert list(zip(months["department"], months["month"], months["n"], strict=True)) == [
        ("operations", "2025-03-01", 60), ("service", "2025-03-01", 35),
        ("service", "2025-04-01", 30),
    ]  # fmt: skip
    # And a connection opened later, which shares the compiled statements, sees them too.
    assert _rows(compute(store, "nps", ["department"]))["service"]["n"] == 65


def test_a_kept_statement_sees_a_changed_target(store: Engine, backend: BaseBackend) -> None:
    metrics = load()
    for _ in range(2):
        rows = _rows(compute(backend, "nps", ["department"]))
        assert rows["service"]["target"] == 30.0 and rows["service"]["on_target"] is True
    with store.begin() as conn:
        set_target(conn, metrics, "nps", 50.0)
    rows = _rows(compute(backend, "nps", ["department"]))
    assert rows["service"]["target"] == 50.0 and rows["service"]["on_target"] is False
    assert rows["operations"]["target"] == 50.0
    with store.begin() as conn:
        set_target(conn, metrics, "nps", -30.0, dimension="department", value="operations")
    rows = _rows(compute(backend, "nps", ["department"]))
    assert rows["operations"]["target"] == -30.0 and rows["operations"]["on_target"] is True
    assert rows["service"]["target"] == 50.0
    # Read while the write is not committed: the old target, and the new one once it is.
    with store.begin() as conn:
        set_target(conn, metrics, "nps", 45.0)
        assert _rows(compute(backend, "nps", ["department"]))["service"]["target"] == 50.0
    assert _rows(compute(backend, "nps", ["department"]))["service"]["target"] == 45.0
    # A write rolled back leaves the target as it was.
    with store.connect() as conn:
        set_target(conn, metrics, "nps", 10.0)
        conn.rollback()
    assert _rows(compute(backend, "nps", ["department"]))["service"]["target"] == 45.0
    # Targets read once and passed in (as the dashboards do) are the ones used.
    targets = read_targets(backend)
    rows = _rows(compute(backend, "nps", ["department"], targets=targets.iloc[:0]))
    assert rows["operations"]["target"] == 30.0


def test_a_changed_definition_is_computed_anew(store: Engine, backend: BaseBackend) -> None:
    metrics = load()
    nps = metrics["nps"]
    for _ in range(2):
        assert _rows(compute(backend, "nps", ["department"], metrics=metrics))[
            "operations"]["n"] == 40  # fmt: skip
    # A filter that leaves out the detractors: a different statement, kept apart.
    no_detractors = dataclasses.replace(nps, filters={**nps.filters, "nps": {"ge": 7}},
                                        min_sample=10)  # fmt: skip
    rows = _rows(compute(backend, "nps", ["department"],
                         metrics={**metrics, "nps": no_detractors}))  # fmt: skip
    assert rows["operations"]["n"] == 20 and rows["operations"]["value"] == 50.0
    # A larger minimum sample and a target: the same statement, other numbers around it.
    stricter = dataclasses.replace(nps, min_sample=36, target=-50.0)
    rows = _rows(compute(backend, "nps", ["department"], metrics={**metrics, "nps": stricter}))
    assert rows["service"]["flags"] == "below_min_sample" and pd.isna(rows["service"]["value"])
    assert rows["operations"]["value"] == -25.0 and rows["operations"]["on_target"] is True
    # And the definition as it was gives the first answer again.
    assert _rows(compute(backend, "nps", ["department"], metrics=metrics))[
        "service"]["n"] == 35  # fmt: skip


def _question(backend: BaseBackend, name: str, by: list[str]) -> ir.Table:
    return ax.aggregate(backend, load()[name], by, start=None, end=None, filters={})


@pytest.mark.parametrize(("name", "by"), [
    ("nps", ["department", "month"]), ("csat", ["touchpoint"]), ("ces", ["team", "week"]),
    ("csat_mean", []), ("nps", ["trait:plan"]),
])  # fmt: skip
def test_the_flattened_statement_answers_as_the_compiled_one(
    tmp_path: Any, name: str, by: list[str]
) -> None:
    from cxm.store import create_engine, upgrade

    eng = create_engine(f"duckdb:///{tmp_path / 'flat.duckdb'}")
    upgrade(eng)
    with eng.begin() as conn:
        f.org(conn)
        f.customer(conn, "c1", plan="pro")
        f.nps_responses(conn, "delivery", [10, 3, 8, 9], csat=5, customer_id="c1")
        f.nps_responses(conn, "support_chat", [0, 7, 10], csat=2)
        f.nps_responses(conn, "support_phone", [6, 9], when=APRIL, csat=4, customer_id="c1")
    backend = connect(eng)
    try:
        typed = [slices.typed_as(d, slices.trait_kind(backend, d)) if slices.is_typed(d) else d
                 for d in by]  # fmt: skip
        expr = _question(backend, name, typed)
        sql = str(backend.compile(expr))
        flat = _flattened(backend, expr, sql)
        con: Any = backend.con
        assert sorted(con.execute(flat).fetchall(), key=repr) == sorted(
            con.execute(sql).fetchall(), key=repr)  # fmt: skip
        if name in ("nps", "csat") and typed == by:
            # The survey metrics by org and time become one SELECT over the tables.
            assert flat.count("SELECT") == 1 < sql.count("SELECT")
    finally:
        backend.disconnect()
        eng.dispose()


def test_a_prepared_statement_follows_the_table_it_reads(tmp_path: Any) -> None:
    from cxm.store import create_engine

    eng = create_engine(f"duckdb:///{tmp_path / 'prepared.duckdb'}")
    with eng.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (a INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1), (2)")
    backend = connect(eng)
    try:

        def build() -> ir.Table:
            t = backend.table("t")
            return t.aggregate(n=t.count(), top=t.a.max(), nulls=t.a.isnull().sum())

        assert to_rows(backend, ("t",), build)[1] == [(2, 2, 0)]
        with eng.begin() as conn:  # another connection: new rows, a null the stats never saw
            conn.exec_driver_sql("INSERT INTO t VALUES (NULL), (40)")
        assert to_rows(backend, ("t",), build)[1] == [(4, 40, 1)]
        with eng.begin() as conn:  # the table changes shape under the prepared statement
            conn.exec_driver_sql("ALTER TABLE t ADD COLUMN b VARCHAR")
            conn.exec_driver_sql("INSERT INTO t VALUES (50, 'x')")
        assert to_rows(backend, ("t",), build)[1] == [(5, 50, 1)]
        assert _rows_of(backend, "SELECT count(*) AS n FROM t") == (["n"], [(5,)])
    finally:
        backend.disconnect()
        eng.dispose()


def _counts(rng: random.Random) -> list[int]:
    n = rng.choice([1, 2, 3, 10, 30, 1000, 10**6, 10**8])
    return [rng.randint(0, n) for _ in range(3)]


def test_column_wise_intervals_equal_the_one_row_functions_bit_for_bit() -> None:
    rng = random.Random(7)
    rows = [_counts(rng) for _ in range(3000)]
    rows = [r for r in rows if sum(r)] + [[1, 0, 0], [0, 0, 1], [0, 1, 0], [5, 0, 5]]
    for confidence in (0.95, 0.9, 0.99):
        values, lows, highs = stats.nps_intervals(*zip(*rows, strict=True),
                                                  confidence=confidence)  # fmt: skip
        for (p, a, d), v, lo, hi in zip(rows, values, lows, highs, strict=True):
            one = stats.nps_interval(p, a, d, confidence)
            assert (v, lo, hi) == (one.value, one.low, one.high), (p, a, d)
        props = [(min(x, n), n) for x, n, _ in rows if n] + [(0, 1), (1, 1), (0, 7), (7, 7)]
        values, lows, highs = stats.wilson_intervals(*zip(*props, strict=True),
                                                     confidence=confidence)  # fmt: skip
        for (x, n), v, lo, hi in zip(props, values, lows, highs, strict=True):
            one = stats.wilson_interval(x, n, confidence)
            assert (v, lo, hi) == (one.value, one.low, one.high), (x, n)

"""Bulk inserts through PostgreSQL's COPY keep NULL apart from '', times, JSON, and conflicts;
bulk writes and look-ups work on both stores."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.interactions.tables import interactions
from cxm.store import jobs
from cxm.store.bulk import (
    SMALL,
    insert_rows,
    insert_table,
    lookup,
    staged,
    update_rows,
    uses_copy,
)

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


def _job(n: int, key: str) -> dict[str, object]:
    at = T.replace(tzinfo=dt.UTC)
    return {"id": f"job-{n}", "kind": "k", "payload": {"n": n}, "dedupe_key": key,
            "status": "pending", "attempts": 0, "max_attempts": 3, "run_at": at,
            "created_at": at}  # fmt: skip


def test_unique_columns_skip_and_a_half_read_result_does_not_block(engine: Engine) -> None:
    """``ignore`` with ``unique`` skips rows whose unique column (not the key) is held, in
    the multi-row VALUES form and the bulk form; a result the caller stopped reading
    (``.first()``) does not stop the bulk form on DuckDB."""
    with engine.begin() as conn:
        insert_rows(conn, jobs.jobs, [_job(n, f"d{n}") for n in range(150)])
        assert conn.execute(sa.select(jobs.jobs.c.id).order_by(jobs.jobs.c.id)).first()
        again = [_job(1000 + n, f"d{n}") for n in range(150)] + [_job(2000, "fresh")]
        insert_rows(conn, jobs.jobs, again, ignore=True, unique=["dedupe_key"])
        insert_rows(conn, jobs.jobs, [_job(3000, "d0"), _job(3001, "few")], ignore=True,
                    unique=["dedupe_key"])  # fmt: skip
    with engine.connect() as conn:
        got = dict(conn.execute(sa.select(jobs.jobs.c.dedupe_key, jobs.jobs.c.id)).all())
    assert len(got) == 152
    assert got["d0"] == "job-0" and got["d149"] == "job-149"  # the first writer kept
    assert got["fresh"] == "job-2000" and got["few"] == "job-3001"


def test_lookup_finds_the_rows_of_many_keys(engine: Engine) -> None:
    with engine.begin() as conn:
        insert_rows(conn, interactions, [_row(f"e{i}", user_id=f"u{i}") for i in range(2500)])
    wanted = [f"e{i}" for i in range(0, 2500, 2)] + ["e0", "missing"]
    with engine.connect() as conn:
        assert conn.execute(sa.select(interactions.c.event_id)).first()  # left half read
        rows = lookup(conn, interactions, "event_id", wanted, ["event_id", "user_id"])
        assert lookup(conn, interactions, "event_id", [], ["event_id"]) == []
    found = sorted((r.event_id, r.user_id) for r in rows)
    assert found == sorted((f"e{i}", f"u{i}") for i in range(0, 2500, 2))


def test_updates_of_few_and_many_rows_match_one_statement_per_row(engine: Engine) -> None:
    """``update_rows`` (VALUES for a few rows, Arrow or executemany for many) stores what one
    plain UPDATE per row stores: times in any zone as UTC, JSON, NULL apart from '', quotes;
    rows not named are left alone."""
    at = dt.datetime(2026, 3, 1, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))

    def changes(prefix: str, n: int) -> list[dict[str, object]]:
        return [{"event_id": f"{prefix}{i}", "name": f"it's \"{i}\"" if i % 2 else "",
                 "received_at": at + dt.timedelta(minutes=i), "user_id": None,
                 "properties": {"i": i, "s": [None, "é"]}} for i in range(n)]  # fmt: skip

    sizes = {"few": 3, "many": SMALL + 20}
    with engine.begin() as conn:
        for prefix, n in sizes.items():
            for name, count in ((prefix, n + 1), (f"plain-{prefix}", n)):
                rows = [_row(f"{name}{i}", user_id="u") for i in range(count)]
                insert_rows(conn, interactions, rows)
            update_rows(conn, interactions, "event_id", changes(prefix, n))
            for row in changes(f"plain-{prefix}", n):  # the independent computation
                values = {k: v for k, v in row.items() if k != "event_id"}
                key = interactions.c.event_id == row["event_id"]
                conn.execute(interactions.update().where(key).values(values))
    with engine.connect() as conn:
        got = {r["event_id"]: r for r in conn.execute(sa.select(interactions)).mappings()}
    for prefix, n in sizes.items():
        for i in range(n):
            mine, plain = got[f"{prefix}{i}"], got[f"plain-{prefix}{i}"]
            assert {k: v for k, v in mine.items() if k != "event_id"} == {
                k: v for k, v in plain.items() if k != "event_id"}  # fmt: skip
        assert got[f"{prefix}1"]["received_at"] == dt.datetime(2026, 3, 1, 12, 31, tzinfo=dt.UTC)
        assert got[f"{prefix}1"]["name"] == 'it\'s "1"' and got[f"{prefix}0"]["name"] == ""
        assert got[f"{prefix}0"]["user_id"] is None
        assert got[f"{prefix}0"]["properties"] == {"i": 0, "s": [None, "é"]}
        assert got[f"{prefix}{n}"]["user_id"] == "u" and got[f"{prefix}{n}"]["name"] == "tick"


@pytest.mark.parametrize("size", [3, 2500])
def test_a_staged_table_joins_with_every_value_kept(engine: Engine, size: int) -> None:
    """``staged`` gives statements the Arrow table as it is (NULLs, quotes, times, floats)."""
    keys = [f"e{i}" for i in range(size)]
    with engine.begin() as conn:
        insert_rows(conn, interactions, [_row(k) for k in keys])
        data = pa.table(
            {
                "event_id": pa.array(keys),
                "label": pa.array([None if i % 3 == 0 else f'q"{i},' for i in range(size)]),
                "n": pa.array(range(size), pa.int64()),
                "x": pa.array([i / 4 for i in range(size)], pa.float64()),
                "flag": pa.array([i % 2 == 0 for i in range(size)]),
                "at": pa.array([T + dt.timedelta(days=i) for i in range(size)], pa.timestamp("us")),
            }
        )
        with staged(conn, data) as v:
            found = conn.execute(
                sa.select(*v.c, interactions.c.revenue)
                .join_from(v, interactions, interactions.c.event_id == v.c.event_id)
                .order_by(v.c.n)
            ).all()
        dates = pa.table({"d": pa.array([dt.date(2026, 1, 1)])})
        with pytest.raises(ValueError, match="has type"), staged(conn, dates):
            pass
    assert [tuple(r) for r in found] == [
        (k, r["label"], r["n"], r["x"], r["flag"], r["at"], 12.5)
        for k, r in zip(keys, data.to_pylist(), strict=True)
    ]

"""The store: migrations, UTC times, idempotent inserts, durable jobs — on DuckDB and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.store import analytics, current_revision, head_revision, insert_ignore, jobs, upgrade
from cxm.store.base import UTCDateTime


def test_migrations_reach_head_and_rerun_is_a_no_op(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    upgrade(engine)  # a second run must not fail or change anything
    assert current_revision(engine) == head_revision()
    assert "touchpoints" in sa.inspect(engine).get_table_names()


def test_times_round_trip_as_aware_utc(engine: Engine) -> None:
    berlin = dt.timezone(dt.timedelta(hours=1))
    when = dt.datetime(2026, 3, 1, 9, 30, tzinfo=berlin)
    with engine.begin() as conn:
        jobs.enqueue(conn, "probe", {}, run_at=when)
        stored = conn.execute(sa.select(jobs.jobs.c.run_at)).scalar_one()
    assert stored == when
    assert stored.tzinfo is not None and stored.utcoffset() == dt.timedelta(0)
    assert stored.hour == 8


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        UTCDateTime().process_bind_param(dt.datetime(2026, 1, 1), None)


def test_insert_ignore_skips_existing_keys(engine: Engine) -> None:
    with engine.begin() as conn:
        first = conn.execute(
            insert_ignore(jobs.jobs, ["dedupe_key"]).values(
                id="a", kind="k", payload={}, dedupe_key="same", status="pending", attempts=0,
                max_attempts=1, run_at=dt.datetime.now(dt.UTC), created_at=dt.datetime.now(dt.UTC),
            ).returning(jobs.jobs.c.id)
        ).scalar()  # fmt: skip
        again = jobs.enqueue(conn, "k", {}, dedupe_key="same")
        count = conn.execute(sa.select(sa.func.count()).select_from(jobs.jobs)).scalar_one()
    assert first == "a"
    assert again is None
    assert count == 1


def test_jobs_run_once_and_failures_retry_with_backoff(engine: Engine) -> None:
    seen: list[int] = []

    def ok(conn: sa.Connection, payload: dict[str, int]) -> None:
        seen.append(payload["n"])

    def broken(conn: sa.Connection, payload: dict[str, int]) -> None:
        raise RuntimeError("smtp down")

    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        jobs.enqueue(conn, "ok", {"n": 1}, run_at=now)
        jobs.enqueue(conn, "ok", {"n": 2}, run_at=now + dt.timedelta(hours=1))
        jobs.enqueue(conn, "broken", {"n": 3}, run_at=now, max_attempts=2)
    handlers = {"ok": ok, "broken": broken}
    assert jobs.run_due(engine, handlers, now=now) == 2
    assert seen == [1]
    assert jobs.run_due(engine, handlers, now=now) == 0  # done is done; retry waits its backoff
    with engine.connect() as conn:
        row = (
            conn.execute(sa.select(jobs.jobs).where(jobs.jobs.c.kind == "broken")).mappings().one()
        )
    assert row["status"] == "pending" and "smtp down" in row["last_error"]
    assert row["run_at"] >= now + dt.timedelta(seconds=30)
    later = now + dt.timedelta(hours=2)
    assert jobs.run_due(engine, handlers, now=later) == 2
    assert seen == [1, 2]
    with engine.connect() as conn:
        status = conn.execute(
            sa.select(jobs.jobs.c.status).where(jobs.jobs.c.kind == "broken")
        ).scalar_one()
    assert status == "failed"


def test_a_job_left_running_by_a_dead_worker_is_claimed_again(engine: Engine) -> None:
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        jobs.enqueue(conn, "ok", {}, run_at=now)
        assert len(jobs.claim(conn, now=now)) == 1  # the worker "dies" here
    with engine.begin() as conn:
        assert jobs.claim(conn, now=now + dt.timedelta(minutes=1)) == []
        assert len(jobs.claim(conn, now=now + jobs.LEASE + dt.timedelta(seconds=1))) == 1


def test_analytics_sees_committed_rows(engine: Engine) -> None:
    with engine.begin() as conn:
        jobs.enqueue(conn, "ok", {"n": 1})
        jobs.enqueue(conn, "ok", {"n": 2})
    con = analytics(engine)
    table = con.table("jobs")
    assert table.count().execute() == 2
    assert set(table.kind.execute()) == {"ok"}


def test_statements_are_compiled_once_and_reused_with_new_values(engine: Engine) -> None:
    """Both stores keep compiled statements (on DuckDB too, where duckdb_engine's own dialect
    would compile every statement afresh); a statement built again with other values reuses
    the compiled form and still gets its own values and results."""

    def runs(conn: sa.Connection, job_id: str) -> tuple[object, list[str]]:
        result = conn.execute(
            sa.select(jobs.jobs.c.kind).where(jobs.jobs.c.id == job_id).order_by(jobs.jobs.c.kind)
        )
        return result.context.cache_hit, list(result.scalars())

    with engine.begin() as conn:
        first = jobs.enqueue(conn, "probe", {"n": 1})
        second = jobs.enqueue(conn, "other", {"n": 2})
        hits = [runs(conn, first), runs(conn, second), runs(conn, "none")]
        value = conn.execute(sa.select(sa.cast(sa.literal(0.3), sa.Float))).scalar_one()
    assert [names for _, names in hits] == [["probe"], ["other"], []]
    dialect = engine.dialect
    assert [hit for hit, _ in hits] == [dialect.CACHE_MISS, dialect.CACHE_HIT, dialect.CACHE_HIT]
    assert value == 0.3  # Float is still DOUBLE on DuckDB with the compiled forms kept

"""The durable jobs table: scheduled work that survives a restart and runs once.

Work is enqueued in the same transaction as the fact that caused it, claimed by a worker
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers can share the table), and marked
done in the transaction that does the work. A worker that dies leaves its jobs ``running``;
they are claimed again once their lease expires.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cxm.store.base import metadata, utc_timestamp
from cxm.store.engine import insert_ignore, utcnow

log = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=5)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("dedupe_key", sa.String(200), unique=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text),
    utc_timestamp("run_at", nullable=False),
    utc_timestamp("created_at", nullable=False),
    utc_timestamp("started_at"),
    utc_timestamp("finished_at"),
)

# Long jobs (theme discovery) report progress and keep a result for clients that poll them.
job_progress = sa.Table(
    "job_progress",
    metadata,
    sa.Column("job_id", sa.String(32), primary_key=True),
    sa.Column("stage", sa.String(200), nullable=False),
    sa.Column("done", sa.Integer, nullable=False),
    sa.Column("total", sa.Integer, nullable=False),
    utc_timestamp("updated_at", nullable=False),
)
job_results = sa.Table(
    "job_results",
    metadata,
    sa.Column("job_id", sa.String(32), primary_key=True),
    sa.Column("result", sa.JSON, nullable=False),
)

Handler = Callable[[Connection, dict[str, Any]], None]


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int


def enqueue(
    conn: Connection,
    kind: str,
    payload: Mapping[str, Any],
    *,
    run_at: dt.datetime | None = None,
    dedupe_key: str | None = None,
    max_attempts: int = 5,
    job_id: str | None = None,
) -> str | None:
    """Schedule ``kind`` with ``payload``; returns the job id, or None if ``dedupe_key`` exists.

    ``job_id`` lets the caller name the job (to put the id in its own payload).
    """
    job_id = job_id or secrets.token_hex(16)
    now = utcnow()
    row = {
        "id": job_id,
        "kind": kind,
        "payload": dict(payload),
        "dedupe_key": dedupe_key,
        "status": "pending",
        "attempts": 0,
        "max_attempts": max_attempts,
        "last_error": None,
        "run_at": run_at or now,
        "created_at": now,
        "started_at": None,
        "finished_at": None,
    }
    if dedupe_key is None:
        conn.execute(jobs.insert().values(**row))
        return job_id
    # RETURNING, not rowcount: DuckDB reports -1 for ON CONFLICT inserts.
    inserted = conn.execute(
        insert_ignore(jobs, ["dedupe_key"]).values(**row).returning(jobs.c.id)
    ).scalar()
    return str(inserted) if inserted else None


def claim(
    conn: Connection,
    *,
    now: dt.datetime | None = None,
    limit: int = 20,
    kinds: list[str] | None = None,
) -> list[Job]:
    """Mark up to ``limit`` due jobs as running and return them (call inside a transaction)."""
    now = now or utcnow()
    due = sa.or_(
        sa.and_(jobs.c.status == "pending", jobs.c.run_at <= now),
        sa.and_(jobs.c.status == "running", jobs.c.started_at <= now - LEASE),
    )
    query = sa.select(jobs).where(due).order_by(jobs.c.run_at).limit(limit)
    if kinds:
        query = query.where(jobs.c.kind.in_(kinds))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = conn.execute(query).mappings().all()
    if not rows:
        return []
    ids = [r["id"] for r in rows]
    conn.execute(
        jobs.update()
        .where(jobs.c.id.in_(ids))
        .values(status="running", started_at=now, attempts=jobs.c.attempts + 1)
    )
    return [
        Job(r["id"], r["kind"], dict(r["payload"]), r["attempts"] + 1, r["max_attempts"])
        for r in rows
    ]


def backoff(attempt: int) -> dt.timedelta:
    """Exponential backoff: 30 s, 1 min, 2 min, ... capped at one hour."""
    return dt.timedelta(seconds=min(30 * 2 ** max(attempt - 1, 0), 3600))


def run_due(
    engine: Engine,
    handlers: Mapping[str, Handler],
    *,
    now: dt.datetime | None = None,
    limit: int = 20,
) -> int:
    """Claim due jobs and run each in its own transaction; returns how many ran."""
    now = now or utcnow()
    with engine.begin() as conn:
        claimed = claim(conn, now=now, limit=limit, kinds=list(handlers))
    for job in claimed:
        try:
            with engine.begin() as conn:
                handlers[job.kind](conn, job.payload)
                conn.execute(
                    jobs.update()
                    .where(jobs.c.id == job.id)
                    .values(status="done", finished_at=utcnow(), last_error=None)
                )
        except Exception as exc:  # a failing job must not stop the others
            log.warning("job %s (%s) failed: %s", job.id, job.kind, exc)
            failed = job.attempts >= job.max_attempts
            with engine.begin() as conn:
                conn.execute(
                    jobs.update()
                    .where(jobs.c.id == job.id)
                    .values(
                        status="failed" if failed else "pending",
                        last_error=f"{type(exc).__name__}: {exc}"[:2000],
                        run_at=now + backoff(job.attempts),
                        finished_at=utcnow() if failed else None,
                    )
                )
    return len(claimed)


def pending_count(conn: Connection, kind: str | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(jobs).where(jobs.c.status == "pending")
    if kind:
        query = query.where(jobs.c.kind == kind)
    return int(conn.execute(query).scalar_one())


@dataclass(frozen=True)
class JobState:
    """A job as a client polls it: status, progress (``done`` of ``total`` at ``stage``)."""

    id: str
    kind: str
    status: str  # pending | running | done | failed
    payload: dict[str, Any]
    attempts: int
    last_error: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None
    stage: str | None
    done: int | None
    total: int | None
    result: Any


def report_progress(engine: Engine, job_id: str, stage: str, done: int, total: int) -> None:
    """Record a running job's progress in a short transaction of its own (readers see it now)."""
    values = {"stage": stage[:200], "done": done, "total": total, "updated_at": utcnow()}
    with engine.begin() as conn:
        updated = conn.execute(
            job_progress.update().where(job_progress.c.job_id == job_id).values(**values)
        ).rowcount
        if not updated:
            conn.execute(job_progress.insert().values(job_id=job_id, **values))


def keep_result(conn: Connection, job_id: str, result: Any) -> None:
    """Store a job's result (JSON) in the job's own transaction, so it appears with ``done``."""
    conn.execute(job_results.delete().where(job_results.c.job_id == job_id))
    conn.execute(job_results.insert().values(job_id=job_id, result=result))


def state(conn: Connection, job_id: str) -> JobState | None:
    """The job ``job_id`` with its progress and result, or None if there is no such job."""
    query = (
        sa.select(
            jobs,
            job_progress.c.stage,
            job_progress.c.done,
            job_progress.c.total,
            job_results.c.result,
        )
        .outerjoin(job_progress, job_progress.c.job_id == jobs.c.id)
        .outerjoin(job_results, job_results.c.job_id == jobs.c.id)
        .where(jobs.c.id == job_id)
    )
    row = conn.execute(query).mappings().first()
    if row is None:
        return None
    return JobState(
        id=row["id"], kind=row["kind"], status=row["status"], payload=dict(row["payload"]),
        attempts=row["attempts"], last_error=row["last_error"], created_at=row["created_at"],
        finished_at=row["finished_at"], stage=row["stage"], done=row["done"],
        total=row["total"], result=row["result"],
    )  # fmt: skip


def queue_summary(conn: Connection) -> list[dict[str, Any]]:
    """Jobs by kind: ``{kind, pending, running, failed, oldest_due, last_error}``; ``failed``
    counts jobs that gave up, ``oldest_due`` is the earliest pending job's due time (naive
    UTC), ``last_error`` the newest error recorded on any job of that kind."""
    counts = conn.execute(
        sa.select(jobs.c.kind, jobs.c.status, sa.func.count(), sa.func.min(jobs.c.run_at))
        .where(jobs.c.status.in_(("pending", "running", "failed")))
        .group_by(jobs.c.kind, jobs.c.status)
    ).all()
    out: dict[str, dict[str, Any]] = {}
    for kind, status, n, due in counts:
        row = out.setdefault(
            kind, {"kind": kind, "pending": 0, "running": 0, "failed": 0, "oldest_due": None}
        )
        row[status] = int(n)
        if status == "pending":
            row["oldest_due"] = due
    errors = conn.execute(
        sa.select(jobs.c.kind, jobs.c.last_error)
        .where(jobs.c.last_error.is_not(None))
        .order_by(sa.func.coalesce(jobs.c.finished_at, jobs.c.created_at).desc())
    ).all()
    for kind, error in errors:
        row = out.setdefault(
            kind, {"kind": kind, "pending": 0, "running": 0, "failed": 0, "oldest_due": None}
        )
        row.setdefault("last_error", error)
    return [
        r | {"last_error": r.get("last_error")}
        for r in sorted(out.values(), key=lambda r: r["kind"])
    ]

"""PostgreSQL in production: two server processes and two job workers on one database lose or
double nothing (docs/production.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from cxm.interactions.tables import interactions
from cxm.org import auth
from cxm.store import create_engine, jobs
from cxm.text import analytics
from cxm.text import jobs as text_jobs
from tests.conftest import free_port


def _cxm(url: str, *args: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CXM_DATABASE_URL": url}
    return subprocess.Popen(
        [sys.executable, "-m", "cxm.cli.main", *args],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _wait_healthy(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        assert proc.poll() is None, "the server exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("the server did not start")


@pytest.mark.postgres
def test_two_servers_and_two_workers_lose_and_double_nothing(
    postgres_database: str, tmp_path: Path
) -> None:
    url = postgres_database
    log = tmp_path / "processes.log"
    init = subprocess.run(
        [sys.executable, "-m", "cxm.cli.main", "init"],
        env={**os.environ, "CXM_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert init.returncode == 0, init.stderr
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(interactions.delete())
        conn.execute(jobs.jobs.delete())
        key = auth.create_api_key(conn, "ingest")
        # Work for the job workers: annotation jobs (no comments: each runs in milliseconds).
        job_ids = [
            jobs.enqueue(conn, text_jobs.KIND, {"source": analytics.SOURCE, "ids": []})
            for _ in range(120)
        ]
    ports = [free_port(), free_port()]
    # One server of two processes (uvicorn workers), one of a single process.
    procs = [
        _cxm(url, "serve", "--port", str(ports[0]), "--workers", "2", "--no-jobs", log=log),
        _cxm(url, "serve", "--port", str(ports[1]), "--no-jobs", log=log),
    ]
    procs += [_cxm(url, "worker", "--interval", "0.2", log=log) for _ in range(2)]
    try:
        for port, proc in zip(ports, procs, strict=False):
            _wait_healthy(port, proc)
        acknowledged: list[str] = []
        lock = threading.Lock()

        def stream(client_no: int) -> None:
            # Every batch goes to both servers: one of them stores it, the other finds it held.
            for n in range(15):
                ids = [f"c{client_no}-{n}-{i}" for i in range(20)]
                batch = {
                    "batch": [
                        {"type": "track", "event": "tick", "messageId": e, "userId": f"u{i % 7}"}
                        for i, e in enumerate(ids)
                    ]
                }
                for port in (ports[n % 2], ports[(n + 1) % 2]):
                    res = httpx.post(
                        f"http://127.0.0.1:{port}/v1/batch", json=batch, auth=(key, ""), timeout=60
                    )
                    assert res.status_code == 200, res.text
                with lock:
                    acknowledged.extend(ids)

        threads = [threading.Thread(target=stream, args=(c,)) for c in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                open_jobs = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(jobs.jobs)
                    .where(jobs.jobs.c.id.in_(job_ids), jobs.jobs.c.status != "done")
                ).scalar_one()
            if open_jobs == 0:
                break
            time.sleep(0.5)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(interactions.c.event_id, sa.func.count()).group_by(interactions.c.event_id)
        ).all()
        done = conn.execute(
            sa.select(jobs.jobs.c.status, jobs.jobs.c.attempts).where(jobs.jobs.c.id.in_(job_ids))
        ).all()
    engine.dispose()
    # Nothing lost, nothing doubled: every acknowledged event once.
    assert len(acknowledged) == 4 * 15 * 20
    assert {e for e, _ in stored} == set(acknowledged), log.read_text()[-3000:]
    assert all(n == 1 for _, n in stored)
    # Every job ran, and exactly once (a second claim would have counted a second attempt).
    assert len(done) == 120
    assert {(status, attempts) for status, attempts in done} == {("done", 1)}, log.read_text()[
        -3000:
    ]


def test_several_processes_on_duckdb_are_refused(tmp_path: Path) -> None:
    env = {**os.environ, "CXM_DATABASE_URL": f"duckdb:///{tmp_path / 'cxm.duckdb'}"}
    for args in (["--workers", "2"], ["--no-jobs"]):
        done = subprocess.run(
            [sys.executable, "-m", "cxm.cli.main", "serve", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 2, done.stderr
        assert "needs PostgreSQL" in done.stderr

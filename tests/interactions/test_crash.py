"""Durability: kill -9 the server while batches stream in; no acknowledged event is lost."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from cxm.interactions.tables import interactions
from cxm.org import auth
from cxm.store import create_engine
from tests.conftest import migrated_duckdb


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CXM_DATABASE_URL": url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cxm.cli.main", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the server did not start")


def test_kill_9_loses_no_acknowledged_event(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'cxm.duckdb'}"
    engine = migrated_duckdb(tmp_path / "cxm.duckdb")
    with engine.begin() as conn:
        key = auth.create_api_key(conn, "ingest")
    engine.dispose()
    port = _port()
    proc = _serve(url, port)
    acknowledged: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def stream(worker: int) -> None:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            timeout=5,
            headers={"Authorization": f"Bearer {key}"},
        ) as client:
            n = 0
            while not stop.is_set():
                ids = [f"w{worker}-{n}-{i}" for i in range(20)]
                events = [
                    {"event_id": e, "name": "tick", "user_id": f"u{i}"} for i, e in enumerate(ids)
                ]
                n += 1
                try:
                    res = client.post("/api/v1/interactions/batch", json={"events": events})
                except httpx.HTTPError:
                    return  # the server is gone: this batch was never acknowledged
                if res.status_code == 200:
                    with lock:
                        acknowledged.update(
                            i["event_id"] for i in res.json()["items"] if i["status"] == "stored"
                        )

    threads = [threading.Thread(target=stream, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with lock:
            if len(acknowledged) >= 400:
                break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stop.set()
    for t in threads:
        t.join()
    assert len(acknowledged) >= 400
    # Restart the server on the same file (it recovers from the log), then compare.
    proc = _serve(url, port)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    engine = create_engine(url)
    with engine.connect() as conn:
        stored = set(conn.execute(sa.select(interactions.c.event_id)).scalars())
    engine.dispose()
    assert acknowledged <= stored

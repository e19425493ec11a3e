"""Events/s through HTTP against a live server.

1. ``/v1/batch`` (Segment's batch call): cxm against the floor, a plain FastAPI + DuckDB
   keyed table committing before it answers (``floor_server.py``), in the same run.
2. Segment's own Python SDK (``segment-analytics-python``) against cxm and against the floor
   server, in the same run.
3. Single-event requests: group commit vs one transaction per event.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from cxm.org import auth
from cxm.store import create_engine, upgrade


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(folder: Path, group_max: int, clients: int, per_client: int) -> float:
    """Events/s with ``clients`` concurrent senders posting one event per request."""
    url = f"duckdb:///{folder / f'ingest-{group_max}.duckdb'}"
    engine = create_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        key = auth.create_api_key(conn, "ingest")
    engine.dispose()
    port = _port()
    env = {**os.environ, "CXM_DATABASE_URL": url, "CXM_INGEST_GROUP_MAX": str(group_max)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cxm.cli.main", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)

        def send(worker: int) -> None:
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"},
                              timeout=60) as client:  # fmt: skip
                for n in range(per_client):
                    event = {"event_id": f"{worker}-{n}", "name": "page_view",
                             "user_id": f"u{(worker * 7 + n) % 500}"}  # fmt: skip
                    client.post("/api/v1/interactions", json=event).raise_for_status()

        threads = [threading.Thread(target=send, args=(w,)) for w in range(clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return clients * per_client / (time.perf_counter() - start)
    finally:
        proc.terminate()
        proc.wait(30)


def _wait(base: str) -> None:
    for _ in range(600):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.1)


@contextmanager
def serving(folder: Path, floor: bool) -> Iterator[tuple[str, str]]:
    """A live server in its own process: cxm (``cxm serve``) or the floor; (base URL, key)."""
    port = _port()
    key = "floor"
    if floor:
        env = {**os.environ, "FLOOR_DB": str(folder / f"floor-{port}.duckdb")}
        args = [sys.executable, "-m", "uvicorn", "floor_server:app", "--port", str(port),
                "--log-level", "warning"]  # fmt: skip
        cwd: str | None = str(Path(__file__).parent)
    else:
        url = f"duckdb:///{folder / f'batch-{port}.duckdb'}"
        engine = create_engine(url)
        upgrade(engine)
        with engine.begin() as conn:
            key = auth.create_api_key(conn, "ingest")
        engine.dispose()
        env = {**os.environ, "CXM_DATABASE_URL": url}
        args = [sys.executable, "-m", "cxm.cli.main", "serve", "--port", str(port)]
        cwd = None
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base)
        yield base, key
    finally:
        proc.terminate()
        proc.wait(30)


def batches(folder: Path, floor: bool, clients: int, per_client: int, size: int) -> float:
    """Events/s posting ``/v1/batch`` calls of ``size`` events from ``clients`` senders."""
    with serving(folder, floor) as (base, key):

        def send(worker: int) -> None:
            with httpx.Client(base_url=base, auth=(key, ""), timeout=120) as client:
                for n in range(per_client):
                    batch = [
                        {"type": "track", "event": "page_view", "messageId": f"{worker}-{n}-{i}",
                         "userId": f"u{(worker * 7 + n * size + i) % 5000}",
                         "properties": {"path": "/pricing"}}
                        for i in range(size)
                    ]  # fmt: skip
                    client.post("/v1/batch", json={"batch": batch}).raise_for_status()

        threads = [threading.Thread(target=send, args=(w,)) for w in range(clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return clients * per_client * size / (time.perf_counter() - start)


def sdk(folder: Path, floor: bool, threads: int, per_thread: int) -> float:
    """Events/s through Segment's own Python SDK (``segment-analytics-python``, its default
    queue and upload settings): ``threads`` application threads each call ``track``
    ``per_thread`` times; the clock stops when ``flush`` returns (every event delivered)."""
    import segment.analytics as analytics

    failures: list[Exception] = []
    with serving(folder, floor) as (base, key):
        client = analytics.Client(
            write_key=key,
            host=base,
            max_queue_size=threads * per_thread + 1,
            on_error=lambda exc, _batch: failures.append(exc),
        )

        def send(worker: int) -> None:
            for n in range(per_thread):
                client.track(
                    user_id=f"u{(worker * 7 + n) % 500}",
                    event="page_view",
                    properties={"path": "/pricing"},
                    message_id=f"sdk-{worker}-{n}",
                )

        workers = [threading.Thread(target=send, args=(w,)) for w in range(threads)]
        start = time.perf_counter()
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        client.flush()
        took = time.perf_counter() - start
        client.shutdown()
    if failures:
        raise RuntimeError(f"the SDK reported {len(failures)} failed uploads: {failures[0]}")
    return threads * per_thread / took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    parser.add_argument(
        "--sdk-events", type=int, default=0, help="track calls per SDK thread (default 100, 1000)"
    )
    args = parser.parse_args()
    clients, per_client = (16, 25) if args.quick else (32, 200)
    calls = 2 if args.quick else 5
    per_thread = args.sdk_events or (100 if args.quick else 1000)
    with tempfile.TemporaryDirectory() as tmp:
        ours = batches(Path(tmp), False, 8, calls, 500)
        floor = batches(Path(tmp), True, 8, calls, 500)
    print(f"/v1/batch, 8 clients x {calls} calls x 500 events (DuckDB, commit before answering)")
    print(f"cxm:                          {ours:8,.0f} events/s")
    print(f"floor (FastAPI + DuckDB keyed table): {floor:8,.0f} events/s")
    print(f"ratio: {ours / floor:.2f}x")
    with tempfile.TemporaryDirectory() as tmp:
        ours = sdk(Path(tmp), False, 4, per_thread)
        floor = sdk(Path(tmp), True, 4, per_thread)
    print(f"Segment's Python SDK (segment-analytics-python), 4 threads x {per_thread} track calls")
    print(f"cxm:                          {ours:8,.0f} events/s")
    print(f"floor (same SDK, plain FastAPI + DuckDB server): {floor:8,.0f} events/s")
    print(f"ratio: {ours / floor:.2f}x")
    with tempfile.TemporaryDirectory() as tmp:
        grouped = run(Path(tmp), 5000, clients, per_client)
        single = run(Path(tmp), 1, clients, per_client)
    print(f"{clients} clients x {per_client} single-event requests (DuckDB)")
    print(f"group commit:              {grouped:8,.0f} events/s")
    print(f"one transaction per event: {single:8,.0f} events/s")
    print(f"ratio: {grouped / single:.1f}x")


if __name__ == "__main__":
    main()

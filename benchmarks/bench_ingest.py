"""Events/s through HTTP against a live server.

1. ``/v1/batch`` (Segment's batch call): cxm against the floor, a plain FastAPI + DuckDB
   keyed table committing before it answers (``floor_server.py``), in the same run.
2. Segment's own Python SDK (``segment-analytics-python``) against cxm and against the floor
   server, in the same run.
3. Single-event requests: group commit vs one transaction per event.

Beside events/s, each server's CPU time per event (user + system, all its threads, read from
``/proc/<pid>/stat`` before and after the workload): unlike events/s it barely moves with the
machine's load. ``--prefill N`` stores N events (of N/10 customers) in both servers' stores
before they start, written with SQL as set-up, to show the cost as the store grows.
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its children so far (Linux ``/proc``)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def prefill_cxm(url: str, n: int) -> None:
    """``n`` stored events of ``n // 10`` customers (user ids ``p0``...), one identity each."""
    if not n:
        return
    m = max(1, n // 10)
    engine = create_engine(url)
    with engine.begin() as conn:
        for sql in (
            f"""INSERT INTO customers (id, created_at, first_seen, last_seen, interaction_count,
                merged_into) SELECT md5('pre' || k)[1:32], TIMESTAMP '2025-01-01',
                TIMESTAMP '2025-01-01', TIMESTAMP '2025-06-01', 10, NULL FROM range({m}) t(k)""",
            f"""INSERT INTO customer_identities (kind, value, customer_id, first_seen)
                SELECT 'user_id', 'p' || k, md5('pre' || k)[1:32], TIMESTAMP '2025-01-01'
                FROM range({m}) t(k)""",
            f"""INSERT INTO interactions (event_id, type, name, event_time, received_at,
                customer_id, user_id, properties, source)
                SELECT md5('ev' || i), 'track', 'page_view',
                TIMESTAMP '2025-01-01' + INTERVAL (i) SECOND,
                TIMESTAMP '2025-01-01' + INTERVAL (i // 1000) SECOND,
                md5('pre' || (i % {m}))[1:32], 'p' || (i % {m}), '{{"path": "/pricing"}}',
                'import' FROM range({n}) t(i)""",
        ):
            conn.exec_driver_sql(sql)
    with engine.connect() as conn:
        conn.exec_driver_sql("CHECKPOINT")
    engine.dispose()


def prefill_floor(path: Path, n: int) -> None:
    """``n`` stored events in the floor server's table."""
    if not n:
        return
    import duckdb

    db = duckdb.connect(str(path))
    db.execute(
        "CREATE TABLE events (event_id VARCHAR PRIMARY KEY, type VARCHAR, name VARCHAR, "
        "user_id VARCHAR, anonymous_id VARCHAR, properties VARCHAR)"
    ).fetchall()
    db.execute(
        "INSERT INTO events SELECT md5('ev' || i), 'track', 'page_view', 'p' || (i % "
        f'{max(1, n // 10)}), NULL, \'{{"path": "/pricing"}}\' FROM range({n}) t(i)'
    ).fetchall()
    db.execute("CHECKPOINT").fetchall()
    db.close()


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
def serving(folder: Path, floor: bool, prefill: int = 0) -> Iterator[tuple[str, str, int]]:
    """A live server in its own process: cxm (``cxm serve``) or the floor, its store holding
    ``prefill`` events; (base URL, key, pid)."""
    port = _port()
    key = "floor"
    if floor:
        path = folder / f"floor-{port}.duckdb"
        prefill_floor(path, prefill)
        env = {**os.environ, "FLOOR_DB": str(path)}
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
        prefill_cxm(url, prefill)
        env = {**os.environ, "CXM_DATABASE_URL": url}
        args = [sys.executable, "-m", "cxm.cli.main", "serve", "--port", str(port)]
        cwd = None
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base)
        # One uncounted call first: what a server does once (imports, caches) stays out.
        warm = [{"type": "track", "event": "warm_up", "messageId": f"warm-{i}", "userId": "w"}
                for i in range(500)]  # fmt: skip
        httpx.post(f"{base}/v1/batch", json={"batch": warm}, auth=(key, ""), timeout=120)
        yield base, key, proc.pid
    finally:
        proc.terminate()
        proc.wait(30)


def batches(
    folder: Path, floor: bool, clients: int, per_client: int, size: int, prefill: int = 0
) -> tuple[float, float]:
    """(events/s, server CPU µs per event) posting ``/v1/batch`` calls of ``size`` events
    from ``clients`` senders."""
    with serving(folder, floor, prefill) as (base, key, pid):

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
        cpu = cpu_seconds(pid)
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        events = clients * per_client * size
        took = time.perf_counter() - start
        return events / took, (cpu_seconds(pid) - cpu) / events * 1e6


def sdk(folder: Path, floor: bool, threads: int, per_thread: int) -> tuple[float, float]:
    """(events/s, server CPU µs per event) through Segment's own Python SDK
    (``segment-analytics-python``, its default queue and upload settings): ``threads``
    application threads each call ``track`` ``per_thread`` times; the clock stops when
    ``flush`` returns (every event delivered)."""
    import segment.analytics as analytics

    failures: list[Exception] = []
    with serving(folder, floor) as (base, key, pid):
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
        cpu = cpu_seconds(pid)
        start = time.perf_counter()
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        client.flush()
        took = time.perf_counter() - start
        used = cpu_seconds(pid) - cpu
        client.shutdown()
    if failures:
        raise RuntimeError(f"the SDK reported {len(failures)} failed uploads: {failures[0]}")
    return threads * per_thread / took, used / (threads * per_thread) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    parser.add_argument(
        "--sdk-events", type=int, default=0, help="track calls per SDK thread (default 100, 1000)"
    )
    parser.add_argument(
        "--calls", type=int, default=0, help="/v1/batch calls per client (default 2, 5)"
    )
    parser.add_argument(
        "--prefill", type=int, default=0, help="events stored before /v1/batch runs (default 0)"
    )
    parser.add_argument(
        "--only-batch", action="store_true", help="run the /v1/batch workload alone"
    )
    args = parser.parse_args()
    clients, per_client = (16, 25) if args.quick else (32, 200)
    calls = args.calls or (2 if args.quick else 5)
    per_thread = args.sdk_events or (100 if args.quick else 1000)
    with tempfile.TemporaryDirectory() as tmp:
        ours, ours_cpu = batches(Path(tmp), False, 8, calls, 500, args.prefill)
        floor, floor_cpu = batches(Path(tmp), True, 8, calls, 500, args.prefill)
    held = f", {args.prefill:,} events already stored" if args.prefill else ""
    print(f"/v1/batch, 8 clients x {calls} calls x 500 events (DuckDB, commit before answering"
          f"{held})")  # fmt: skip
    print(
        f"cxm:                          {ours:8,.0f} events/s, server CPU {ours_cpu:5.0f} µs/event"
    )
    print(f"floor (FastAPI + DuckDB keyed table): {floor:8,.0f} events/s, "
          f"server CPU {floor_cpu:5.0f} µs/event")  # fmt: skip
    print(f"ratio: {ours / floor:.2f}x (events/s), {floor_cpu / ours_cpu:.2f}x (CPU per event)")
    if args.only_batch:
        return
    with tempfile.TemporaryDirectory() as tmp:
        ours, ours_cpu = sdk(Path(tmp), False, 4, per_thread)
        floor, floor_cpu = sdk(Path(tmp), True, 4, per_thread)
    print(f"Segment's Python SDK (segment-analytics-python), 4 threads x {per_thread} track calls")
    print(
        f"cxm:                          {ours:8,.0f} events/s, server CPU {ours_cpu:5.0f} µs/event"
    )
    print(f"floor (same SDK, plain FastAPI + DuckDB server): {floor:8,.0f} events/s, "
          f"server CPU {floor_cpu:5.0f} µs/event")  # fmt: skip
    print(f"ratio: {ours / floor:.2f}x (events/s), {floor_cpu / ours_cpu:.2f}x (CPU per event)")
    with tempfile.TemporaryDirectory() as tmp:
        grouped = run(Path(tmp), 5000, clients, per_client)
        single = run(Path(tmp), 1, clients, per_client)
    print(f"{clients} clients x {per_client} single-event requests (DuckDB)")
    print(f"group commit:              {grouped:8,.0f} events/s")
    print(f"one transaction per event: {single:8,.0f} events/s")
    print(f"ratio: {grouped / single:.1f}x")


if __name__ == "__main__":
    main()

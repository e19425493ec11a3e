"""Survey submissions at a sustained offered rate through a live server, and the page's weight.

Run: .venv/bin/python benchmarks/bench_responses.py [--rate 200] [--seconds 10] [--quick]

Starts the real server (``cxm serve``, its own process, owning a temporary DuckDB store) and
answers invitations
(``POST /s/{token}``, the first question, as a respondent's browser does) at ``--rate``
requests per second for ``--seconds``, open loop: each request leaves at its scheduled time
whether or not earlier ones have finished, and its latency counts from that scheduled time
(so a queue shows up as latency, not as a lower offered rate). Prints the offered and served
rates, p50/p99 latency, errors, and, as the baseline, the latency of one submission at a time on
the same server. Goal: p99 at most 50 ms at 200/s for 60 s (``--seconds 60``), no error.
Every acknowledged answer is then checked in the store.

Latency depends on what else the machine runs; the server's own CPU time per submission
(user + system seconds of the server process, read from ``/proc/<pid>/stat`` before and after
each phase, divided by the submissions) does much less, and says what rate one core could hold.
It is printed as measured and net of what the idle server spends meanwhile (its job worker
and periodic scans, measured over ``IDLE`` seconds after the phases, its start-up work done).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pyarrow as pa
import sqlalchemy as sa

from cxm.org import service as org
from cxm.store import create_engine, upgrade
from cxm.store.bulk import insert_table
from cxm.surveys import service
from cxm.surveys.facts import invitations_table as invitations
from cxm.surveys.facts import response_answers

SURVEY = "support_csat"
IDLE = 3.0  # seconds the idle server's own CPU use is measured
first_errors: list[str] = []  # what the first failed submissions got, to print


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process ``pid`` has used (all its threads; Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tokens(engine: sa.Engine, n: int) -> list[str]:
    """``n`` fresh invitations to the survey, written in bulk (the benchmark's set-up)."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    made = [secrets.token_urlsafe(32) for _ in range(n)]
    table = pa.table({
        "id": [secrets.token_hex(16) for _ in range(n)], "token": made,
        "survey_key": [SURVEY] * n, "channel": ["link"] * n, "hidden": ["{}"] * n,
        "status": ["created"] * n, "created_at": pa.array([now] * n, pa.timestamp("us")),
        "expires_at": pa.array([now + dt.timedelta(days=30)] * n, pa.timestamp("us")),
    })  # fmt: skip
    with engine.begin() as conn:
        insert_table(conn, invitations, table)
    return made


async def offered(base: str, todo: list[str], rate: float) -> tuple[list[float], int, float]:
    """Send one submission per token at ``rate``/s; (latencies in ms, errors, seconds)."""
    latencies: list[float] = []
    errors = 0
    first_errors.clear()
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60.0) as client:

        async def one(token: str, due: float) -> None:
            nonlocal errors
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            try:
                r = await client.post(f"/s/{token}", data={"q": "csat", "a": "4"})
                ok = r.status_code in (200, 303)
                what = f"{r.status_code}: {r.text[-300:]}"
            except httpx.HTTPError as exc:
                ok, what = False, repr(exc)
            latencies.append((time.perf_counter() - due) * 1000)
            errors += not ok
            if not ok and len(first_errors) < 3:
                first_errors.append(what)

        start = time.perf_counter() + 0.2
        await asyncio.gather(*(one(t, start + i / rate) for i, t in enumerate(todo)))
        return latencies, errors, time.perf_counter() - start


async def one_at_a_time(base: str, todo: list[str]) -> list[float]:
    out = []
    async with httpx.AsyncClient(base_url=base, timeout=60.0) as client:
        for token in todo:
            t0 = time.perf_counter()
            r = await client.post(f"/s/{token}", data={"q": "csat", "a": "4"})
            assert r.status_code in (200, 303), r.text
            out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200.0, help="offered submissions/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to offer them")
    parser.add_argument("--quick", action="store_true", help="3 seconds")
    args = parser.parse_args()
    seconds = 3.0 if args.quick else args.seconds
    n = int(args.rate * seconds)
    serial_n = 50
    with tempfile.TemporaryDirectory() as tmp:
        url = f"duckdb:///{Path(tmp) / 'cxm.duckdb'}"
        engine = create_engine(url)
        upgrade(engine)
        with engine.begin() as conn:
            org.seed_defaults(conn)
            service.apply_templates(conn)
        todo = tokens(engine, n + serial_n + 1)
        engine.dispose()  # the server owns the store while it runs
        port = free_port()
        env = {**os.environ, "CXM_DATA_DIR": tmp, "CXM_DATABASE_URL": url}
        server = subprocess.Popen(
            [sys.executable, "-m", "cxm.cli.main", "serve", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start")
                time.sleep(0.2)
            page = httpx.get(f"{base}/s/{todo[-1]}")
            cpu0, t0 = cpu_seconds(server.pid), time.perf_counter()
            serial = asyncio.run(one_at_a_time(base, todo[n : n + serial_n]))
            cpu1, serial_took = cpu_seconds(server.pid), time.perf_counter() - t0
            latencies, errors, took = asyncio.run(offered(base, todo[:n], args.rate))
            cpu2 = cpu_seconds(server.pid)
            time.sleep(IDLE)  # the idle server's own work, its start-up work done
            background = (cpu_seconds(server.pid) - cpu2) / IDLE  # CPU seconds per second
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=120)
        engine = create_engine(url)
        with engine.connect() as conn:
            stored = conn.execute(
                sa.select(sa.func.count()).select_from(response_answers)
                .where(response_answers.c.question_id == "csat")
            ).scalar_one()  # fmt: skip
        engine.dispose()
    acknowledged = n - errors
    print(f"survey page weight: {len(page.content)} bytes (HTML+CSS, no JavaScript; limit 50000)")
    print(f"offered {args.rate:.0f}/s for {seconds:.0f} s ({n} submissions): served "
          f"{acknowledged / took:.1f}/s, errors {errors}")  # fmt: skip
    for what in first_errors:
        print(f"  error: {what}")
    print(f"latency from scheduled send: p50 {percentile(latencies, 0.5):.1f} ms, "
          f"p99 {percentile(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms "
          f"(goal: p99 at most 50 ms)")  # fmt: skip
    print(f"baseline, one submission at a time: p50 {percentile(serial, 0.5):.1f} ms, "
          f"p99 {percentile(serial, 0.99):.1f} ms")  # fmt: skip
    loaded, alone = (cpu2 - cpu1) / n, (cpu1 - cpu0) / serial_n
    print(f"server CPU per submission: {1000 * loaded:.2f} ms under load, "
          f"{1000 * alone:.2f} ms one at a time (user + system, all threads; "
          f"load average {os.getloadavg()[0]:.1f})")  # fmt: skip
    net_loaded = loaded - background * took / n
    net_alone = alone - background * serial_took / serial_n
    print(f"  net of the idle server's own {1000 * background:.1f} ms/s: "
          f"{1000 * net_loaded:.2f} ms under load, "
          f"{1000 * net_alone:.2f} ms one at a time")  # fmt: skip
    print(f"ratio p99 under load / p50 alone: "
          f"{percentile(latencies, 0.99) / percentile(serial, 0.5):.1f}x")  # fmt: skip
    print(
        f"answers in the store: {stored} of {acknowledged + serial_n} acknowledged"
        + (" (all durable)" if stored >= acknowledged + serial_n else " (MISSING)")
    )


if __name__ == "__main__":
    main()

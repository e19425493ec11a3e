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

The load generator is a few lines of HTTP/1.1 over asyncio streams with its own keep-alive
connections (``Connections``), not httpx, whose pool's work per request grows with the requests
waiting; its own CPU per submission is printed. Progress is printed every 10 s, and requests
still unanswered ``GRACE`` seconds after the last was due are given up and counted as errors,
so an overloaded server still ends the run with figures (the server still serves what was given
up: its CPU under load counts until it is idle again).

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
GRACE = 30.0  # seconds after the last submission was due that unanswered ones are given up
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


def settle(pid: int, limit: float = 120.0) -> float:
    """Seconds until the process ``pid`` is nearly idle (under 5% of a core over half a
    second): the work still queued when the client stopped waiting."""
    began = time.perf_counter()
    while time.perf_counter() - began < limit:
        used = cpu_seconds(pid)
        time.sleep(0.5)
        if cpu_seconds(pid) - used < 0.025:
            break
    return time.perf_counter() - began


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


class Connections:
    """Keep-alive HTTP/1.1 connections to the server, the load generator's own.

    httpx's pool does work proportional to the requests queued times the connections open for
    every request it starts and ends (``httpcore``'s ``_assign_requests_to_connections``): once
    the server falls behind and hundreds of requests wait, the client spends the machine's CPU
    on that, the server gets less, and more requests wait. A 60 s run then never ended. Here a
    request takes an idle connection or opens one (at most ``limit``, then it waits): constant
    work per request, whatever the queue.
    """

    def __init__(self, host: str, port: int, limit: int = 1000) -> None:
        self.host, self.port = host, port
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._slots = asyncio.Semaphore(limit)
        self._all: list[asyncio.StreamWriter] = []

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST a form; the response's status and body (a closed keep-alive connection is
        retried once on a new one, as browsers do)."""
        async with self._slots:
            for attempt in (0, 1):
                fresh = attempt == 1 or not self._idle
                if fresh:
                    reader, writer = await asyncio.open_connection(self.host, self.port)
                    self._all.append(writer)
                else:
                    reader, writer = self._idle.pop()
                try:
                    writer.write(
                        f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n"
                        "Content-Type: application/x-www-form-urlencoded\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n".encode()
                        + body
                    )
                    head = await reader.readuntil(b"\r\n\r\n")
                except (ConnectionError, asyncio.IncompleteReadError):
                    writer.close()
                    if fresh:
                        raise
                    continue
                lines = head.decode("latin-1").split("\r\n")
                status = int(lines[0].split(" ", 2)[1])
                headers = dict(
                    (k.strip().lower(), v.strip())
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)
                )
                if "content-length" not in headers:  # every page the server answers has one
                    raise ValueError(f"no Content-Length in the answer: {head[:200]!r}")
                content = await reader.readexactly(int(headers["content-length"]))
                if headers.get("connection", "").lower() == "close":
                    writer.close()
                else:
                    self._idle.append((reader, writer))
                return status, content
            raise AssertionError("unreachable")

    async def close(self) -> None:
        for writer in self._all:
            writer.close()


FORM = b"q=csat&a=4"


async def offered(
    port: int, todo: list[str], rate: float, grace: float
) -> tuple[list[float], int, float, int]:
    """Send one submission per token at ``rate``/s; (latencies in ms, errors, seconds, not
    answered). Requests still unanswered ``grace`` seconds after the last was due are given up
    (counted apart, not served), so an overloaded server still gives figures."""
    latencies: list[float] = []
    errors = 0
    first_errors.clear()
    pool = Connections("127.0.0.1", port)

    async def one(token: str, due: float) -> None:
        nonlocal errors
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        try:
            status, content = await pool.post(f"/s/{token}", FORM)
            ok = status in (200, 303)
            what = f"{status}: {content[-300:].decode(errors='replace')}"
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            ok, what = False, repr(exc)
        latencies.append((time.perf_counter() - due) * 1000)
        errors += not ok
        if not ok and len(first_errors) < 3:
            first_errors.append(what)

    async def progress(start: float) -> None:
        while True:
            await asyncio.sleep(10.0)
            print(f"  {time.perf_counter() - start:.0f} s: {len(latencies)} answered",
                  flush=True)  # fmt: skip

    start = time.perf_counter() + 0.2
    last_due = start + (len(todo) - 1) / rate
    due = {asyncio.ensure_future(one(t, start + i / rate)): start + i / rate
           for i, t in enumerate(todo)}  # fmt: skip
    reporter = asyncio.ensure_future(progress(start))
    _, unfinished = await asyncio.wait(due, timeout=last_due + grace - time.perf_counter())
    ended = time.perf_counter()
    took = ended - start
    reporter.cancel()
    for task in unfinished:  # given up: its latency is at least this (counted in p99)
        task.cancel()
        latencies.append((ended - due[task]) * 1000)
    await asyncio.gather(*unfinished, reporter, return_exceptions=True)
    await pool.close()
    return latencies, errors, took, len(unfinished)


async def one_at_a_time(port: int, todo: list[str]) -> list[float]:
    out = []
    pool = Connections("127.0.0.1", port)
    for token in todo:
        t0 = time.perf_counter()
        status, content = await pool.post(f"/s/{token}", FORM)
        assert status in (200, 303), content
        out.append((time.perf_counter() - t0) * 1000)
    await pool.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200.0, help="offered submissions/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to offer them")
    parser.add_argument("--quick", action="store_true", help="3 seconds")
    args = parser.parse_args()
    seconds = 3.0 if args.quick else args.seconds
    began = time.perf_counter()
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
            print(f"set up in {time.perf_counter() - began:.0f} s; offering {n} submissions",
                  flush=True)  # fmt: skip
            cpu0, t0 = cpu_seconds(server.pid), time.perf_counter()
            serial = asyncio.run(one_at_a_time(port, todo[n : n + serial_n]))
            cpu1, serial_took = cpu_seconds(server.pid), time.perf_counter() - t0
            client0 = time.process_time()
            latencies, errors, took, unanswered = asyncio.run(
                offered(port, todo[:n], args.rate, grace=GRACE)
            )
            client = time.process_time() - client0
            busy = took + settle(server.pid)  # requests given up are still served: wait
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
    errors += unanswered
    acknowledged = n - errors
    print(f"survey page weight: {len(page.content)} bytes (HTML+CSS, no JavaScript; limit 50000)")
    print(f"offered {args.rate:.0f}/s for {seconds:.0f} s ({n} submissions): served "
          f"{acknowledged / took:.1f}/s, errors {errors}")  # fmt: skip
    if unanswered:
        print(f"  of which {unanswered} still unanswered {GRACE:.0f} s after the last was due "
              "(given up; counted in p99 with the latency they had then)")  # fmt: skip
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
    print(f"  the load generator's own CPU: {1000 * client / n:.2f} ms per submission")
    net_loaded = loaded - background * busy / n
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

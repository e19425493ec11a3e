"""Page render times for every staff page on a large company, against the 500 ms p95 budget.

Run: .venv/bin/python benchmarks/bench_pages.py [--quick] [--customers N] [--months M] [--runs R]
Builds a DuckDB store with the synthetic fact set of the metrics layer (100,000 customers x
12 months by default), signs in as a CX lead through the real ASGI app and times each page
R times, cold (the dashboards' one-minute result cache emptied before every request) and warm.
Prints p50/p95 milliseconds per page, the ratio of p95 to the 500 ms budget, and the time of
the overview's metric queries run one after another without the page (the baseline).
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from cxm.config import load_settings
from cxm.metrics import compute, load, synthetic
from cxm.org import auth
from cxm.store import create_engine, upgrade
from cxm.store.analytics import reading
from cxm.web.app import create_app

BUDGET_MS = 500.0
PAGES = ["/", "/departments", "/departments/service", "/feedback", "/feedback?band=detractor",
         "/org", "/surveys", "/cases"]  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2,000 customers, 3 runs")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    if args.quick:
        args.customers, args.runs = 2_000, 3
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"duckdb:///{Path(tmp) / 'cxm.duckdb'}")
        upgrade(engine)
        t0 = time.perf_counter()
        rows = synthetic.write(engine, args.customers, args.months)
        print(f"store: {args.customers:,} customers x {args.months} months, "
              f"{rows['responses']:,} responses, {rows['interactions']:,} interactions "
              f"({time.perf_counter() - t0:.1f} s to build)")  # fmt: skip
        with engine.begin() as conn:
            auth.create_user(conn, "lead@example.com", "cx_lead", password="benchmark-pass")
        settings = load_settings(data_dir=Path(tmp), database_url=str(engine.url))
        with TestClient(create_app(settings, engine=engine, run_worker=False)) as client:
            form = client.get("/login").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', form)
            assert token
            client.post("/login", data={"email": "lead@example.com",
                                        "password": "benchmark-pass",
                                        "csrf_token": token.group(1)})  # fmt: skip
            state = client.app.state  # type: ignore[attr-defined]
            print(f"{'page':28} {'cold p50':>9} {'cold p95':>9} {'p95/budget':>11} "
                  f"{'warm p50':>9} {'warm p95':>9}")  # fmt: skip
            for page in PAGES:
                figures = []
                for cold in (True, False):
                    times = []
                    for _ in range(args.runs + 1):
                        if cold and hasattr(state, "frame_cache"):
                            del state.frame_cache
                        t = time.perf_counter()
                        response = client.get(page)
                        times.append((time.perf_counter() - t) * 1000)
                        assert response.status_code == 200, (page, response.status_code)
                    times = times[1:]  # the first request warms connections and plans
                    figures.append((statistics.median(times), percentile(times, 0.95)))
                (c50, c95), (w50, w95) = figures
                print(f"{page:28} {c50:9.0f} {c95:9.0f} {c95 / BUDGET_MS:10.2f}x "
                      f"{w50:9.0f} {w95:9.0f}")  # fmt: skip
        # Baseline: the overview's metric queries alone, without HTTP and templates.
        metrics = load()
        with reading(engine) as backend:
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                for name in ("nps", "csat", "ces"):
                    compute(backend, name, metrics=metrics)
                    compute(backend, name, ["department"], metrics=metrics)
                compute(backend, "nps", ["month"], metrics=metrics)
                compute(backend, "csat", ["department", "month"], compare="previous",
                        metrics=metrics)  # fmt: skip
                compute(backend, "response_rate", metrics=metrics)
                times.append((time.perf_counter() - t) * 1000)
        print(f"baseline: the overview's 9 metric queries alone: p50 {statistics.median(times):.0f}"
              f" ms, p95 {percentile(times, 0.95):.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()

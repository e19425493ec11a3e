"""Page render times for every staff page on a large company, against the 500 ms p95 budget.

Run: .venv/bin/python benchmarks/bench_pages.py [--quick] [--runs R] [--store FILE]

With ``--store`` it reads a store you loaded, for example the demo company at full size:

    CXM_DATA_DIR=data/demo-100k .venv/bin/cxm init
    CXM_DATA_DIR=data/demo-100k .venv/bin/cxm demo --customers 100000 --months 12   # ~10-18 min
    .venv/bin/python benchmarks/bench_pages.py --store data/demo-100k/cxm.duckdb

and signs in as the demo's CX lead and admin. Without it, it builds a DuckDB store with the
metrics layer's synthetic facts (100,000 customers x 12 months; ``--quick``: 2,000).

Each page is requested R times through the real ASGI app, as a server runs it:
- cold: the dashboards' result cache emptied before every request (the first view of a date
  range or filter nobody looked at in the last ten minutes); the open connections, compiled
  SQL and the journeys' month rollup stay, as they do in a running server;
- warm: the cache as a running server keeps it (results shared for a minute and recomputed in
  the background while in use), which is what repeat and shared views get.
Prints p50/p95 milliseconds per page, the ratio of cold p95 to the 500 ms budget, and, as the
baseline, the overview's metric queries run one after another without the page.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from cxm.config import load_settings
from cxm.metrics import compute, load, synthetic
from cxm.org import auth
from cxm.store import create_engine, upgrade
from cxm.store.analytics import reading
from cxm.web.app import create_app

BUDGET_MS = 500.0
DEMO_LEAD = ("cx.lead@northwind.example", "demo-cxlead")
DEMO_ADMIN = ("admin@northwind.example", "demo-admin")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def sign_in(app: object, email: str, password: str) -> TestClient:
    client = TestClient(app)  # type: ignore[arg-type]
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    done = client.post("/login", data={"email": email, "password": password,
                                       "csrf_token": token.group(1)})  # fmt: skip
    assert done.status_code == 200 and "/login" not in str(done.url), f"cannot sign in as {email}"
    return client


def pages(engine: sa.Engine) -> list[str]:
    """Every staff page, with the ids of a busy customer, a survey and a case from the store."""

    def first(sql: str) -> str | None:
        with engine.connect() as conn:
            row = conn.execute(sa.text(sql)).first()
        return str(row[0]) if row else None

    owned = "SELECT DISTINCT department_key AS k FROM touchpoints WHERE department_key IS NOT NULL"
    departments = first(f"SELECT string_agg(k, ',') FROM ({owned} ORDER BY 1) d")
    customer = first("SELECT customer_id FROM interactions WHERE customer_id IS NOT NULL "
                     "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")  # fmt: skip
    survey = first("SELECT survey_key FROM responses WHERE survey_key IN (SELECT key FROM surveys) "
                   "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")  # fmt: skip
    case = first("SELECT id FROM cases ORDER BY opened_at DESC LIMIT 1")
    out = ["/", "/departments"]
    out += [f"/departments/{d}" for d in (departments or "").split(",") if d]
    out += ["/feedback", "/feedback?band=detractor", "/feedback?q=late", "/customers"]
    # The lookup by identifier redirects to the profile: both are timed together.
    out += [f"/customers/{customer}", f"/customers?q={customer}"] if customer else []
    out += ["/org", "/surveys"] + ([f"/surveys/{survey}"] if survey else [])
    out += ["/cases", "/cases/root-causes", "/initiatives", "/rules"]
    out += [f"/cases/{case}"] if case else []
    return [*out, "/settings"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2,000 customers, 3 runs")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--store", type=Path, help="a loaded DuckDB store (the demo company)")
    args = parser.parse_args()
    if args.quick:
        args.customers, args.runs = 2_000, 3
    with tempfile.TemporaryDirectory() as tmp:
        if args.store:
            if not args.store.exists():
                parser.error(f"--store: {args.store} does not exist")
            engine = create_engine(f"duckdb:///{args.store.resolve()}")
            upgrade(engine)
            lead, admin = DEMO_LEAD, DEMO_ADMIN
            with engine.connect() as conn:
                counts = [conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                          for t in ("customers", "responses", "interactions")]  # fmt: skip
            print(f"store: {args.store}: {counts[0]:,} customers, {counts[1]:,} responses, "
                  f"{counts[2]:,} interactions")  # fmt: skip
        else:
            engine = create_engine(f"duckdb:///{Path(tmp) / 'cxm.duckdb'}")
            upgrade(engine)
            t0 = time.perf_counter()
            rows = synthetic.write(engine, args.customers, args.months)
            print(f"store: synthetic, {args.customers:,} customers x {args.months} months, "
                  f"{rows['responses']:,} responses, {rows['interactions']:,} interactions "
                  f"({time.perf_counter() - t0:.1f} s to build)")  # fmt: skip
            lead, admin = (
                ("lead@example.com", "benchmark-pass"),
                ("admin@example.com", "bench-pass"),
            )
            with engine.begin() as conn:
                auth.create_user(conn, lead[0], "cx_lead", password=lead[1])
                auth.create_user(conn, admin[0], "admin", password=admin[1])
        settings = load_settings(data_dir=Path(tmp), database_url=str(engine.url))
        app = create_app(settings, engine=engine, run_worker=False)
        with TestClient(app):  # runs the app's startup and shutdown
            clients = {"lead": sign_in(app, *lead), "admin": sign_in(app, *admin)}
            print(f"{'page':34} {'cold p50':>9} {'cold p95':>9} {'p95/budget':>11} "
                  f"{'warm p50':>9} {'warm p95':>9}")  # fmt: skip
            worst = 0.0
            for page in pages(engine):
                client = clients["admin" if page.startswith("/settings") else "lead"]
                figures = []
                for cold in (True, False):
                    times = []
                    for _ in range(args.runs + 1):
                        if cold:
                            app.state.frame_cache = None
                        t = time.perf_counter()
                        response = client.get(page)
                        times.append((time.perf_counter() - t) * 1000)
                        assert response.status_code == 200, (page, response.status_code)
                    times = times[1:]  # the first request warms connections and plans
                    figures.append((statistics.median(times), percentile(times, 0.95)))
                (c50, c95), (w50, w95) = figures
                worst = max(worst, c95)
                print(f"{page[:34]:34} {c50:9.0f} {c95:9.0f} {c95 / BUDGET_MS:10.2f}x "
                      f"{w50:9.0f} {w95:9.0f}")  # fmt: skip
            print(f"slowest page, cold p95: {worst:.0f} ms ({worst / BUDGET_MS:.2f}x the budget)")
        # Baseline: the overview's metric queries alone, one after another, without the page.
        metrics = load()
        with reading(engine) as backend:
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                for name in ("nps", "csat", "ces"):
                    compute(backend, name, metrics=metrics)
                    compute(backend, name, ["department"], metrics=metrics)
                compute(backend, "nps", ["month"], metrics=metrics)
                compute(backend, "csat", ["month"], metrics=metrics)
                compute(backend, "csat", ["department", "month"], compare="previous",
                        metrics=metrics)  # fmt: skip
                compute(backend, "response_rate", metrics=metrics)
                times.append((time.perf_counter() - t) * 1000)
        p50, p95 = statistics.median(times), percentile(times, 0.95)
        print(f"baseline: the overview's 10 metric queries one after another: p50 {p50:.0f} ms, "
              f"p95 {p95:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()

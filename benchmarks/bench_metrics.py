"""NPS and CSAT by department x month: the metrics layer against hand-written SQL, and Spark.

Run: .venv/bin/python benchmarks/bench_metrics.py [--sizes 10000,100000,1000000,10000000]
                                                 [--runs R] [--no-spark]

For each size (survey responses; synthetic facts from ``cxm.metrics.synthetic``, 12 months) it
prints p50/p95 milliseconds (each side timed call by call in turn with its baseline) of:
- cxm: ``compute(backend, "nps", by=department,month)`` and the same for CSAT, with intervals,
  targets and flags, on one open DuckDB backend (as the server's reader pool and the API use),
  as compute answers them (from the dashboards' rollup, ``cxm.metrics.rollup``);
- plain: the same with the rollup off (``rollup.plain()``): the Ibis query over every response;
- floor: the same two aggregations as one hand-written DuckDB SQL statement each, on the same
  connection, with no Python around them (the engine's own time); and the same statements
  prepared once and run by EXECUTE, as compute runs its own on DuckDB (printed with the CPU);
- ratios: cxm p50 / floor p50 and plain p50 / floor p50 (the goal: at most 1.3x at every size),
  and the CPU time of cxm and of the floor (p50, every thread of the process: what each costs
  on a machine too loaded for wall times to mean much).
Then, per size, the dashboards' company-wide queries (the overview's headline, by department,
by month and quarter, CSAT by department x month against the previous month), each timed
alone, as the dashboards ask them (definitions and targets read once per round): p50/p95
over all of them from the rollup and by the plain query (the goal: p95 at most 100 ms at 1M
responses), and the same headline question read right after each batch of 20 new responses
(the rollup brought in step first).
With ``--postgres URL``, the same two metrics at the smallest size on PostgreSQL against the
same hand-written SQL, with and without the statements kept per database.
Then the same two metrics on Spark (local[*]) over the Parquet lake of the smallest size, as
``cxm metrics --engine spark --lake DIR`` computes them. The default sizes run in well under a
minute; ``--sizes`` up to 10,000,000 takes a few minutes and several GB of memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cxm.metrics import compute, load, rollup, synthetic
from cxm.metrics.export import export_parquet, spark_backend, spark_session
from cxm.metrics.service import read_targets
from cxm.store import create_engine, upgrade
from cxm.store.analytics import analytics
from cxm.surveys.facts import responses_table

BY = ["department", "month"]
MONTHS = 12

# What a person writes by hand for the same two figures: customers' completed answers,
# joined to the touchpoint's owning department, counted per department and month.
FLOOR_NPS = """
SELECT t.department_key, date_trunc('month', r.submitted_at) AS month, count(r.nps) AS n,
       sum(CASE WHEN r.nps >= 9 THEN 1 ELSE 0 END) AS promoters,
       sum(CASE WHEN r.nps BETWEEN 7 AND 8 THEN 1 ELSE 0 END) AS passives,
       sum(CASE WHEN r.nps <= 6 THEN 1 ELSE 0 END) AS detractors
FROM responses r LEFT JOIN touchpoints t ON r.touchpoint_key = t.key
WHERE r.respondent_kind = 'customer' AND r.completed AND r.nps IS NOT NULL
  AND r.submitted_at IS NOT NULL
GROUP BY 1, 2
"""
FLOOR_CSAT = """
SELECT t.department_key, date_trunc('month', r.submitted_at) AS month, count(*) AS n,
       sum(CASE WHEN r.csat >= 4 THEN 1 ELSE 0 END) AS x
FROM responses r LEFT JOIN touchpoints t ON r.touchpoint_key = t.key
WHERE r.respondent_kind = 'customer' AND r.completed AND r.csat IS NOT NULL
  AND r.submitted_at IS NOT NULL
GROUP BY 1, 2
"""


# The overview's company-wide metric queries (cxm.web.dashboards.overview): name, by, options.
DASHBOARD: list[tuple[str, list[str], dict[str, Any]]] = [
    *((m, [], {}) for m in ("nps", "csat", "ces")),
    *((m, ["department"], {}) for m in ("nps", "csat", "ces")),
    ("nps", ["month"], {}), ("csat", ["month"], {}),
    ("nps", ["quarter"], {}), ("csat", ["quarter"], {}),
    ("csat", ["department", "month"], {"compare": "previous"}),
]  # fmt: skip


def _p(times: list[float]) -> tuple[float, float]:
    times = sorted(times)
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))]


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """(p50, p95) milliseconds of ``fn`` over ``runs`` calls after one warm-up call."""
    fn()  # warm-up (connection, plan caches)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return _p(times)


def together(fns: list[Callable[[], object]], runs: int) -> list[tuple[float, float]]:
    """(p50, p95) milliseconds of each of ``fns``, called in turn ``runs`` times after one
    warm-up round: one after the other, call by call, so that each sees the machine's load
    of the same moment (on a shared machine the load moves within seconds)."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, out in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1000)
    return [_p(t) for t in times]


def cpu(fn: Callable[[], object], runs: int) -> float:
    """p50 CPU milliseconds (the process, every thread) of ``fn`` over ``runs`` calls: on a
    loaded machine, what each side costs rather than how long it waited for a core."""
    fn()
    times = []
    for _ in range(runs):
        t0 = time.process_time()
        fn()
        times.append((time.process_time() - t0) * 1000)
    return statistics.median(times)


def dashboard(backend: Any, runs: int) -> tuple[float, float]:
    """(p50, p95) ms over every dashboard query, each timed alone, ``runs`` rounds; as the
    dashboards ask them (cxm.web.board): definitions and targets read once for all."""
    times = []
    metrics = load()
    for r in range(runs + 1):
        targets = read_targets(backend)
        for name, by, kw in DASHBOARD:
            t0 = time.perf_counter()
            compute(backend, name, by, metrics=metrics, targets=targets, **kw)
            if r:  # the first round warms plans (and builds the rollup)
                times.append((time.perf_counter() - t0) * 1000)
    return _p(times)


def after_writes(eng: Any, backend: Any, runs: int) -> tuple[float, float]:
    """(p50, p95) ms of NPS by department x month read right after 20 new responses."""
    times = []
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for r in range(runs):
        rows = [{"id": f"new-{r}-{i}", "survey_key": "relationship", "survey_version": 1,
                 "respondent_kind": "customer", "touchpoint_key": synthetic.TOUCHPOINTS[i % 6][0],
                 "started_at": now, "submitted_at": now, "completed": True, "nps": i % 11,
                 "csat": 1 + i % 5, "source": "web"} for i in range(20)]  # fmt: skip
        now += dt.timedelta(minutes=1)
        with eng.begin() as conn:
            conn.execute(responses_table.insert(), rows)
        t0 = time.perf_counter()
        compute(backend, "nps", BY)
        times.append((time.perf_counter() - t0) * 1000)
    return _p(times)


def one_size(tmp: Path, responses: int, runs: int, lake: Path | None) -> dict[str, Any]:
    """Build a store of about ``responses`` responses, time cxm and the floor on it."""
    customers = max(10, responses * 2 // MONTHS)
    eng = create_engine(f"duckdb:///{tmp / f'cxm-{responses}.duckdb'}")
    upgrade(eng)
    t0 = time.perf_counter()
    rows = synthetic.write(eng, customers, MONTHS)
    loaded = time.perf_counter() - t0
    backend = analytics(eng)
    con: Any = backend.con  # the DuckDB connection behind the Ibis backend

    def cxm() -> None:
        compute(backend, "nps", by=BY)
        compute(backend, "csat", by=BY)

    def plain() -> None:
        with rollup.plain():
            cxm()

    def floor() -> None:
        con.sql(FLOOR_NPS).fetchall()
        con.sql(FLOOR_CSAT).fetchall()

    # The same hand-written SQL prepared once, as compute runs its own statements on DuckDB.
    con.execute(f"PREPARE floor_nps AS {FLOOR_NPS}")
    con.execute(f"PREPARE floor_csat AS {FLOOR_CSAT}")

    def prepared() -> None:
        con.execute("EXECUTE floor_nps").fetchall()
        con.execute("EXECUTE floor_csat").fetchall()

    # Side by side, call by call, so all see the same machine load.
    (c50, c95), (f50, f95), (r50, _) = together([cxm, floor, prepared], runs)
    (p50, p95), (f50b, f95b) = together([plain, floor], runs)
    (c50b, c95b), (f50c, f95c) = together([cxm, floor], runs)
    cpus = (cpu(cxm, runs), cpu(floor, runs), cpu(cxm, runs), cpu(floor, runs))
    board = dashboard(backend, max(2, runs // 3))
    with rollup.plain():
        board_plain = dashboard(backend, max(2, runs // 3))
    written = after_writes(eng, backend, runs)
    backend.disconnect()
    exports: tuple[float, float] | None = None
    if lake is not None:
        # The whole lake, then a re-export with nothing changed: only the manifest's check.
        t0 = time.perf_counter()
        export_parquet(eng, lake, full=True)
        t1 = time.perf_counter()
        export_parquet(eng, lake)
        exports = (t1 - t0, time.perf_counter() - t1)
    eng.dispose()
    return {"responses": rows["responses"], "loaded": loaded, "cxm": (min(c50, c50b),
            min(c95, c95b)), "plain": (p50, p95), "floor": (min(f50, f50c), min(f95, f95c)),
            "floor_plain": (f50b, f95b), "prepared": r50,
            "exports": exports, "board": board, "board_plain": board_plain,
            "written": written, "cpu": (min(cpus[0], cpus[2]),
            min(cpus[1], cpus[3]))}  # fmt: skip


def on_postgres(url: str, responses: int, runs: int) -> None:
    """The same two metrics on PostgreSQL (a database of its own, dropped after): ``compute``
    as the server runs it (statements kept per database), ``compute`` building and compiling
    every statement each time (the kept statements cleared before each call), and the
    hand-written SQL (the floor, on the same Ibis connection), with ratios and CPU."""
    import secrets

    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    kept = importlib.import_module("cxm.store.analytics")
    admin_url = make_url(url)
    name = f"cxm_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        eng = create_engine(admin_url.set(database=name).render_as_string(hide_password=False))
        upgrade(eng)
        rows = synthetic.write(eng, max(10, responses * 2 // MONTHS), MONTHS)
        backend = analytics(eng)
        con: Any = backend.con  # the psycopg connection

        def cxm() -> None:
            compute(backend, "nps", by=BY)
            compute(backend, "csat", by=BY)

        def uncached() -> None:
            with kept._compiled_lock:
                kept._compiled_by_file.clear()
            cxm()

        def floor() -> None:
            with con.cursor() as cur:
                cur.execute(FLOOR_NPS).fetchall()
                cur.execute(FLOOR_CSAT).fetchall()

        c50, _ = timed(cxm, runs)
        u50, _ = timed(uncached, runs)
        f50, _ = timed(floor, runs)
        cc, uc, fc = cpu(cxm, runs), cpu(uncached, runs), cpu(floor, runs)
        print(f"PostgreSQL, {rows['responses']:,} responses: compute p50 {c50:.1f} ms "
              f"({c50 / f50:.2f}x the hand-written SQL, {f50:.1f} ms); building and compiling "
              f"each time p50 {u50:.1f} ms ({u50 / f50:.2f}x); CPU of this process p50 "
              f"{cc:.1f} / {uc:.1f} / {fc:.1f} ms")  # fmt: skip
        backend.disconnect()
        eng.dispose()
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="10000,100000",
                    help="comma-separated numbers of responses")  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="10,000 responses only")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--postgres", metavar="URL", default=None,
                    help="also time the smallest size on PostgreSQL: a server URL whose "
                         "database the benchmark may create and drop others on, e.g. "
                         "postgresql+psycopg://postgres@127.0.0.1:5432/test")  # fmt: skip
    args = ap.parse_args()
    sizes = [10_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    print(f"{'responses':>10} | {'cxm p50':>9} {'p95':>9} | {'plain p50':>9} {'p95':>9} | "
          f"{'SQL p50':>9} {'p95':>9} | cxm/SQL plain/SQL")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        lake = tmp / "lake"
        results = []
        for i, size in enumerate(sizes):
            runs = args.runs or (30 if size <= 100_000 else 15 if size <= 1_000_000 else 5)
            r = one_size(tmp, size, runs, lake if i == 0 and not args.no_spark else None)
            results.append(r)
            (c50, c95), (p50, p95), (f50, f95) = r["cxm"], r["plain"], r["floor"]
            print(f"{r['responses']:>10,} | {c50:7.1f}ms {c95:7.1f}ms | {p50:7.1f}ms "
                  f"{p95:7.1f}ms | {f50:7.1f}ms {f95:7.1f}ms | {c50 / f50:6.2f}x "
                  f"{p50 / r['floor_plain'][0]:8.2f}x"
                  f"   (loaded in {r['loaded']:.1f}s)")  # fmt: skip
        worst = max(r["cxm"][0] / r["floor"][0] for r in results)
        worst_plain = max(r["plain"][0] / r["floor_plain"][0] for r in results)
        print(f"worst ratio cxm/SQL p50: {worst:.2f}x, plain query/SQL: {worst_plain:.2f}x "
              "(goal: at most 1.30x)")  # fmt: skip
        for r in results:
            mine, theirs = r["cpu"]
            print(f"{r['responses']:>10,} | CPU p50 cxm {mine:6.1f}ms, SQL {theirs:6.1f}ms: "
                  f"{mine / theirs:.2f}x | the SQL prepared once p50 {r['prepared']:6.1f}ms: "
                  f"cxm {r['cxm'][0] / r['prepared']:.2f}x")  # fmt: skip
        print(f"dashboards' {len(DASHBOARD)} company-wide queries, each alone "
              "(goal: p95 at most 100 ms at 1M responses):")  # fmt: skip
        print(f"(stores under {rollup.MIN_RESPONSES:,} responses are answered by the plain "
              "query: there 'rollup' and 'plain' time the same thing)")  # fmt: skip
        for r in results:
            (b50, b95), (q50, q95), (w50, w95) = r["board"], r["board_plain"], r["written"]
            print(f"{r['responses']:>10,} | rollup p50 {b50:6.1f}ms p95 {b95:6.1f}ms | plain "
                  f"query p50 {q50:6.1f}ms p95 {q95:6.1f}ms | p95 {q95 / b95:5.1f}x faster | "
                  f"after 20 new responses p50 {w50:6.1f}ms p95 {w95:6.1f}ms")  # fmt: skip
        if args.postgres:
            on_postgres(args.postgres, sizes[0], args.runs or 15)
        if args.no_spark:
            return
        full, again = results[0]["exports"]
        print(f"cxm export --parquet ({results[0]['responses']:,} responses): full {full:.2f} s, "
              f"re-export with no change {again:.2f} s ({again / full:.2f}x)")  # fmt: skip
        session = spark_session("local[*]")
        session.sparkContext.setLogLevel("ERROR")
        sb = spark_backend(lake, session=session)

        def spark() -> None:
            compute(sb, "nps", by=BY)
            compute(sb, "csat", by=BY)

        s50, s95 = timed(spark, 3)
        d50 = results[0]["cxm"][0]
        print(f"spark local[*] over the Parquet lake ({results[0]['responses']:,} responses): "
              f"p50 {s50:.1f} ms, p95 {s95:.1f} ms; {s50 / d50:.1f}x DuckDB")  # fmt: skip
        session.stop()


if __name__ == "__main__":
    main()

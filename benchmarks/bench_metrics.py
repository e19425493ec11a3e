"""NPS and CSAT by department x month: the metrics layer against hand-written SQL, and Spark.

Run: .venv/bin/python benchmarks/bench_metrics.py [--sizes 10000,100000,1000000,10000000]
                                                 [--runs R] [--no-spark]

For each size (survey responses; synthetic facts from ``cxm.metrics.synthetic``, 12 months) it
prints p50/p95 milliseconds of:
- cxm: ``compute(backend, "nps", by=department,month)`` and the same for CSAT, with intervals,
  targets and flags, on one open DuckDB backend (as the server's reader pool and the API use);
- floor: the same two aggregations as one hand-written DuckDB SQL statement each, on the same
  connection, with no Python around them (the engine's own time);
- ratio: cxm p50 / floor p50 (the goal: at most 1.3x at every size).
Then the same two metrics on Spark (local[*]) over the Parquet lake of the smallest size, as
``cxm metrics --engine spark --lake DIR`` computes them. The default sizes run in well under a
minute; ``--sizes`` up to 10,000,000 takes a few minutes and several GB of memory.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cxm.metrics import compute, synthetic
from cxm.metrics.export import export_parquet, spark_backend, spark_session
from cxm.store import create_engine, upgrade
from cxm.store.analytics import analytics

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


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """(p50, p95) milliseconds of ``fn`` over ``runs`` calls after one warm-up call."""
    fn()  # warm-up (connection, plan caches)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))]


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

    def floor() -> None:
        con.sql(FLOOR_NPS).fetchall()
        con.sql(FLOOR_CSAT).fetchall()

    # Side by side, alternating, so both see the same machine load.
    c50, c95 = timed(cxm, runs)
    f50, f95 = timed(floor, runs)
    c50b, c95b = timed(cxm, runs)
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
            min(c95, c95b)), "floor": (f50, f95), "exports": exports}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="10000,100000",
                    help="comma-separated numbers of responses")  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="10,000 responses only")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--no-spark", action="store_true")
    args = ap.parse_args()
    sizes = [10_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    print(f"{'responses':>10} | {'cxm p50':>9} {'p95':>9} | {'SQL p50':>9} {'p95':>9} | ratio")
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        lake = tmp / "lake"
        results = []
        for i, size in enumerate(sizes):
            runs = args.runs or (15 if size <= 1_000_000 else 5)
            r = one_size(tmp, size, runs, lake if i == 0 and not args.no_spark else None)
            results.append(r)
            (c50, c95), (f50, f95) = r["cxm"], r["floor"]
            print(f"{r['responses']:>10,} | {c50:7.1f}ms {c95:7.1f}ms | {f50:7.1f}ms "
                  f"{f95:7.1f}ms | {c50 / f50:.2f}x   (loaded in {r['loaded']:.1f}s)")  # fmt: skip
        worst = max(r["cxm"][0] / r["floor"][0] for r in results)
        print(f"worst ratio cxm/SQL p50: {worst:.2f}x (goal: at most 1.30x)")
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

"""NPS and CSAT by department x month: DuckDB (Ibis, the metrics layer) vs pandas, and Spark.

Run: .venv/bin/python benchmarks/bench_metrics.py [--quick] [--customers N] [--months M]
Prints p50/p95 milliseconds for each engine and the pandas/DuckDB ratio. The full run uses a
synthetic fact set (cxm.metrics.synthetic) of 100,000 customers x 12 months.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from cxm.metrics import compute, synthetic
from cxm.metrics.export import export_parquet, spark_backend, spark_session
from cxm.store import create_engine, metadata

BY = ["department", "month"]


def _timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    fn()  # warm-up (connection, plan caches)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))]


def _pandas(responses: pd.DataFrame, touchpoints: pd.DataFrame) -> pd.DataFrame:
    """The same two metrics in pandas: filter, join ownership, group, count."""
    r = responses[(responses.respondent_kind == "customer") & responses.completed]
    r = r.merge(touchpoints[["key", "department_key"]], left_on="touchpoint_key",
                right_on="key", how="left")  # fmt: skip
    r["month"] = r.submitted_at.dt.to_period("M")
    nps = (
        r[r.nps.notna()]
        .groupby(["department_key", "month"])
        .nps.agg(n="count", promoters=lambda s: (s >= 9).sum(), detractors=lambda s: (s <= 6).sum())
    )
    nps["value"] = (nps.promoters - nps.detractors) / nps.n * 100
    c = r[r.csat.notna()].groupby(["department_key", "month"]).csat
    csat = c.apply(lambda s: (s >= 4).mean() * 100)
    return nps.join(csat.rename("csat"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes, runs in seconds")
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--no-spark", action="store_true")
    args = ap.parse_args()
    customers, months = (2_000, 3) if args.quick else (args.customers, args.months)
    runs = args.runs or (5 if args.quick else 15)
    with tempfile.TemporaryDirectory() as tmp:
        eng = create_engine(f"duckdb:///{Path(tmp) / 'cxm.duckdb'}")
        # Only the tables this workload reads: the benchmark does not depend on other domains.
        import cxm.customers.tables
        import cxm.interactions.tables
        import cxm.metrics.tables
        import cxm.org.tables
        import cxm.surveys.tables  # noqa: F401

        names = ["departments", "teams", "touchpoints", "customers", "customer_traits",
                 "responses", "interactions", "metric_targets"]  # fmt: skip
        metadata.create_all(eng, tables=[metadata.tables[n] for n in names])
        t0 = time.perf_counter()
        synthetic.write(eng, customers, months)
        source = "synthetic facts"
        with eng.connect() as conn:
            # Straight from DuckDB as pandas: the baseline starts with the data in memory.
            raw = conn.connection.driver_connection
            assert raw is not None
            responses = raw.execute("SELECT * FROM responses").df()
            touchpoints = raw.execute("SELECT * FROM touchpoints").df()
        print(f"{source}: {customers} customers x {months} months, {len(responses)} responses "
              f"(loaded in {time.perf_counter() - t0:.1f}s)")  # fmt: skip

        def duck() -> None:
            compute(eng, "nps", by=BY)
            compute(eng, "csat", by=BY)

        d50, d95 = _timed(duck, runs)
        p50, p95 = _timed(lambda: _pandas(responses, touchpoints), runs)
        print(f"duckdb (ibis, metrics layer): p50 {d50:8.1f} ms   p95 {d95:8.1f} ms")
        print(f"pandas (in memory)          : p50 {p50:8.1f} ms   p95 {p95:8.1f} ms")
        print(f"ratio pandas/duckdb p50     : {p50 / d50:.2f}x")
        if args.no_spark:
            return
        lake = Path(tmp) / "lake"
        export_parquet(eng, lake)
        session = spark_session("local[*]")
        session.sparkContext.setLogLevel("ERROR")
        sb = spark_backend(lake, session=session)

        def spark() -> None:
            compute(sb, "nps", by=BY)
            compute(sb, "csat", by=BY)

        s50, s95 = _timed(spark, max(3, runs // 3))
        print(f"spark local[*] over Parquet : p50 {s50:8.1f} ms   p95 {s95:8.1f} ms")
        print(f"ratio spark/duckdb p50      : {s50 / d50:.2f}x")
        session.stop()


if __name__ == "__main__":
    main()

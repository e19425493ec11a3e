"""A partner's NPS: cxm (the metric narrowed by the ``partner`` org dimension, Ibis on DuckDB)
vs pandas on the same answers already in memory.

Run: .venv/bin/python benchmarks/bench_partners.py [--responses N] [--runs R]
Builds a store with 20 touchpoints, three partners running two touchpoints each, and N NPS
answers spread over the touchpoints, then times ``cxm.metrics.compute("nps", filters={"partner":
[...]})`` (what the metric API runs for a partner user and the scorecard runs for a partner)
against pandas (keep the partner's touchpoints, % promoters - % detractors), checks both agree,
and prints p50/p95 ms and the ratio. Each cxm call opens its own connection, as the metric API
does; the statement compiled by an earlier connection to the same file is reused. The same
calls with that statement compiled again for every call (as before it was kept per file) are
timed side by side.
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

import numpy as np
import pandas as pd

from cxm.metrics import service as metrics
from cxm.org import service as org
from cxm.store import create_engine, upgrade
from cxm.store.bulk import insert_rows
from cxm.surveys.facts import responses_table
from cxm.yamldoc import parse

# The module (``cxm.store`` exports its ``analytics`` function under the same name).
store_analytics = importlib.import_module("cxm.store.analytics")
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
TOUCHPOINTS = [f"tp{i:02d}" for i in range(20)]
RUN_BY = {"tp00": "swiftpost", "tp01": "swiftpost", "tp02": "fitters", "tp03": "fitters",
          "tp04": "resell", "tp05": "resell"}  # fmt: skip


def _org() -> str:
    lines = ["partners:"]
    for key, kind in (("swiftpost", "courier"), ("fitters", "installer"), ("resell", "reseller")):
        lines.append(f"  - {{key: {key}, name: {key}, kind: {kind}}}")
    lines.append("touchpoints:")
    for tp in TOUCHPOINTS:
        partner = f", partner: {RUN_BY[tp]}" if tp in RUN_BY else ""
        lines.append(f"  - {{key: {tp}, name: {tp}, channel: web, stage: use, "
                     f"owner: {{department: service}}{partner}}}")  # fmt: skip
    return "\n".join(lines) + "\n"


def _timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({
        "touchpoint": rng.choice(TOUCHPOINTS, args.responses),
        "nps": rng.integers(0, 11, args.responses),
        "minutes": rng.integers(0, 60 * 24 * 180, args.responses),
    })  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"duckdb:///{Path(tmp) / 'cxm.duckdb'}")
        upgrade(engine)
        with engine.begin() as conn:
            org.seed_defaults(conn)
            org.apply_org(conn, parse(_org()))
            rows = []
            for i, r in enumerate(frame.itertuples(index=False)):
                at = START + dt.timedelta(minutes=int(r.minutes))
                score = int(r.nps)
                category = "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"
                rows.append({
                    "id": f"r{i}", "survey_key": "relationship_nps", "survey_version": 1,
                    "respondent_kind": "customer", "customer_id": None, "employee_id": None,
                    "invitation_id": None, "trigger_event_id": None,
                    "touchpoint_key": r.touchpoint, "channel": None, "language": "en",
                    "started_at": at, "submitted_at": at, "completed": True, "nps": score,
                    "nps_category": category, "csat": None, "ces": None, "comment": None,
                    "source": "import",
                })  # fmt: skip
            insert_rows(conn, responses_table, rows)

        def ours() -> float:
            df = metrics.compute(engine, "nps", (), filters={"partner": ["swiftpost"]})
            return float(df["value"].iloc[0])

        def compiled_per_call() -> float:
            with store_analytics._compiled_lock:
                store_analytics._compiled_by_file.clear()
            return ours()

        run = [tp for tp, p in RUN_BY.items() if p == "swiftpost"]

        def baseline() -> float:
            scores = frame.loc[frame["touchpoint"].isin(run), "nps"]
            return float(100 * ((scores >= 9).mean() - (scores <= 6).mean()))

        assert abs(ours() - baseline()) < 1e-9, (ours(), baseline())
        p50, p95 = _timed(ours, args.runs)
        c50, c95 = _timed(compiled_per_call, args.runs)
        b50, b95 = _timed(baseline, args.runs)
        engine.dispose()
    print(f"partner NPS over {args.responses:,} answers ({len(run)} of {len(TOUCHPOINTS)} "
          f"touchpoints): value {baseline():.2f}")  # fmt: skip
    print(f"cxm (Ibis on DuckDB, partner filter): p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    print(f"cxm, compiling per call (before):     p50 {c50:.1f} ms, p95 {c95:.1f} ms")
    print(f"pandas in memory:                     p50 {b50:.1f} ms, p95 {b95:.1f} ms")
    print(f"ratio cxm / pandas (p50): {p50 / b50:.1f}x; compiling per call / cxm: {c50 / p50:.1f}x")


if __name__ == "__main__":
    main()

"""Typed and trigger slices: what they cost beside a plain slice, and against pandas.

Run: .venv/bin/python benchmarks/bench_slices.py [--customers N] [--months M] [--runs R]
On the demo company (default 400 customers x 3 months, under a minute with generation), in
one process on one DuckDB store, p50/p95 milliseconds of:

* ``csat by touchpoint``: the baseline slice (a column of the fact);
* ``csat by trait:tenure_months`` with bins: a typed trait joined, cast and cut;
* ``csat by trigger:late_days`` with bins: the triggering event joined, its JSON property read,
  typed and cut; and the same slice in pandas over the same rows read into memory;
* theme impact on NPS and on CSAT (the metric's rows, tags joined, two aggregations).

and the ratios typed/trigger slice over the baseline. One Ibis backend stays open, as the
server's readers keep theirs (compiled queries are kept per backend; every run executes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from cxm.demo.generator import generate
from cxm.demo.load import load
from cxm.metrics import compute
from cxm.metrics.definitions import load as load_metrics
from cxm.store import create_engine, upgrade
from cxm.store.analytics import analytics, reading
from cxm.text import analytics as text_analytics
from cxm.text import jobs, taxonomy


def _timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))]


def _pandas_trigger(responses: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """CSAT % top-two-box by the late_days of each answer's triggering event, binned."""
    r = responses[(responses.respondent_kind == "customer") & responses.completed
                  & responses.csat.notna()]  # fmt: skip

    def late_days(p: object) -> object:
        doc = json.loads(p) if isinstance(p, str) else p
        return doc.get("late_days") if isinstance(doc, dict) else None

    late = events.set_index("event_id").properties.map(late_days)
    r = r.assign(late=r.trigger_event_id.map(late))
    cut = pd.cut(pd.to_numeric(r.late), [-float("inf"), 1, 3, 7, float("inf")], right=False)
    return r.groupby(cut, observed=True).csat.agg(n="size", value=lambda s: (s >= 4).mean() * 100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--customers", type=int, default=400)
    ap.add_argument("--months", type=int, default=3)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        generate(root / "demo", customers=args.customers, months=args.months)
        engine = create_engine(f"duckdb:///{root / 'cxm.duckdb'}")
        upgrade(engine)
        load(engine, root / "demo")
        with engine.begin() as conn:
            taxonomy.apply(conn, taxonomy.starter_doc())
        jobs.annotate_bulk(engine, semantic=False)
        print(f"demo: {args.customers} customers x {args.months} months, "
              f"loaded in {time.perf_counter() - t0:.1f} s")  # fmt: skip
        metrics = load_metrics()
        with engine.connect() as conn:
            themes = taxonomy.list_themes(conn, "starter")
        with reading(engine) as backend:
            responses = backend.table("responses").to_pandas()
            events = backend.table("interactions").select("event_id", "properties").to_pandas()

        # One backend kept open, as the server's readers keep theirs.
        backend = analytics(engine)

        def slice_(by: list[str], bins: dict[str, list[str]] | None = None) -> Callable[[], object]:
            return lambda: compute(backend, "csat", by=by, bins=bins, metrics=metrics)

        cases: dict[str, Callable[[], object]] = {
            "csat by touchpoint (baseline)": slice_(["touchpoint"]),
            "csat by trait:tenure_months, bins 0,6,12,24": slice_(
                ["trait:tenure_months"], {"trait:tenure_months": ["0", "6", "12", "24"]}
            ),
            "csat by trigger:late_days, bins 1,3,7": slice_(
                ["trigger:late_days"], {"trigger:late_days": ["1", "3", "7"]}
            ),
            "  the same in pandas (rows in memory)": lambda: _pandas_trigger(responses, events),
            "theme impact on NPS": lambda: text_analytics.theme_impact(backend, themes),
            "theme impact on csat": lambda: text_analytics.theme_impact(
                backend, themes, outcome=text_analytics.outcome(metrics, "csat")
            ),
        }
        results = {name: _timed(fn, args.runs) for name, fn in cases.items()}
        for name, (p50, p95) in results.items():
            print(f"{name:48s} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms")
        base = results["csat by touchpoint (baseline)"][0]
        for name in list(results)[1:3]:
            print(f"ratio {name} / baseline: {results[name][0] / base:.2f}")
        backend.disconnect()
        engine.dispose()


if __name__ == "__main__":
    main()

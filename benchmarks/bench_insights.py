"""Insights on the demo company: attribution and drivers, training, scoring; each timed beside
a plain pandas + statsmodels / scikit-learn run of the same model in the same process.

Run: .venv/bin/python benchmarks/bench_insights.py [--customers N] [--months M]
        [--score-rows R] [--data DIR]
Default: 2,000 customers x 6 months (about a minute with the generation). The cxm side computes
the features with Ibis on DuckDB; the baseline reads the tables into pandas and computes the same
features there (the five demo signals written as pandas filters), then fits the same models.
Scoring replicates the scoring feature table to ``--score-rows`` rows (default 1,000,000),
scores them all, then stores the scores in a transaction it rolls back. ``--data DIR`` keeps
the generated, loaded company in DIR and reuses it on the next run (loading 100,000 customers
takes longer than the benchmark itself); the first run prints each loading step's wall and CPU
seconds.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm

from cxm.demo.generator import generate
from cxm.demo.load import load
from cxm.insights import drivers, predict, service
from cxm.store import create_engine, upgrade
from cxm.store.analytics import reading

WINDOW = 180


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _clocked(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and CPU seconds (this process, every thread: DuckDB's too) of ``fn``, and its
    result; on a shared machine the CPU time is what the step costs, the wall time adds the
    queue."""
    c0 = time.process_time()
    wall, out = _timed(fn)
    return wall, time.process_time() - c0, out


def _pandas_signals(log: pd.DataFrame) -> pd.DataFrame:
    """The five shipped signals as pandas filters: ``(customer_id, event_time, signal)``."""
    props = log["properties"].fillna("{}").map(json.loads)
    wait = props.map(lambda p: p.get("wait_minutes"))
    wait = pd.to_numeric(wait, errors="coerce")
    repeat = props.map(lambda p: p.get("repeat_of") is not None)
    support = log.touchpoint_key.isin(["support_phone", "support_chat"])
    rules = {
        "late_delivery": (log.name == "delivery_late") & (log.touchpoint_key == "delivery"),
        "damaged_item": (log.name == "item_damaged") & (log.touchpoint_key == "delivery"),
        "billing_error": (log.name == "billing_error") & (log.touchpoint_key == "invoice"),
        "repeat_contact": (log.name == "ticket_opened") & support & repeat,
        "long_wait": (log.name == "ticket_closed") & support & (wait > 20),
    }
    parts = [log.loc[m & log.customer_id.notna(), ["customer_id", "event_time"]].assign(signal=k)
             for k, m in rules.items()]  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def _met(points: pd.DataFrame, events: pd.DataFrame, days: int) -> pd.DataFrame:
    """0/1 per signal for each point ``(key, customer_id, cutoff)`` in the window before it."""
    j = points.merge(events, on="customer_id")
    j = j[(j.event_time < j.cutoff) & (j.event_time >= j.cutoff - pd.Timedelta(days=days))]
    flags = pd.crosstab(j.key, j.signal).clip(upper=1)
    out = points.set_index("key").join(flags).fillna(0)
    for k in ("late_delivery", "damaged_item", "billing_error", "repeat_contact", "long_wait"):
        if k not in out:
            out[k] = 0
    return out.reset_index()


def _baseline_attribution(db: Path) -> tuple[pd.DataFrame, Any]:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    log = con.sql("select customer_id, name, touchpoint_key, event_time, "
                  "properties::varchar as properties from interactions").df()  # fmt: skip
    r = con.sql("select id as key, customer_id, submitted_at as cutoff, nps from responses "
                "where nps is not null and customer_id is not null "
                "and respondent_kind = 'customer'").df()  # fmt: skip
    traits = con.sql("select customer_id, name, value from customer_traits").df()
    con.close()
    wide = traits.pivot_table(index="customer_id", columns="name", values="value",
                              aggfunc="max")[["segment", "tenure_months"]]  # fmt: skip
    f = _met(r, _pandas_signals(log), WINDOW).merge(wide, left_on="customer_id", right_index=True)
    keys = ["late_delivery", "damaged_item", "billing_error", "repeat_contact", "long_wait"]
    x = f[keys].astype(float)
    x = pd.concat([x, pd.get_dummies(f.segment, prefix="s", drop_first=True, dtype=float)], axis=1)
    x["tenure_months"] = pd.to_numeric(f.tenure_months)
    fit = sm.OLS(f.nps.astype(float), sm.add_constant(x)).fit(cov_type="HC3")
    drivers.relative_weights(f[keys].to_numpy(float), f.nps.to_numpy(float))
    return f, fit


class _Steps:
    """Wall and CPU seconds of each loading step (the loader names each as it starts)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._at: tuple[str, float, float] | None = None

    def start(self, name: str) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        if self._at is not None:
            step, t0, c0 = self._at
            self.lines.append(f"  loading {step:<18} {now - t0:8.1f} s  CPU {cpu - c0:8.1f} s")
        self._at = (name, now, cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--customers", type=int, default=2000)
    ap.add_argument("--months", type=int, default=6)
    ap.add_argument("--score-rows", type=int, default=1_000_000)
    ap.add_argument("--data", type=Path, default=None, help="keep (and reuse) the store here")
    args = ap.parse_args()
    if isinstance(sys.stdout, io.TextIOWrapper):  # a long run's log shows each step as it ends
        sys.stdout.reconfigure(line_buffering=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or Path(tmp)
        db = root / "cxm.duckdb"
        if (root / "loaded").exists():
            engine = create_engine(f"duckdb:///{db}")
            print(f"demo company in {root} (generated and loaded before)")
        else:
            t_gen = 0.0
            if not (root / "generated").exists():  # the files of an earlier, unfinished run
                t_gen, _ = _timed(lambda: generate(root / "files", customers=args.customers,
                                                   months=args.months, seed=7))  # fmt: skip
                (root / "generated").touch()
            engine = create_engine(f"duckdb:///{db}")
            upgrade(engine)
            steps = _Steps()
            t_load, _ = _timed(lambda: load(engine, root / "files", progress=steps.start))
            steps.start("")
            (root / "loaded").touch()
            print(f"demo company: {args.customers} customers x {args.months} months; "
                  f"generated in {t_gen:.1f} s, loaded in {t_load:.1f} s")  # fmt: skip
            for line in steps.lines:
                print(line)
        with engine.connect() as conn:
            counted = conn.exec_driver_sql("select count(*) from interactions").scalar()
        print(f"{counted:,} interactions")

        def cxm_attribution() -> Any:
            service.attribution(engine, root, "nps")
            return service.drivers(engine, root, "nps", bootstrap=0)

        t_cxm, cpu_cxm, _ = _clocked(cxm_attribution)
        # The pandas + statsmodels run of the same model (the slowest step) comes last, so
        # a long run cut short still has every cxm figure.
        print(f"attribution + drivers (NPS):  cxm {t_cxm:6.2f} s (CPU {cpu_cxm:.2f} s)")

        with reading(engine) as con:
            t_feat, cpu_feat, sets = _clocked(lambda: service.feature_sets(con, root))
        churn, nps, current, usable = sets
        t_train, cpu_train, ev = _clocked(lambda: predict.evaluate(churn, nps))
        frame = churn.frame
        y = frame.churned.astype(int)

        def plain_train() -> float:
            from sklearn.linear_model import LogisticRegression
            from sklearn.metrics import roc_auc_score

            x = pd.get_dummies(frame[churn.categorical], dtype=float)
            num = frame[churn.numeric].astype(float)
            x = pd.concat([x, (num - num.mean()) / num.std().replace(0, 1)], axis=1)
            tr, te = predict.split(y)
            m = LogisticRegression(max_iter=2000).fit(x.iloc[tr], y.iloc[tr])
            return float(roc_auc_score(y.iloc[te], m.predict_proba(x.iloc[te])[:, 1]))

        t_plain, auc_plain = _timed(plain_train)
        print(f"training (features {t_feat:.2f} s on DuckDB, CPU {cpu_feat:.2f} s): cxm "
              f"{t_train:6.2f} s (CPU {cpu_train:.2f} s)   "
              f"pandas+sklearn {t_plain:6.2f} s   ratio {t_plain / t_train:4.2f}; "
              f"holdout AUC {ev.auc:.3f} (plain {auc_plain:.3f})")  # fmt: skip
        many = _replicate(current, args.score_rows)
        as_of = scores_as_of(engine)
        c0 = time.process_time()
        t_score, scores = _timed(lambda: predict.score(churn, nps, many, usable, as_of))
        cpu_score = time.process_time() - c0

        def plain_score() -> np.ndarray:
            from sklearn.linear_model import LogisticRegression

            def design(f: pd.DataFrame, like: pd.DataFrame | None = None) -> pd.DataFrame:
                x = pd.get_dummies(f[churn.categorical], dtype=float)
                num = frame[churn.numeric].astype(float)  # the training rows' scaling
                cur = f[churn.numeric].astype(float).fillna(num.median())
                x = pd.concat([x, (cur - num.mean()) / num.std().replace(0, 1)], axis=1)
                return x if like is None else x.reindex(columns=like.columns, fill_value=0)

            x = design(frame)
            m = LogisticRegression(max_iter=2000).fit(x, y)
            return np.asarray(m.predict_proba(design(many.frame, x))[:, 1])

        c0 = time.process_time()
        t_plain_score, _ = _timed(plain_score)
        cpu_plain = time.process_time() - c0
        n = len(scores.frame)
        print(f"scoring {n:,} customers (fit + risk + predicted NPS + reasons): cxm "
              f"{t_score:6.2f} s ({n / t_score:,.0f} customers/s)   pandas+sklearn (fit + risk "
              f"only) {t_plain_score:6.2f} s   ratio {t_plain_score / t_score:4.2f}; "
              f"CPU time (this process, all threads): cxm {cpu_score:.2f} s, plain "
              f"{cpu_plain:.2f} s")  # fmt: skip
        # Storing them as `cxm insights predict` does (one bulk insert), in a transaction
        # rolled back so the kept company's own predictions stay.
        with engine.connect() as conn:
            tx = conn.begin()
            c0 = time.process_time()
            t_store, written = _timed(lambda: service.store_scores(conn, scores))
            cpu_store = time.process_time() - c0
            tx.rollback()
        print(f"storing {written:,} scores (replace customer_predictions, one bulk insert): "
              f"{t_store:6.2f} s, CPU {cpu_store:.2f} s; scored and stored: "
              f"{t_score + t_store:6.2f} s, CPU {cpu_score + cpu_store:.2f} s")  # fmt: skip
        engine.dispose()
        t_pd, cpu_pd, _ = _clocked(lambda: _baseline_attribution(db))
        print(f"attribution + drivers (NPS):  cxm {t_cxm:6.2f} s (CPU {cpu_cxm:.2f} s)   "
              f"pandas+statsmodels {t_pd:6.2f} s (CPU {cpu_pd:.2f} s)   ratio "
              f"{t_pd / t_cxm:4.2f}")  # fmt: skip


def _replicate(current: predict.Features, rows: int) -> predict.Features:
    """``current`` repeated to ``rows`` rows, each copy's customers renamed (a company of that
    size with the same mix of customers)."""
    f = current.frame
    copies = -(-rows // len(f))
    big = pd.concat([f] * copies, ignore_index=True).iloc[:rows].copy()
    copy = np.repeat(np.arange(copies), len(f))[:rows].astype(str)
    big["customer_id"] = big["customer_id"].astype(str).to_numpy(object) + "-" + copy
    big["key"] = big["customer_id"]
    return predict.Features(big, current.signals, current.numeric, current.categorical,
                            current.version)  # fmt: skip


def scores_as_of(engine: Any) -> Any:
    from cxm.insights.analytics import log_end

    with reading(engine) as con:
        return log_end(con)


if __name__ == "__main__":
    main()

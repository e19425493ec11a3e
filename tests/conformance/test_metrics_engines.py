"""Every shipped metric gives the same numbers on DuckDB, PostgreSQL and PySpark, computed on
the default demo company loaded through the same importers a user runs: one test per metric
and engine.

DuckDB is the reference: on DuckDB a test checks that the metric gives numbers on the demo at
all; on the other engines, that it gives DuckDB's numbers. Counts match exactly; floating-point
results to 1e-7 relative, since engines accumulate sums and standard deviations in different
orders. A known engine gap is a strict xfail in ``GAPS``, so a fix makes the test fail until
the marker goes.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from cxm.metrics import compute, load
from tests.conformance.conftest import engine_params

METRICS = load()
BY = ["department", "month"]
# (metric, engine) -> why it differs there. None known today.
GAPS: dict[tuple[str, str], str] = {}


def _by(name: str) -> list[str]:
    # A derived metric combines metrics owned by different departments, and growth metrics
    # count customers, who have no touchpoint: slice those by month only.
    metric = METRICS[name]
    if metric.kind == "derived" or metric.fact == "customer_periods":
        return ["month"]
    return BY


_references: dict[tuple[Any, ...], pd.DataFrame] = {}


def _reference(duck: Engine, name: str, **kw: Any) -> pd.DataFrame:
    key = (name, repr(sorted(kw.items())))
    if key not in _references:
        _references[key] = compute(duck, name, **kw)
    return _references[key]


@pytest.mark.parametrize(
    ("name", "engine"), [p for name in sorted(METRICS) for p in engine_params(name, GAPS)]
)
def test_metric_matches_duckdb(name: str, engine: str, on: Any, duck: Engine) -> None:
    reference = _reference(duck, name, by=_by(name))
    if engine == "duckdb":
        assert len(reference) > 0 and reference["value"].notna().any(), name
        return
    got = compute(on(engine), name, by=_by(name))
    pd.testing.assert_frame_equal(got, reference, rtol=1e-7, check_dtype=False, obj=name)


SLICED = ("nps", "repeat_contact_rate", "time_to_resolution", "logo_churn_rate",
          "net_revenue_retention")  # fmt: skip


@pytest.mark.parametrize(
    ("name", "engine"), [p for name in SLICED for p in engine_params(name, GAPS)]
)
def test_trait_week_slices_and_comparisons_match_duckdb(
    name: str, engine: str, on: Any, duck: Engine
) -> None:
    kw: dict[str, Any] = {"by": ["segment", "week"], "compare": "previous"}
    reference = _reference(duck, name, **kw)
    if engine == "duckdb":
        assert reference["p_value"].notna().any(), name
        return
    pd.testing.assert_frame_equal(compute(on(engine), name, **kw), reference, rtol=1e-7,
                                  check_dtype=False, obj=name)  # fmt: skip


@pytest.mark.parametrize(
    ("name", "engine"), [p for name in ("cohort_retention",) for p in engine_params(name, GAPS)]
)
def test_cohort_slices_match_duckdb(name: str, engine: str, on: Any, duck: Engine) -> None:
    kw: dict[str, Any] = {"by": ["cohort", "month"]}
    reference = _reference(duck, name, **kw)
    if engine == "duckdb":
        assert reference["cohort"].nunique() >= 5, reference
        return
    pd.testing.assert_frame_equal(compute(on(engine), name, **kw), reference, rtol=1e-7,
                                  check_dtype=False, obj=name)  # fmt: skip


# Typed and trigger slices: a number trait sorted by value and cut into bins, the property of
# the event that triggered each survey answer, and a date-free string trait beside them.
TYPED = {
    "tenure": ("csat", {"by": ["trait:tenure_months"]}),
    "tenure_bins": ("nps", {"by": ["trait:tenure_months", "segment"],
                            "bins": {"trait:tenure_months": ["0", "6", "12", "24"]}}),
    "late_days": ("csat", {"by": ["trigger:late_days"]}),
    "late_days_bins": ("csat_mean", {"by": ["trigger:late_days", "month"],
                                     "bins": {"trigger:late_days": ["1", "3", "7"]}}),
}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "engine"), [p for name in TYPED for p in engine_params(name, GAPS)]
)
def test_typed_and_trigger_slices_match_duckdb(name: str, engine: str, on: Any,
                                               duck: Engine) -> None:  # fmt: skip
    metric, kw = TYPED[name]
    reference = compute(duck, metric, **kw)
    if engine == "duckdb":
        column = next(c for c in reference.columns if c in ("tenure_months", "late_days"))
        labels = [v for v in reference[column] if v != "(none)"]
        assert len(set(labels)) >= 3, reference
        if "bins" not in kw:
            # Numbers sort by value, not as text.
            values = [float(v) for v in dict.fromkeys(labels)]
            assert values == sorted(values)
        return
    got = compute(on(engine), metric, **kw)
    pd.testing.assert_frame_equal(got, reference, rtol=1e-7, check_dtype=False, obj=name)

"""The insights inputs (the attribution's and drivers' feature tables, the prediction features)
give the same rows on DuckDB, PostgreSQL and PySpark, on the default demo company: one test per
input and engine. On DuckDB each test checks its row count another way; on the other engines,
that the table is DuckDB's."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.insights import analytics
from cxm.insights.definitions import load as load_signals
from cxm.metrics import definitions as metric_definitions
from cxm.store.analytics import reading
from tests.conformance.conftest import engine_params

SIGNALS = list(load_signals().values())
KEYS = [s.key for s in SIGNALS]
GAPS: dict[tuple[str, str], str] = {}


def _lifecycle() -> Any:
    found = [m.lifecycle for m in metric_definitions.load().values() if m.lifecycle]
    return found[0]


def _answers(con: Any) -> pd.DataFrame:
    t = analytics.with_controls(analytics.answer_signals(con, SIGNALS), con)
    f = t.execute()[["response_id", "nps", *KEYS, "segment", "tenure_months"]]
    return (
        f.astype({k: int for k in [*KEYS, "nps"]}).sort_values("response_id").reset_index(drop=True)
    )


def _customers(con: Any) -> pd.DataFrame:
    end = analytics.log_end(con)
    t = analytics.customer_signals(con, SIGNALS, _lifecycle(), end)
    f = t.execute()[["customer_id", "churned", *KEYS]]
    return (
        f.astype({k: int for k in [*KEYS, "churned"]})
        .sort_values("customer_id")
        .reset_index(drop=True)
    )


def _prediction(con: Any) -> pd.DataFrame:
    life = _lifecycle()
    points = analytics.churn_points(con, life, analytics.log_end(con), 1)
    f = analytics.features_at(con, points, SIGNALS, 365, exclude=life.churn).execute()
    f = f[["key", *KEYS, "events_per_30d"]].astype({k: int for k in KEYS})
    return f.sort_values("key").reset_index(drop=True)


def _read(source: Any, fn: Any) -> pd.DataFrame:
    with reading(source) as con:
        return fn(con)


def _same(got: pd.DataFrame, reference: pd.DataFrame) -> None:
    # Spark's epoch seconds drop the microseconds: activity rates agree to about 1e-9.
    pd.testing.assert_frame_equal(got, reference, check_dtype=False, check_exact=False, rtol=1e-6)


@pytest.mark.parametrize(("model", "engine"), engine_params("answer_signals", GAPS))
def test_attribution_answers_match_duckdb(model: str, engine: str, on: Any, duck: Engine) -> None:
    reference = _read(duck, _answers)
    if engine == "duckdb":
        with duck.connect() as conn:
            answers = conn.execute(sa.text(
                "select count(*) from responses where nps is not null "
                "and customer_id is not null and submitted_at is not null "
                "and respondent_kind = 'customer'")).scalar()  # fmt: skip
        assert len(reference) == answers and reference[KEYS].to_numpy().sum() > 0
        return
    _same(_read(on(engine), _answers), reference)


@pytest.mark.parametrize(("model", "engine"), engine_params("customer_signals", GAPS))
def test_churn_attribution_customers_match_duckdb(model: str, engine: str, on: Any,
                                                   duck: Engine) -> None:  # fmt: skip
    reference = _read(duck, _customers)
    if engine == "duckdb":
        with duck.connect() as conn:
            # Churned: the last cancellation comes at or after the last acquisition.
            churned = conn.execute(sa.text(
                "select count(*) from (select customer_id, "
                "max(case when name in ('invoice_sent', 'subscription_renewed') "
                "then event_time end) as acq, "
                "max(case when name = 'subscription_cancelled' then event_time end) as cancel "
                "from interactions where customer_id is not null group by customer_id) c "
                "where acq is not null and cancel >= acq")).scalar()  # fmt: skip
        assert reference.churned.sum() == churned > 0
        return
    _same(_read(on(engine), _customers), reference)


@pytest.mark.parametrize(("model", "engine"), engine_params("prediction_features", GAPS))
def test_prediction_features_match_duckdb(model: str, engine: str, on: Any,
                                          duck: Engine) -> None:  # fmt: skip
    reference = _read(duck, _prediction)
    if engine == "duckdb":
        assert len(reference) == len(_read(duck, _customers))
        assert (reference.events_per_30d > 0).all()
        return
    _same(_read(on(engine), _prediction), reference)

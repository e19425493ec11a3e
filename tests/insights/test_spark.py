"""The same signal features on Spark, over a Parquet lake exported from the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from cxm.insights import analytics
from cxm.interactions.facts import interactions
from cxm.metrics.export import export_parquet, spark_backend
from cxm.store import create_engine, upgrade
from cxm.surveys.facts import responses_table
from tests.conformance.conftest import spark  # noqa: F401  (the one shared Spark session)
from tests.insights.test_features import ANSWERS, EVENTS, LIFECYCLE, SIGNALS, _met, _rows

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("insights-lake")
    engine: Engine = create_engine(f"duckdb:///{root / 'cxm.duckdb'}")
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(interactions.insert(), EVENTS)
        conn.execute(responses_table.insert(), ANSWERS)
    export_parquet(engine, root / "lake")
    engine.dispose()
    return root / "lake"


def test_answer_signals_on_spark_match_the_hand_count(lake: Path, spark: Any) -> None:  # noqa: F811
    con = spark_backend(lake, session=spark)
    frame = analytics.answer_signals(con, SIGNALS).execute()
    assert _rows(frame, "response_id") == {
        "r1": _met(late_delivery=1, repeat_contact=1),
        "r2": _met(long_wait=1),
        "r3": _met(long_wait=1),
    }


def test_customer_signals_on_spark_match_the_hand_count(lake: Path, spark: Any) -> None:  # noqa: F811
    con = spark_backend(lake, session=spark)
    end = analytics.log_end(con)
    frame = analytics.customer_signals(con, SIGNALS, LIFECYCLE, end, 365).execute()
    assert _rows(frame, "customer_id") == {
        "a": _met(late_delivery=1, repeat_contact=1, long_wait=1, billing_error=1),
        "b": _met(long_wait=1),
    }

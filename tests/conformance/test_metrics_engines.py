"""Every shipped metric gives the same numbers on DuckDB, PostgreSQL and PySpark, computed on
the demo company loaded through the same importers a user runs.

Counts match exactly; floating-point results to 1e-7 relative, since engines accumulate sums
and standard deviations in different orders.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from cxm.demo.generator import generate
from cxm.demo.load import load as load_demo
from cxm.metrics import compute, load
from cxm.metrics.export import export_parquet, spark_backend
from cxm.store import create_engine, upgrade

SHIPPED = sorted(load())
BY = ["department", "month"]


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    generate(folder, customers=1500, months=4, seed=11)
    return folder


@pytest.fixture(scope="module")
def duck(tmp_path_factory: pytest.TempPathFactory, demo_files: Path) -> Iterator[Engine]:
    eng = create_engine(f"duckdb:///{tmp_path_factory.mktemp('conf') / 'cxm.duckdb'}")
    upgrade(eng)
    load_demo(eng, demo_files)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def pg(_postgres_engine: Engine, demo_files: Path) -> Engine:
    from tests.conftest import _clean

    _clean(_postgres_engine)
    load_demo(_postgres_engine, demo_files)
    return _postgres_engine


@pytest.fixture(scope="module")
def lake(duck: Engine, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lake")
    written = export_parquet(duck, out)
    assert written["responses"] > 0 and (out / "interactions.parquet").exists()
    return out


@pytest.fixture(scope="module")
def sparkb(lake: Path, spark: Any) -> Any:
    return spark_backend(lake, session=spark)


@pytest.mark.postgres
@pytest.mark.spark
def test_every_shipped_metric_is_identical_on_all_engines(duck: Engine, pg: Engine,
                                                          sparkb: Any) -> None:  # fmt: skip
    metrics = load()
    for name in SHIPPED:
        # A derived metric combines metrics owned by different departments: slice it by month.
        by = ["month"] if metrics[name].kind == "derived" else BY
        reference = compute(duck, name, by=by)
        assert len(reference) > 0 and reference["value"].notna().any(), name
        for engine in (pg, sparkb):
            pd.testing.assert_frame_equal(compute(engine, name, by=by), reference, rtol=1e-7,
                                          check_dtype=False, obj=name)  # fmt: skip


@pytest.mark.spark
def test_trait_week_slices_and_comparisons_match_on_spark(duck: Engine, sparkb: Any) -> None:
    kw: dict[str, Any] = {"by": ["segment", "week"], "compare": "previous"}
    for name in ("nps", "repeat_contact_rate", "time_to_resolution"):
        pd.testing.assert_frame_equal(compute(sparkb, name, **kw), compute(duck, name, **kw),
                                      rtol=1e-7, check_dtype=False, obj=name)  # fmt: skip


def test_response_rate_recovers_the_demo_companys_planted_rates(duck: Engine) -> None:
    """The demo's sends are survey_sent events in the log; recorded as invitations and linked
    to the answers, they give back the answer rate the generator planted for each survey."""
    from cxm.demo import causal

    rates = compute(duck, "response_rate", ["survey"], confidence=0.999)
    assert set(rates["survey"]) == set(causal.SURVEY_RESPONSE_RATE)
    for row in rates.to_dict("records"):
        planted = causal.SURVEY_RESPONSE_RATE[row["survey"]] * 100
        assert row["ci_low"] <= planted <= row["ci_high"], row

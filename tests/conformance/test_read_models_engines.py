"""Journeys, theme impact and the surveys funnel give the same answer on DuckDB, PostgreSQL and
PySpark, on the default demo company: one test per read model and engine.

On DuckDB each test checks the answer against a count taken another way (the journeys there
are read from a kept rollup, the others from the plain expression); on the other engines,
that the answer is DuckDB's.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.journeys.analytics import department_journeys, journey_map
from cxm.metrics.definitions import load
from cxm.surveys.analytics import funnel
from cxm.text import analytics, taxonomy
from cxm.text.analytics import theme_impact
from tests.conformance.conftest import engine_params

# (read model, engine) -> why it differs there.
GAPS: dict[tuple[str, str], str] = {}


def _journeys(source: Any) -> list[tuple[Any, ...]]:
    groups = journey_map(source).groups
    return sorted((tuple(sorted(t)), n, tuple(sorted(r.items()))) for t, n, r in groups)


@pytest.mark.parametrize(("model", "engine"), engine_params("journeys", GAPS))
def test_journey_map_matches_duckdb(model: str, engine: str, on: Any, duck: Engine) -> None:
    reference = _journeys(duck)
    if engine == "duckdb":
        with duck.connect() as conn:
            customers = conn.execute(sa.text(
                "select count(distinct customer_id) from interactions "
                "where customer_id is not null")).scalar()  # fmt: skip
        assert sum(n for _, n, _ in reference) == customers
        return
    assert _journeys(on(engine)) == reference


@pytest.mark.parametrize(("model", "engine"), engine_params("department_journeys", GAPS))
def test_department_journeys_match_duckdb(model: str, engine: str, on: Any,
                                          duck: Engine) -> None:  # fmt: skip
    reference = department_journeys(duck, "supply_chain")
    if engine == "duckdb":
        assert reference.customers > 0 and reference.neighbours
        assert all(0 < r["share"] <= 1 for r in reference.reach.values())
        return
    assert department_journeys(on(engine), "supply_chain") == reference


def _themes(duck: Engine) -> list[Any]:
    with duck.connect() as conn:
        return taxonomy.list_themes(conn)


@pytest.mark.parametrize(("model", "engine"), engine_params("theme_impact", GAPS))
def test_theme_impact_matches_duckdb(model: str, engine: str, on: Any, duck: Engine) -> None:
    themes = _themes(duck)
    reference = theme_impact(duck, themes)
    if engine == "duckdb":
        assert reference.responses > 0 and any(t.volume > 0 for t in reference.themes)
        with duck.connect() as conn:
            commented = conn.execute(sa.text(
                "select count(*) from responses where completed and comment is not null "
                "and nps is not null and respondent_kind = 'customer'")).scalar()  # fmt: skip
        assert reference.responses == commented
        return
    assert theme_impact(on(engine), themes) == reference


@pytest.mark.parametrize(("model", "engine"), engine_params("surveys_funnel", GAPS))
def test_surveys_funnel_matches_duckdb(model: str, engine: str, on: Any, duck: Engine) -> None:
    reference = funnel(duck)
    if engine == "duckdb":
        with duck.connect() as conn:
            sent = conn.execute(
                sa.text("select count(*) from survey_invitations where sent_at is not null")
            ).scalar()
        assert sum(r["sent"] for r in reference) == sent
        return
    assert funnel(on(engine)) == reference


IMPACT_METRICS = ("csat", "ces", "churn")


@pytest.mark.parametrize(
    ("model", "engine"), [p for m in IMPACT_METRICS for p in engine_params(f"impact_{m}", GAPS)]
)
def test_theme_impact_on_other_metrics_matches_duckdb(
    model: str, engine: str, on: Any, duck: Engine
) -> None:
    outcome = analytics.outcome(load(), model.removeprefix("impact_"))
    themes = _themes(duck)
    reference = theme_impact(duck, themes, outcome=outcome)
    if engine == "duckdb":
        assert reference.responses > 0 and reference.value is not None
        assert any(t.impact is not None for t in reference.themes), reference
        return
    assert theme_impact(on(engine), themes, outcome=outcome) == reference

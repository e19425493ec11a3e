"""Theme impact gives the same report on DuckDB, PostgreSQL and PySpark (from the Parquet
lake), on the default demo company tagged by the starter taxonomy: one test per outcome and
engine. On DuckDB each test checks the volumes and the overall figure another way (pandas over
the store's rows); on the other engines, that the report is DuckDB's."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from cxm.metrics import load as load_metrics
from cxm.text import analytics, taxonomy
from tests.conformance.conftest import engine_params

METRICS = load_metrics()
OUTCOMES = ["nps", "csat", "ces", "churn"]
GAPS: dict[tuple[str, str], str] = {}


def _themes(duck: Engine) -> list[Any]:
    with duck.connect() as conn:
        return taxonomy.list_themes(conn)


def _report(source: Any, themes: list[Any], name: str) -> dict[str, Any]:
    out = analytics.outcome(METRICS, name)
    report = analytics.theme_impact(source, themes, outcome=out).model_dump()
    report["themes"] = sorted(report["themes"], key=lambda t: (t["taxonomy"], t["theme"]))
    return report


def _pandas_nps(duck: Engine) -> tuple[int, float, dict[tuple[str, str], int]]:
    """Answers, NPS and volume per theme of customers' commented NPS answers, in pandas."""
    with duck.connect() as conn:
        r = pd.read_sql("select id, nps, comment, completed, respondent_kind from responses",
                        conn)  # fmt: skip
        tags = pd.read_sql("select distinct source_id, taxonomy, theme_key from text_themes "
                           "where source = 'survey_response'", conn)  # fmt: skip
    r = r[r.completed & r.comment.notna() & r.nps.notna() & (r.respondent_kind == "customer")]
    nps = 100 * ((r.nps >= 9).mean() - (r.nps <= 6).mean())
    joined = tags.merge(r[["id"]], left_on="source_id", right_on="id")
    volumes = joined.groupby(["taxonomy", "theme_key"]).size().reset_index(name="n")
    return (
        len(r),
        float(nps),
        {(str(v.taxonomy), str(v.theme_key)): int(v.n) for v in volumes.itertuples()},
    )


def _close(got: Any, want: Any) -> None:
    if isinstance(want, dict):
        assert got.keys() == want.keys()
        for k in want:
            _close(got[k], want[k])
    elif isinstance(want, list):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            _close(g, w)
    elif isinstance(want, float) and not isinstance(got, bool):
        # Figures are rounded to 0.01 (0.001 for means); summation order may move the last digit.
        assert got == pytest.approx(want, abs=0.0101)
    else:
        assert got == want


_references: dict[str, dict[str, Any]] = {}


def _reference(duck: Engine, name: str) -> dict[str, Any]:
    if name not in _references:
        _references[name] = _report(duck, _themes(duck), name)
    return _references[name]


@pytest.mark.parametrize(("outcome", "engine"),
                         [p for o in OUTCOMES for p in engine_params(o, GAPS)])  # fmt: skip
def test_theme_impact_matches_duckdb(outcome: str, engine: str, on: Any, duck: Engine) -> None:
    reference = _reference(duck, outcome)
    if engine == "duckdb":
        assert reference["responses"] > 0
        assert any(t["volume"] > 0 and t["impact"] is not None for t in reference["themes"])
        if outcome == "nps":
            n, nps, volumes = _pandas_nps(duck)
            assert reference["responses"] == n
            assert reference["value"] == pytest.approx(nps, abs=0.006)
            got = {(t["taxonomy"], t["theme"]): t["volume"] for t in reference["themes"]}
            assert {k: v for k, v in got.items() if v} == volumes
        return
    _close(_report(on(engine), _themes(duck), outcome), reference)

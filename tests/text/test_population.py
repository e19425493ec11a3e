"""Theme impact and comment reads count customers' answers unless employees are asked for."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.engine import Engine

from cxm.errors import Invalid
from cxm.surveys.tables import responses
from cxm.text import analytics
from cxm.text.schemas import Theme
from cxm.text.tables import text_themes

T = dt.datetime(2025, 3, 10, 12, tzinfo=dt.UTC)
SLOW = Theme(taxonomy="t", key="slow", name="Slow", department_key=None, keywords=["slow"],
             examples=[], threshold=0.5)  # fmt: skip


@pytest.fixture
def mixed(engine: Engine) -> Engine:
    """Customers: 2 promoters, 2 detractors mentioning 'slow'. Employees: 3 detractors, all
    mentioning 'slow' ("Our tools are slow")."""
    rows = [("c1", "customer", 10, None), ("c2", "customer", 9, None),
            ("c3", "customer", 2, "slow"), ("c4", "customer", 3, "slow"),
            ("e1", "employee", 0, "slow"), ("e2", "employee", 1, "slow"),
            ("e3", "employee", 2, "slow")]  # fmt: skip
    with engine.begin() as conn:
        for rid, kind, score, theme in rows:
            conn.execute(responses.insert().values(
                id=rid, survey_key="pulse" if kind == "employee" else "relationship",
                survey_version=1, respondent_kind=kind, started_at=T, submitted_at=T,
                completed=True, nps=score,
                nps_category="promoter" if score >= 9 else "detractor",
                comment="Our tools are slow." if kind == "employee" else f"comment {rid}",
                source="web",
            ))  # fmt: skip
            if theme:
                conn.execute(text_themes.insert().values(
                    source=analytics.SOURCE, source_id=rid, taxonomy="t", theme_key=theme,
                    method="keyword", tagged_at=T,
                ))  # fmt: skip
    return engine


def test_theme_impact_reads_customer_answers_by_default(mixed: Engine) -> None:
    report = analytics.theme_impact(mixed, [SLOW])
    assert report.responses == 4
    assert report.nps == pytest.approx(0.0)  # 2 promoters, 2 detractors
    (slow,) = report.themes
    assert slow.volume == 2


def test_theme_impact_of_employees_only_when_asked(mixed: Engine) -> None:
    report = analytics.theme_impact(mixed, [SLOW], analytics.Slice(population="employee"))
    assert report.responses == 3
    assert report.themes[0].volume == 3
    both = analytics.theme_impact(mixed, [SLOW], analytics.Slice(population=None))
    assert both.responses == 7


def test_every_comment_is_read_for_annotation(mixed: Engine) -> None:
    assert analytics.response_texts(mixed).num_rows == 7


def test_an_unknown_population_is_refused() -> None:
    with pytest.raises(Invalid, match="customer, employee, all"):
        analytics.population("staff")

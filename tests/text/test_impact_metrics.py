"""Theme impact on every kind of metric (NPS, a %, a mean on a scale, a custom rating without
one, churn), each checked against pandas with statsmodels' or scipy's interval of the gap.

A delivery survey: 160 customers answer once (CSAT 1-5, CES 1-7, NPS 0-10, a comment); those
whose comment is about a late delivery (tagged ``delivery``) score lower and cancel more often.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from statsmodels.stats.proportion import confint_proportions_2indep
from typer.testing import CliRunner

from cxm.cli.main import app as cli
from cxm.errors import Invalid
from cxm.interactions.tables import interactions
from cxm.metrics.definitions import load
from cxm.surveys.tables import responses
from cxm.text import analytics, taxonomy
from cxm.text.tables import text_themes

T0 = dt.datetime(2025, 4, 1, 9, tzinfo=dt.UTC)
CUSTOM = """\
metrics:
  effort_raw:
    description: Mean effort answer, read without a scale (a custom rating).
    kind: mean
    fact: responses
    column: ces
    filters: {respondent_kind: customer, completed: true, ces: {is_null: false}}
    unit: score
    direction: higher
"""


def _write(engine: Engine) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    rows, answers, tags, events = [], [], [], []
    for i in range(160):
        cid, rid = f"c{i:03d}", f"r{i:03d}"
        late = bool(rng.random() < 0.3)
        when = T0 + dt.timedelta(hours=i)
        csat = int(np.clip(rng.integers(3, 6) - (2 if late else 0), 1, 5))
        ces = int(np.clip(rng.integers(4, 8) - (2 if late else 0), 1, 7))
        nps = int(np.clip(rng.integers(6, 11) - (4 if late else 0), 0, 10))
        churned = bool(rng.random() < (0.45 if late else 0.15))
        early = not churned and rng.random() < 0.05  # cancelled before answering: not churn after
        answers.append({
            "id": rid, "survey_key": "delivery", "survey_version": 1,
            "respondent_kind": "customer", "customer_id": cid, "touchpoint_key": "delivery",
            "channel": "email", "started_at": when, "submitted_at": when, "completed": True,
            "csat": csat, "ces": ces, "nps": nps,
            "nps_category": "promoter" if nps >= 9 else "passive" if nps >= 7 else "detractor",
            "comment": "late again" if late else "fine", "source": "web",
        })  # fmt: skip
        if late:
            tags.append({"source": analytics.SOURCE, "source_id": rid, "taxonomy": "starter",
                         "theme_key": "delivery", "method": "keyword",
                         "tagged_at": when})  # fmt: skip
        life = [("invoice_sent", T0 - dt.timedelta(days=30))]
        if churned:
            life.append(("subscription_cancelled", when + dt.timedelta(days=10)))
        if early:
            life.append(("subscription_cancelled", when - dt.timedelta(days=3)))
        for n, (name, t) in enumerate(life):
            events.append({"event_id": f"{cid}-{n}", "type": "track", "name": name,
                           "event_time": t, "received_at": t, "customer_id": cid,
                           "touchpoint_key": "billing", "channel": "web",
                           "source": "api"})  # fmt: skip
        rows.append({"late": late, "csat": csat, "ces": ces, "nps": nps, "churned": churned})
    # An employee pulse answer mentioning the theme: never in a customer metric.
    answers.append({
        "id": "e1", "survey_key": "pulse", "survey_version": 1, "respondent_kind": "employee",
        "customer_id": None, "touchpoint_key": None, "channel": "web", "started_at": T0,
        "submitted_at": T0, "completed": True, "nps": 0, "csat": 1, "ces": None,
        "nps_category": "detractor", "comment": "late shifts", "source": "web",
    })  # fmt: skip
    with engine.begin() as conn:
        conn.execute(responses.insert(), answers)
        conn.execute(text_themes.insert(), tags)
        conn.execute(interactions.insert(), events)
        taxonomy.apply(conn, taxonomy.starter_doc())
    return pd.DataFrame(rows)


@pytest.fixture
def survey(seeded: Engine) -> tuple[Engine, pd.DataFrame]:
    return seeded, _write(seeded)


def _theme(engine: Engine, metric: str, tmp_path: Path) -> tuple[object, object]:
    (tmp_path / "custom.yaml").write_text(CUSTOM, encoding="utf-8")
    outcome = analytics.outcome(load(tmp_path / "custom.yaml"), metric)
    with engine.connect() as conn:
        themes = [t for t in taxonomy.list_themes(conn, "starter") if t.key == "delivery"]
    report = analytics.theme_impact(engine, themes, outcome=outcome)
    return report, report.themes[0]


def test_csat_impact_is_the_agresti_caffo_gap_times_the_share(
    survey: tuple[Engine, pd.DataFrame], tmp_path: Path
) -> None:
    engine, df = survey
    report, t = _theme(engine, "csat", tmp_path)
    top = df.csat >= 4
    w, wo = top[df.late], top[~df.late]
    share = len(w) / len(df)
    low, high = confint_proportions_2indep(wo.sum(), len(wo), w.sum(), len(w),
                                           method="agresti-caffo", compare="diff")  # fmt: skip
    assert report.responses == len(df) and report.unit == "%"  # the employee is not counted
    assert report.value == pytest.approx(100 * top.mean(), abs=0.01)
    assert t.volume == len(w) and t.value_with == pytest.approx(100 * w.mean(), abs=0.01)
    assert t.value_without == pytest.approx(100 * wo.mean(), abs=0.01)
    assert t.impact == pytest.approx(share * 100 * (wo.mean() - w.mean()), abs=0.01)
    assert t.impact_low == pytest.approx(share * 100 * low, abs=0.01)
    assert t.impact_high == pytest.approx(share * 100 * high, abs=0.01)
    # Unfavourable = not in the top two boxes.
    assert t.detractor_share == pytest.approx((~w).sum() / (~top).sum(), abs=1e-4)
    assert t.nps_impact is None and report.nps is None


def test_a_custom_rating_without_a_scale_uses_welch(
    survey: tuple[Engine, pd.DataFrame], tmp_path: Path
) -> None:
    engine, df = survey
    _, t = _theme(engine, "effort_raw", tmp_path)
    w, wo = df.ces[df.late], df.ces[~df.late]
    share = len(w) / len(df)
    ci = st.ttest_ind(wo, w, equal_var=False).confidence_interval(0.95)
    assert t.impact == pytest.approx(share * (wo.mean() - w.mean()), abs=0.01)
    assert t.impact_low == pytest.approx(share * ci.low, abs=0.01)
    assert t.impact_high == pytest.approx(share * ci.high, abs=0.01)
    assert t.avg_score_with == pytest.approx(w.mean(), abs=1e-3)


def test_a_mean_on_a_closed_scale_keeps_the_point_gap(
    survey: tuple[Engine, pd.DataFrame], tmp_path: Path
) -> None:
    engine, df = survey
    report, t = _theme(engine, "ces", tmp_path)
    w, wo = df.ces[df.late], df.ces[~df.late]
    share = len(w) / len(df)
    assert report.value == pytest.approx(df.ces.mean(), abs=0.01)
    assert t.impact == pytest.approx(share * (wo.mean() - w.mean()), abs=0.01)
    assert t.impact_low is not None and t.impact_high is not None
    assert t.impact_low < t.impact < t.impact_high  # type: ignore[operator]


def test_nps_impact_by_the_company_definition(
    survey: tuple[Engine, pd.DataFrame], tmp_path: Path
) -> None:
    engine, df = survey
    report, t = _theme(engine, "nps", tmp_path)

    def nps(s: pd.Series) -> float:
        return 100 * ((s >= 9).mean() - (s <= 6).mean())

    w, wo = df.nps[df.late], df.nps[~df.late]
    assert report.responses == len(df) and report.nps == pytest.approx(nps(df.nps), abs=0.01)
    assert t.nps_impact == t.impact
    assert t.impact == pytest.approx(len(w) / len(df) * (nps(wo) - nps(w)), abs=0.01)


def test_churn_impact_counts_cancellations_after_the_answer(
    survey: tuple[Engine, pd.DataFrame], tmp_path: Path
) -> None:
    engine, df = survey
    report, t = _theme(engine, "churn", tmp_path)
    w, wo = df.churned[df.late], df.churned[~df.late]
    share = len(w) / len(df)
    # Lower is better: the impact is how much churn the theme adds.
    low, high = confint_proportions_2indep(w.sum(), len(w), wo.sum(), len(wo),
                                           method="agresti-caffo", compare="diff")  # fmt: skip
    assert report.direction == "lower" and report.responses == len(df)
    assert report.value == pytest.approx(100 * df.churned.mean(), abs=0.01)
    assert t.impact == pytest.approx(share * 100 * (w.mean() - wo.mean()), abs=0.01)
    assert t.impact > 0  # type: ignore[operator]
    assert t.impact_low == pytest.approx(share * 100 * low, abs=0.01)
    assert t.impact_high == pytest.approx(share * 100 * high, abs=0.01)
    assert t.detractor_share == pytest.approx(w.sum() / df.churned.sum(), abs=1e-4)


def test_nothing_to_compute_is_said_in_words(
    survey: tuple[Engine, pd.DataFrame], tmp_path: Path
) -> None:
    engine, _ = survey
    metrics = load()
    with engine.connect() as conn:
        themes = taxonomy.list_themes(conn, "starter")
    # The csat definition counts customers' answers: employees' have none.
    report = analytics.theme_impact(engine, themes, analytics.Slice(population="employee"),
                                    outcome=analytics.outcome(metrics, "csat"))  # fmt: skip
    assert report.responses == 0 and report.value is None
    assert report.note is not None and "no answer with a comment" in report.note
    assert all(t.impact is None and t.note for t in report.themes)
    every = analytics.theme_impact(engine, themes, outcome=analytics.outcome(metrics, "csat"))
    untouched = [t for t in every.themes if t.volume == 0]
    assert untouched and untouched[0].note == "no answer with a value mentions it"
    with pytest.raises(Invalid, match="response_rate is measured on invitations"):
        analytics.outcome(metrics, "response_rate")
    with pytest.raises(Invalid, match=r"use one of .*csat.*churn"):
        analytics.outcome(metrics, "renewal_rate")


def test_cli_and_api_read_the_metric_asked_for(
    survey: tuple[Engine, pd.DataFrame],
    app_client: TestClient,
    read_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    engine, df = survey
    r = app_client.get("/api/v1/text/themes", params={"metric": "csat"}, headers=read_headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["metric"] == "csat" and body["responses"] == len(df)
    delivery = next(t for t in body["themes"] if t["theme"] == "delivery")
    assert delivery["impact"] > 0 and delivery["impact_low"] is not None
    bad = app_client.get("/api/v1/text/themes", params={"metric": "nosuch"},
                         headers=read_headers)  # fmt: skip
    assert bad.status_code == 422 and "csat" in bad.json()["detail"]
    if engine.dialect.name != "duckdb":
        return
    engine.dispose()
    monkeypatch.setenv("CXM_DATABASE_URL", str(engine.url))
    monkeypatch.setenv("CXM_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    out = runner.invoke(cli, ["text", "impact", "--metric", "csat", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["value"] == pytest.approx(100 * (df.csat >= 4).mean(), abs=0.01)
    table = runner.invoke(cli, ["text", "impact", "--metric", "csat", "--survey", "pulse"])
    assert table.exit_code == 0, table.output
    assert "0 answers" in table.output and "no answer with a comment" in table.output

"""Churn risk and predicted NPS: features known before the prediction date, holdout figures
against the demo's planted causes, contributions, stored scores, CLI and API.

``customers.csv`` (the planted traits, churn and the frictions each customer truly met) is read
here only, to build the reference models the issue names; it is never loaded as data.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cxm import console
from cxm.cli.main import app as cli
from cxm.config import load_settings
from cxm.customers.facts import customer_traits
from cxm.demo.causal import FRICTION_KEYS
from cxm.insights import analytics, facts, predict, service
from cxm.interactions.facts import interactions
from cxm.store.analytics import reading
from tests.conftest import make_key
from tests.insights.test_features import EVENTS, LIFECYCLE, SIGNALS, _event


@pytest.fixture(scope="module")
def features(demo_company: tuple[Engine, Path]) -> tuple[predict.Features, Any, Any, Any]:
    engine, root = demo_company
    with reading(engine) as con:
        return service.feature_sets(con, root)


@pytest.fixture(scope="module")
def planted(demo_company: tuple[Engine, Path]) -> pd.DataFrame:
    """customers.csv keyed by the store's customer id (through the user_id identity); store
    customers that merged two planted customers (shared identifiers) are left out."""
    engine, root = demo_company
    with engine.connect() as conn:
        ids = pd.DataFrame(conn.execute(sa.text(
            "select value as user_id, customer_id from customer_identities where kind = 'user_id'"
        )).all())  # fmt: skip
    truth = pd.read_csv(root / "files" / "customers.csv").merge(ids, on="user_id")
    return truth[~truth.customer_id.duplicated(keep=False)].set_index("customer_id")


def _auc_of(x: pd.DataFrame, y: pd.Series, train: np.ndarray, test: np.ndarray) -> float:
    model = LogisticRegression(max_iter=5000).fit(x.iloc[train], y.iloc[train])
    return float(roc_auc_score(y.iloc[test], model.predict_proba(x.iloc[test])[:, 1]))


def test_holdout_auc_is_near_the_planted_causes_and_above_segment_and_plan(
    features: tuple[predict.Features, Any, Any, Any], planted: pd.DataFrame
) -> None:
    churn = features[0]
    frame = churn.frame[churn.frame.customer_id.isin(planted.index)].reset_index(drop=True)
    ours = predict.Features(frame, churn.signals, churn.numeric, churn.categorical, "")
    y = frame["churned"].astype(int)
    truth = planted.loc[frame.customer_id]
    assert (truth["churned"].astype(bool).to_numpy() == y.astype(bool).to_numpy()).mean() > 0.99
    train, test = predict.split(y)
    model = predict.churn_model(ours).fit(frame.iloc[train], y.iloc[train])
    auc = roc_auc_score(y.iloc[test], model.predict_proba(frame.iloc[test])[:, 1])
    causes = pd.get_dummies(truth[["segment", "plan", "region"]], dtype=float)
    causes["tenure_months"] = truth["tenure_months"].to_numpy(float)
    for key in FRICTION_KEYS:
        causes[key] = (truth[key] > 0).astype(float)
    causes = causes.reset_index(drop=True)
    reference = _auc_of(causes, y, train, test)
    segment_plan = _auc_of(pd.get_dummies(truth[["segment", "plan"]], dtype=float)
                           .reset_index(drop=True), y, train, test)  # fmt: skip
    assert abs(auc - reference) <= 0.04, (auc, reference)
    assert auc >= segment_plan + 0.05, (auc, segment_plan)


def test_train_reports_auc_brier_and_calibration_a_reader_can_recompute(
    features: tuple[predict.Features, Any, Any, Any],
) -> None:
    churn, nps, _, _ = features
    ev = predict.evaluate(churn, nps)
    y = churn.frame["churned"].astype(int)
    train, test = predict.split(y)
    p = predict.churn_model(churn).fit(churn.frame.iloc[train], y.iloc[train])
    p = p.predict_proba(churn.frame.iloc[test])[:, 1]
    yt = y.iloc[test].to_numpy()
    assert ev.auc == pytest.approx(roc_auc_score(yt, p))
    assert ev.brier == pytest.approx(float(np.mean((p - yt) ** 2)))
    assert ev.brier == pytest.approx(brier_score_loss(yt, p))
    assert ev.brier < ev.base_rate * (1 - ev.base_rate)  # better than a constant guess
    assert sum(b["customers"] for b in ev.calibration) == ev.holdout == len(test)
    # Each bin: the observed churn rate of its customers, recomputed by hand.
    order = np.argsort(p, kind="stable")
    start = 0
    for b in ev.calibration:
        members = order[start : start + b["customers"]]
        assert b["observed"] == pytest.approx(yt[members].mean())
        assert b["predicted"] == pytest.approx(p[members].mean())
        start += b["customers"]
    assert ev.nps_mae is not None and 0 < ev.nps_mae < 3


def test_contributions_add_up_to_the_models_log_odds(
    features: tuple[predict.Features, Any, Any, Any],
) -> None:
    churn = features[0]
    y = churn.frame["churned"].astype(int)
    model = predict.fit_with_mean(predict.churn_model(churn), churn.frame, y)
    parts = predict.contributions(model, churn.frame, churn)
    log_odds = model.decision_function(churn.frame)
    at_mean = model[-1].intercept_[0] + model[-1].coef_[0] @ model._cxm_train_mean
    assert parts.sum(axis=1).to_numpy() == pytest.approx(log_odds - at_mean)
    why = predict.reasons(parts, predict.labels_for(SIGNALS), churn.frame, +1)
    for row, reasons in zip(parts.to_dict("records"), why, strict=True):
        assert len(reasons) <= 3
        top = sorted((v for v in row.values() if v > 0), reverse=True)[:3]
        assert [r["contribution"] for r in reasons] == pytest.approx(top, abs=1e-4)


def test_predict_stores_one_reproducible_score_per_customer_still_there(
    demo_company: tuple[Engine, Path],
) -> None:
    engine, root = demo_company
    first = service.score(engine, root)
    again = service.score(engine, root)
    assert first.frame["churn_risk"].tolist() == again.frame["churn_risk"].tolist()
    with engine.begin() as conn:
        written = service.store_scores(conn, first)
    with reading(engine) as con:
        stored = facts.predictions(con).execute()
        outcomes = analytics.customer_outcomes(con, service.lifecycle(root),
                                               analytics.log_end(con)).execute()  # fmt: skip
    assert written == len(stored) == int((outcomes.churned == 0).sum())
    assert set(stored.customer_id) == set(outcomes.customer_id[outcomes.churned == 0])
    assert stored.churn_risk.between(0, 1).all()
    assert stored.predicted_nps.between(0, 10).all()
    assert set(stored.seed) == {predict.SEED} and set(stored.feature_set) == {first.feature_set}
    reasons = [json.loads(r) if isinstance(r, str) else r for r in stored.reasons]
    # A reason pushes towards churn; a customer at lower risk than the average profile may
    # have none, one above it has at least one (the contributions sum to the difference).
    assert all(len(r) <= 3 for r in reasons)
    assert sum(1 for r in reasons if r) > len(reasons) / 2
    risky = stored.sort_values("churn_risk").iloc[-1]
    top = json.loads(risky.reasons) if isinstance(risky.reasons, str) else risky.reasons
    assert top[0]["contribution"] > 0


@pytest.fixture
def cancelled(engine: Engine) -> Engine:
    """Customer ``a`` of the hand-built log, with the cancellation flow just before the
    cancellation (a visit to the cancel page 5 minutes before) and a late delivery after."""
    extra = [
        _event(50, "a", "page_viewed", "cancellation", "2026-06-03T07:55:00"),
        _event(51, "a", "delivery_late", "delivery", "2026-06-10T00:00:00"),
    ]
    with engine.begin() as conn:
        conn.execute(interactions.insert(), EVENTS + extra)
        now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        trait = {"customer_id": "a", "name": "segment", "value": "consumer", "set_at": now}
        conn.execute(customer_traits.insert(), [trait])
    return engine


def test_features_stop_before_the_cancellation_and_its_run_up(cancelled: Engine) -> None:
    with reading(cancelled) as con:
        end = analytics.log_end(con)
        points = analytics.churn_points(con, LIFECYCLE, end, lead_hours=1)
        frame = analytics.features_at(con, points, SIGNALS, 365, exclude=["subscription_cancelled"])
        got = frame.execute().set_index("key")
        cut = points.execute().set_index("key")
    a = got.loc["a"]
    # a's cancellation is 2026-06-03 08:00: the cut-off is an hour before it.
    assert cut.loc["a", "cutoff"] == pd.Timestamp("2026-06-03T07:00:00")
    # Counted: events 1-5 (the first on 2025-10-01); not the cancel-page visit at 07:55,
    # the cancellation itself, nor the late delivery a week after it.
    days = (pd.Timestamp("2026-06-03T07:00:00") - pd.Timestamp("2025-10-01")).total_seconds()
    assert a["events_per_30d"] == pytest.approx(5 * 30 / (days / 86400))
    assert (a["late_delivery"], a["repeat_contact"], a["billing_error"]) == (1, 1, 1)
    assert cut.loc["b", "churned"] == 0
    assert cut.loc["b", "cutoff"] == pd.Timestamp(end) - pd.Timedelta(hours=1)


def test_cli_train_prints_auc_brier_and_calibration_and_predict_stores(
    demo_company: tuple[Engine, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, root = demo_company
    monkeypatch.setenv("CXM_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CXM_DATA_DIR", str(root))
    monkeypatch.setattr(console.console, "width", 200)
    out = CliRunner().invoke(cli, ["insights", "train"])
    assert out.exit_code == 0, out.output
    assert "ROC AUC 0." in out.output and "Brier score" in out.output
    assert "Calibration" in out.output
    printed = json.loads(CliRunner().invoke(cli, ["insights", "train", "--json"]).output)
    assert printed["auc"] > 0.6 and len(printed["calibration"]) == 5
    stored = CliRunner().invoke(cli, ["insights", "predict", "--top", "3"])
    assert stored.exit_code == 0, stored.output
    assert "customers scored" in stored.output
    bad = CliRunner().invoke(cli, ["insights", "train", "--lead-hours", "-1"])
    assert bad.exit_code == 2 and "hours" in bad.output


def test_api_gives_a_customers_prediction_only_within_scope(
    demo_company: tuple[Engine, Path],
) -> None:
    from cxm.web.app import create_app

    engine, root = demo_company
    scores = service.score(engine, root)
    with engine.begin() as conn:
        service.store_scores(conn, scores)
    customer = str(scores.frame.customer_id.iloc[0])
    settings = load_settings(data_dir=root, database_url=str(engine.url))
    with TestClient(create_app(settings, engine=engine, run_worker=False)) as client:
        ok = client.get(
            f"/api/v1/insights/predictions/{customer}", headers=make_key(engine, "read")
        )
        assert ok.status_code == 200, ok.text
        body = ok.json()
        assert body["churn_risk"] == pytest.approx(float(scores.frame.churn_risk.iloc[0]))
        assert len(body["reasons"]) <= 3 and body["feature_set"] == scores.feature_set
        missing = client.get(
            "/api/v1/insights/predictions/nobody", headers=make_key(engine, "read")
        )
        assert missing.status_code == 404
        assert client.get(f"/api/v1/insights/predictions/{customer}").status_code == 401


def _plain_pipeline(fs: predict.Features, model: Any) -> Any:
    """The preparation written out with scikit-learn's own parts (not cxm's builder)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = ColumnTransformer(
        [("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), fs.numeric),
         ("cat", OneHotEncoder(handle_unknown="ignore"), fs.categorical)],
        sparse_threshold=0.0,
    )  # fmt: skip
    return make_pipeline(prep, model)


def test_scores_equal_a_plain_scikit_learn_predict_on_the_same_features(
    features: tuple[predict.Features, Any, Any, Any], demo_company: tuple[Engine, Path]
) -> None:
    from sklearn.linear_model import Ridge

    churn, nps, current, usable = features
    engine, _ = demo_company
    with reading(engine) as con:
        as_of = analytics.log_end(con)
    scores = predict.score(churn, nps, current, usable, as_of)
    y = churn.frame["churned"].astype(int)
    risk = _plain_pipeline(churn, LogisticRegression(C=1.0, max_iter=2000, random_state=7))
    risk = risk.fit(churn.frame, y).predict_proba(current.frame)[:, 1]
    assert scores.frame["customer_id"].tolist() == current.frame["customer_id"].tolist()
    assert scores.frame["churn_risk"].to_numpy() == pytest.approx(risk, abs=1e-9)
    guess = _plain_pipeline(nps, Ridge(alpha=1.0)).fit(nps.frame, nps.frame["nps"].astype(float))
    guess = np.clip(guess.predict(current.frame), 0, 10)
    assert scores.frame["predicted_nps"].to_numpy() == pytest.approx(guess, abs=1e-9)
    # Each row's reasons (JSON text) are its three largest contributions towards churn, with
    # the customer's own value of each feature.
    model = predict.fit_with_mean(predict.churn_model(churn), churn.frame, y)
    parts = predict.contributions(model, current.frame, churn)
    for i in range(0, len(current.frame), 97):
        why = predict.reasons_at(scores, "reasons", i)
        row = parts.iloc[i]
        top = row[row > 0].sort_values(ascending=False).head(3)
        assert [r["feature"] for r in why] == list(top.index)
        assert [r["contribution"] for r in why] == pytest.approx(top.to_list(), abs=1e-4)
        for r in why:
            own = current.frame[r["feature"]].iloc[i]
            if isinstance(own, str):
                assert r["value"] == own
            else:
                assert r["value"] == pytest.approx(round(float(own), 3))
            assert r["label"] == predict.labels_for(usable).get(r["feature"], r["feature"])
        assert isinstance(json.loads(scores.frame["nps_reasons"].iloc[i]), list)


def test_stored_scores_are_the_computed_ones_row_for_row(
    demo_company: tuple[Engine, Path],
) -> None:
    engine, root = demo_company
    scores = service.score(engine, root)
    with engine.begin() as conn:
        written = service.store_scores(conn, scores)
    with engine.connect() as conn:
        stored = pd.DataFrame(conn.execute(sa.select(facts.customer_predictions)).mappings().all())
    assert written == len(stored) == len(scores.frame)
    stored = stored.set_index("customer_id").loc[scores.frame["customer_id"]]
    assert stored["churn_risk"].to_numpy() == pytest.approx(scores.frame["churn_risk"].to_numpy())
    assert stored["predicted_nps"].to_numpy() == pytest.approx(
        scores.frame["predicted_nps"].to_numpy()
    )
    for i in range(0, len(stored), 53):
        for column in ("reasons", "nps_reasons"):
            got = stored[column].iloc[i]
            got = json.loads(got) if isinstance(got, str) else got
            assert got == predict.reasons_at(scores, column, i)
    assert set(stored["model_version"]) == {scores.model_version}
    assert {str(t)[:19] for t in stored["as_of"]} == {scores.as_of.isoformat(sep=" ")[:19]}


def test_scores_are_stored_in_one_bulk_write_on_each_engine(engine: Engine) -> None:
    reasons = [
        '[{"feature": "late_delivery", "label": "Late delivery", "value": 2, '
        '"contribution": 0.4312}, {"feature": "segment", "label": "Segment", '
        '"value": "small \\"business\\"", "contribution": 0.05}]',
        "[]",
    ]
    frame = pd.DataFrame({"customer_id": ["c-1", "c-2"], "churn_risk": [0.61, 0.05],
                          "predicted_nps": [6.5, np.nan]})  # fmt: skip
    frame["reasons"] = predict._text(pa.array(reasons))
    frame["nps_reasons"] = predict._text(pa.array(["[]", reasons[0]]))
    as_of = dt.datetime(2026, 6, 30, 12, 0)
    scores = predict.Scores(as_of, frame, predict.MODEL_VERSION, "fs-test", 7)
    with engine.begin() as conn:
        facts.replace_predictions(conn, [{
            "customer_id": "old", "churn_risk": 0.9, "predicted_nps": 1.0, "reasons": [],
            "nps_reasons": [], "model_version": "m0", "feature_set": "fs-0", "seed": 1,
            "as_of": as_of.replace(tzinfo=dt.UTC), "scored_at": as_of.replace(tzinfo=dt.UTC),
        }])  # fmt: skip
        assert service.store_scores(conn, scores) == 2
    with engine.connect() as conn:
        got = {r["customer_id"]: r for r in conn.execute(
            sa.select(facts.customer_predictions)).mappings()}  # fmt: skip
        one = facts.prediction_for(conn, "c-1")
    assert set(got) == {"c-1", "c-2"}  # the previous run's rows are replaced
    assert one is not None and one["reasons"] == json.loads(reasons[0])
    assert one["reasons"][1]["value"] == 'small "business"'
    assert one["churn_risk"] == pytest.approx(0.61) and one["predicted_nps"] == pytest.approx(6.5)
    assert got["c-2"]["predicted_nps"] is None and got["c-2"]["reasons"] == []
    assert got["c-2"]["nps_reasons"] == json.loads(reasons[0])
    assert one["as_of"] == as_of.replace(tzinfo=dt.UTC) and one["feature_set"] == "fs-test"
    assert one["seed"] == 7 and one["model_version"] == predict.MODEL_VERSION

"""The attribution models against independent implementations, and their refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from cxm.errors import Invalid
from cxm.insights.attribution import design, fit_churn, fit_nps, fit_score


def _customers(n: int = 600, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "late_delivery": (rng.random(n) < 0.3).astype(int),
        "long_wait": (rng.random(n) < 0.2).astype(int),
        "never": 0,
        "segment": rng.choice(["consumer", "small_business", "enterprise"], n, p=[.7, .2, .1]),
        "tenure_months": rng.integers(0, 60, n).astype(str),
    })  # fmt: skip
    logit = -2 + 0.8 * frame.late_delivery + 0.4 * frame.long_wait
    frame["churned"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame["nps"] = np.clip(np.round(8 - 2 * frame.late_delivery + rng.normal(0, 1.5, n)), 0, 10)
    return frame


def _sklearn_design(frame: pd.DataFrame) -> np.ndarray:
    return np.column_stack([
        frame.late_delivery, frame.long_wait,
        frame.segment == "enterprise", frame.segment == "small_business",
        frame.tenure_months.astype(float),
    ]).astype(float)  # fmt: skip


def test_churn_effects_and_extra_churned_match_scikit_learn() -> None:
    frame = _customers()
    fits = fit_churn(frame, ["late_delivery", "long_wait", "never"])
    model = LogisticRegression(C=np.inf, max_iter=5000, tol=1e-10)
    x = _sklearn_design(frame)
    model.fit(x, frame.churned)
    assert fits["late_delivery"]["effect"] == pytest.approx(model.coef_[0][0], abs=1e-4)
    assert fits["long_wait"]["effect"] == pytest.approx(model.coef_[0][1], abs=1e-4)
    met = x[x[:, 0] == 1]
    without = met.copy()
    without[:, 0] = 0
    extra = (model.predict_proba(met)[:, 1] - model.predict_proba(without)[:, 1]).sum()
    assert fits["late_delivery"]["extra_churned"] == pytest.approx(extra, rel=1e-4)


def test_a_signal_nobody_met_is_left_out_of_the_model_not_an_error() -> None:
    frame = _customers()
    assert "never" not in fit_nps(frame, ["late_delivery", "long_wait", "never"])
    assert "never" not in fit_churn(frame, ["late_delivery", "long_wait", "never"])


def test_rows_without_control_traits_are_left_out() -> None:
    frame = _customers()
    full = fit_nps(frame, ["late_delivery"])
    damaged = pd.concat([frame, frame.head(50).assign(segment=None, nps=0, late_delivery=0)])
    again = fit_nps(damaged, ["late_delivery"])
    assert again["late_delivery"] == pytest.approx(full["late_delivery"])


def test_too_few_answers_are_refused_with_a_message() -> None:
    with pytest.raises(Invalid, match="attribution needs at least 30"):
        fit_nps(_customers().head(20), ["late_delivery"])
    with pytest.raises(Invalid, match="some of them churned"):
        fit_churn(_customers().assign(churned=0), ["late_delivery"])


def test_a_customers_repeated_answers_do_not_narrow_the_interval() -> None:
    frame = _customers().assign(customer_id=lambda f: [f"c{i}" for i in range(len(f))])
    once = fit_nps(frame, ["late_delivery"])["late_delivery"]
    twice = fit_nps(pd.concat([frame, frame]), ["late_delivery"])["late_delivery"]
    assert twice["effect"] == pytest.approx(once["effect"])
    width = {k: f["ci_high"] - f["ci_low"] for k, f in (("once", once), ("twice", twice))}
    # Answers counted twice carry no new information: a naive interval would shrink by 1/√2.
    assert width["twice"] == pytest.approx(width["once"], rel=0.05)


def test_score_effects_match_least_squares_and_hc3_by_hand() -> None:
    """fit_score against numpy's least squares and the HC3 sandwich written out (MacKinnon &
    White 1985): (X'X)^-1 X' diag(e^2 / (1 - h)^2) X (X'X)^-1."""
    frame = _customers().assign(value=lambda f: 4 - 1.5 * f.late_delivery)
    frame["value"] = frame["value"] + np.random.default_rng(9).normal(0, 1, len(frame))
    keys = ["late_delivery", "long_wait"]
    got = fit_score(frame, keys)
    x = design(frame, keys)
    beta, *_ = np.linalg.lstsq(x.to_numpy(), frame.value.to_numpy(), rcond=None)
    xtx = np.linalg.inv(x.T.to_numpy() @ x.to_numpy())
    resid = frame.value.to_numpy() - x.to_numpy() @ beta
    h = np.einsum("ij,jk,ik->i", x.to_numpy(), xtx, x.to_numpy())
    meat = x.T.to_numpy() @ np.diag(resid**2 / (1 - h) ** 2) @ x.to_numpy()
    se = np.sqrt(np.diag(xtx @ meat @ xtx))
    for i, k in enumerate(x.columns):
        if k in keys:
            assert got[k]["effect"] == pytest.approx(beta[i])
            half = (got[k]["ci_high"] - got[k]["ci_low"]) / 2
            assert half == pytest.approx(1.959964 * se[i], rel=1e-4)

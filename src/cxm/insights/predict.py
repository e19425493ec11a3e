"""Churn risk and predicted NPS for every customer, with the three reasons that weigh most.

Features are computed by Ibis on the engine (``cxm.insights.analytics.features_at``): the
signals a customer met and how active they were in the window before a cut-off, plus their
traits. The models fit with scikit-learn on that one-row-per-customer table:

* churn: logistic regression (L2, ``C=1``) on one-hot categorical traits and standardised
  numbers; trained on every customer with a lifecycle, each cut off ``lead_hours`` before their
  reference time (their cancellation, else the end of the log), so nothing observed after the
  prediction date (the silence after a cancellation, the cancellation flow itself) is a feature;
* predicted NPS: ridge regression (``alpha=1``) of the 0-10 score of each customer answer on
  the same features, cut off when the answer was given.

Reasons are the model's own contributions: for a linear model, feature ``j`` contributes
``w_j (x_j - mean_j)`` to the log-odds (or to the score), the exact SHAP value of a linear
model with independent features (Lundberg & Lee 2017, "A unified approach to interpreting model
predictions", section 4.1); a categorical trait's one-hot columns are summed into one reason.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
from ibis.backends import BaseBackend

from cxm.errors import Invalid
from cxm.insights import analytics
from cxm.insights.definitions import Signal

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

# scikit-learn is imported where a model is fitted, so the web app and the CLI start without it.

TRAITS = ("segment", "plan", "region", "tenure_months")
WINDOW_DAYS = 365  # a churn decision remembers a year of experience
LEAD_HOURS = 1  # features stop this long before a cancellation (the cancellation flow)
HOLDOUT = 0.3
SEED = 7
MODEL_VERSION = "churn-logit-l2-1/nps-ridge-1"
MIN_ROWS = 50


@dataclass
class Features:
    """A feature table and what its columns are."""

    frame: pd.DataFrame  # one row per point: key, customer_id, features (and the target)
    signals: list[str]
    numeric: list[str]  # numeric columns (signals, activity, numeric traits)
    categorical: list[str]  # text traits
    version: str  # the feature set: a hash of its definition


@dataclass
class Evaluation:
    """Holdout figures of the churn and NPS models."""

    rows: int
    churned: int
    holdout: int
    auc: float
    brier: float
    base_rate: float  # churn rate in the holdout (the Brier of a constant guess is r(1-r))
    calibration: list[dict[str, float]]  # per risk bin: mean predicted, observed, customers
    nps_rows: int = 0
    nps_mae: float | None = None  # 0-10 points on the holdout answers
    nps_r2: float | None = None
    model_version: str = MODEL_VERSION
    feature_set: str = ""
    seed: int = SEED
    coefficients: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def feature_version(
    signals: Sequence[Signal], traits: Sequence[str], window_days: int, lead_hours: int
) -> str:
    """A short hash of everything that defines the features (signal conditions included)."""
    spec = {
        "signals": sorted((s.key, s.when, s.touchpoints) for s in signals),
        "traits": list(traits),
        "window_days": window_days,
        "lead_hours": lead_hours,
    }
    return "fs-" + hashlib.sha256(json.dumps(spec, default=list).encode()).hexdigest()[:10]


def _numeric_trait(values: pd.Series) -> bool:
    present = values.dropna()
    return bool(len(present)) and bool(pd.to_numeric(present, errors="coerce").notna().all())


def features(
    con: BaseBackend,
    points: Any,
    signals: Sequence[Signal],
    traits: Sequence[str] = TRAITS,
    window_days: int = WINDOW_DAYS,
    lead_hours: int = LEAD_HOURS,
    exclude: Sequence[str] = (),
) -> Features:
    """The feature table for ``points`` (an Ibis table ``key, customer_id, cutoff, ...``)."""
    f = analytics.features_at(con, points, signals, window_days, exclude)
    base = points.rename(_k="key")
    j = base.join(f, base._k == f.key).drop("_k")
    t = analytics.with_controls(j, con, traits)
    frame: pd.DataFrame = t.execute()
    keys = [s.key for s in signals]
    numeric = [*keys, "events_per_30d"]
    categorical = []
    for name in traits:
        if _numeric_trait(frame[name]):
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
            numeric.append(name)
        else:
            frame[name] = frame[name].astype(object).where(frame[name].notna(), "(none)")
            categorical.append(name)
    frame = frame.sort_values("key").reset_index(drop=True)
    version = feature_version(signals, traits, window_days, lead_hours)
    return Features(frame, keys, numeric, categorical, version)


def _pipeline(fs: Features, model: Any) -> Pipeline:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = ColumnTransformer(
        [
            (
                "num",
                Pipeline([("fill", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                fs.numeric,
            ),
            ("cat", OneHotEncoder(handle_unknown="ignore"), fs.categorical),
        ],
        sparse_threshold=0.0,
    )
    return Pipeline([("prep", prep), ("model", model)])


def churn_model(fs: Features, seed: int = SEED) -> Pipeline:
    """An unfitted churn pipeline over ``fs``'s columns (logistic regression, L2, C=1)."""
    from sklearn.linear_model import LogisticRegression

    return _pipeline(fs, LogisticRegression(C=1.0, max_iter=2000, random_state=seed))


def nps_model(fs: Features) -> Pipeline:
    """An unfitted predicted-NPS pipeline over ``fs``'s columns (ridge regression, alpha=1)."""
    from sklearn.linear_model import Ridge

    return _pipeline(fs, Ridge(alpha=1.0))


def split(y: pd.Series, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of the training and holdout sets (30% held out, stratified on ``y``)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    strat = y if y.nunique() == 2 else None
    train, test = train_test_split(idx, test_size=HOLDOUT, random_state=seed, stratify=strat)
    return np.sort(train), np.sort(test)


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 5) -> list[dict[str, float]]:
    """Risk bins of equal size: mean predicted risk, observed churn rate and customers in each
    (``sklearn.calibration.calibration_curve`` with the quantile strategy)."""
    from sklearn.calibration import calibration_curve

    observed, predicted = calibration_curve(y, p, n_bins=bins, strategy="quantile")
    edges = np.quantile(p, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges[1:-1], p, side="right"), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    counts = counts[counts > 0][: len(observed)]
    return [
        {"predicted": float(a), "observed": float(b), "customers": int(c)}
        for a, b, c in zip(predicted, observed, counts, strict=False)
    ]


def evaluate(churn: Features, nps: Features | None, seed: int = SEED) -> Evaluation:
    """Fit on 70% of the customers, report on the 30% held out: ROC AUC, Brier score and the
    calibration table for churn; mean absolute error and R² for predicted NPS.

    Errors: ``Invalid`` when fewer than 50 customers, or no churner / no stayer, are there.
    """
    from sklearn.metrics import brier_score_loss, mean_absolute_error, r2_score, roc_auc_score

    x, y = churn.frame, churn.frame["churned"].astype(int)
    if len(x) < MIN_ROWS or not 0 < y.sum() < len(y):
        raise Invalid(
            f"{len(x)} customers, {int(y.sum())} churned: training needs at least {MIN_ROWS} "
            "customers with a lifecycle, some of them churned (docs/insights.md)"
        )
    train, test = split(y, seed)
    model = churn_model(churn, seed).fit(x.iloc[train], y.iloc[train])
    p = model.predict_proba(x.iloc[test])[:, 1]
    yt = y.iloc[test].to_numpy()
    result = Evaluation(
        rows=len(x),
        churned=int(y.sum()),
        holdout=len(test),
        auc=float(roc_auc_score(yt, p)),
        brier=float(brier_score_loss(yt, p)),
        base_rate=float(yt.mean()),
        calibration=calibration_table(yt, p),
        feature_set=churn.version,
        seed=seed,
        coefficients=dict(zip(_names(model), map(float, model[-1].coef_[0]), strict=True)),
    )
    if nps is not None and len(nps.frame) >= MIN_ROWS:
        xn, yn = nps.frame, nps.frame["nps"].astype(float)
        tr, te = split(yn, seed)
        m = nps_model(nps).fit(xn.iloc[tr], yn.iloc[tr])
        guess = m.predict(xn.iloc[te])
        result.nps_rows = len(xn)
        result.nps_mae = float(mean_absolute_error(yn.iloc[te], guess))
        result.nps_r2 = float(r2_score(yn.iloc[te], guess))
    return result


def _names(model: Pipeline) -> list[str]:
    return [str(n).split("__", 1)[1] for n in model[0].get_feature_names_out()]


def contributions(
    model: Pipeline, frame: pd.DataFrame, fs: Features, z: np.ndarray | None = None
) -> pd.DataFrame:
    """Each row's contribution of each feature to the model's output (log-odds for churn,
    score points for NPS): ``w_j (x_j - mean_j)`` on the transformed columns, with a categorical
    trait's one-hot columns summed. Columns: ``fs.numeric + fs.categorical``; each row sums to
    the output minus the output at the mean of the training columns. ``z``: ``frame`` already
    transformed by the model's first step (to transform a large frame once)."""
    if z is None:
        z = model[0].transform(frame)
    names = _names(model)
    mean = _train_mean(model)
    coef = np.atleast_2d(model[-1].coef_)[0]
    parts = (z - mean) * coef
    out = {}
    for name in fs.numeric:
        out[name] = parts[:, names.index(name)]
    for name in fs.categorical:
        cols = [i for i, n in enumerate(names) if n.startswith(f"{name}_")]
        out[name] = parts[:, cols].sum(axis=1)
    return pd.DataFrame(out, index=frame.index)


def _train_mean(model: Pipeline) -> np.ndarray:
    mean = getattr(model, "_cxm_train_mean", None)
    if mean is None:
        raise Invalid("the model was not fitted with fit_with_mean")
    return np.asarray(mean)


def fit_with_mean(model: Pipeline, x: pd.DataFrame, y: pd.Series) -> Pipeline:
    """Fit ``model`` and remember the mean of its transformed training columns (the baseline
    that contributions are measured from)."""
    model.fit(x, y)
    model._cxm_train_mean = model[0].transform(x).mean(axis=0)
    return model


def reasons(
    parts: pd.DataFrame, labels: dict[str, str], frame: pd.DataFrame, sign: int, top: int = 3
) -> list[list[dict[str, Any]]]:
    """Per row, the ``top`` features pushing the output in the direction ``sign`` (+1: towards
    churn; -1: towards a lower score), largest first: ``{feature, label, value, contribution}``.
    Features that push the other way are never reasons. (``reasons_json`` read back: for a few
    rows; scoring keeps the JSON text.)"""
    return [json.loads(text) for text in reasons_json(parts, labels, frame, sign, top).to_pylist()]


def reasons_json(
    parts: pd.DataFrame, labels: dict[str, str], frame: pd.DataFrame, sign: int, top: int = 3
) -> pa.StringArray:
    """``reasons`` as one JSON text per row (an Arrow array, as the store takes it).

    Everything is done on whole columns: the ranking in numpy, the text in Arrow (a value or
    a contribution as its shortest exact decimal, a whole number without a fraction), so a
    million customers' reasons take no Python object per row."""
    import pyarrow.compute as pc

    cols = list(parts.columns)
    n, k = len(parts), min(top, len(cols))
    if k == 0:
        return pa.array(["[]"] * n, pa.string())
    values = parts.to_numpy(float) * sign
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    pushed = np.take_along_axis(values, order, axis=1)
    counts = (pushed > 0).sum(axis=1)  # sorted: the positive ones come first
    numeric = [pd.api.types.is_numeric_dtype(frame[c])
               and not pd.api.types.is_bool_dtype(frame[c]) for c in cols]  # fmt: skip
    raw = np.column_stack(
        [frame[c].to_numpy(float) if numeric[j] else np.zeros(n) for j, c in enumerate(cols)]
    )
    # A categorical value as JSON text: its distinct values encoded once, then picked by code.
    coded: dict[int, pa.Array] = {}
    for j, c in enumerate(cols):
        if not numeric[j]:
            codes, uniques = pd.factorize(frame[c].to_numpy(object), use_na_sentinel=False)
            texts = pa.array([json.dumps(u) for u in uniques], pa.string())
            coded[j] = texts.take(pa.array(codes))
    heads = pa.array(
        [f'{{"feature": {json.dumps(c)}, "label": {json.dumps(labels.get(c, c))}, "value": '
         for c in cols], pa.string()
    )  # fmt: skip
    rows = np.arange(n)
    parts_text: list[pa.Array | str] = ["["]
    for pos in range(k):
        at = order[:, pos]
        chosen = np.round(raw[rows, at], 3)
        value = pc.cast(pa.array(chosen, mask=np.isnan(chosen)), pa.string())
        for col, texts in coded.items():
            here = at == col
            if here.any():
                value = pc.if_else(pa.array(here), texts, value)
        value = pc.fill_null(value, "null")
        contribution = pc.cast(pa.array(np.round(pushed[:, pos] * sign, 4)), pa.string())
        piece = pc.binary_join_element_wise(
            heads.take(pa.array(at)), value, ', "contribution": ', contribution, "}", ""
        )
        # Reasons past a row's count are empty text (not null: every row keeps its place).
        shown = pa.array(pos < counts)
        if pos:
            parts_text.append(pc.if_else(shown, ", ", ""))
        parts_text.append(pc.if_else(shown, piece, ""))
    parts_text.append("]")
    return pc.binary_join_element_wise(*parts_text, "")


def labels_for(signals: Sequence[Signal]) -> dict[str, str]:
    """A reader's label for every feature name."""
    out = {s.key: s.label for s in signals}
    out["events_per_30d"] = "Activity (events per 30 days)"
    out.update({"tenure_months": "Tenure", "segment": "Segment", "plan": "Plan",
                "region": "Region"})  # fmt: skip
    return out


@dataclass
class Scores:
    """Scores for every customer who has not churned."""

    as_of: dt.datetime
    # customer_id, churn_risk, predicted_nps, and reasons, nps_reasons: JSON text (read one
    # with ``reasons_at``)
    frame: pd.DataFrame
    model_version: str
    feature_set: str
    seed: int


def score(
    churn: Features,
    nps: Features | None,
    current: Features,
    signals: Sequence[Signal],
    as_of: dt.datetime,
    seed: int = SEED,
) -> Scores:
    """Fit both models on every training row and score ``current`` (one row per customer):
    churn risk (0-1), predicted NPS (0-10, clipped), and three reasons for each."""
    y = churn.frame["churned"].astype(int)
    if len(churn.frame) < MIN_ROWS or not 0 < y.sum() < len(y):
        raise Invalid(
            f"{len(churn.frame)} customers, {int(y.sum())} churned: scoring needs at least "
            f"{MIN_ROWS} customers with a lifecycle, some of them churned (docs/insights.md)"
        )
    labels = labels_for(signals)
    cm = fit_with_mean(churn_model(churn, seed), churn.frame, y)
    x = current.frame
    out = pd.DataFrame({"customer_id": x["customer_id"].to_numpy()})
    # Each model's preparation runs once over the customers, for its output and its reasons.
    z = cm[0].transform(x)
    out["churn_risk"] = cm[-1].predict_proba(z)[:, 1]
    out["reasons"] = _text(reasons_json(contributions(cm, x, churn, z), labels, x, +1))
    if nps is not None and len(nps.frame) >= MIN_ROWS:
        nm = fit_with_mean(nps_model(nps), nps.frame, nps.frame["nps"].astype(float))
        z = nm[0].transform(x)
        out["predicted_nps"] = np.clip(nm[-1].predict(z), 0.0, 10.0)
        out["nps_reasons"] = _text(reasons_json(contributions(nm, x, nps, z), labels, x, -1))
    else:
        out["predicted_nps"] = np.nan
        out["nps_reasons"] = _text(pa.array(["[]"] * len(out), pa.string()))
    return Scores(as_of, out, MODEL_VERSION, churn.version, seed)


def _text(values: pa.Array) -> pd.Series:
    """An Arrow string array as a pandas column without a Python object per row."""
    return pd.Series(pd.arrays.ArrowExtensionArray(values))


def reasons_at(scores: Scores, column: str, row: int) -> list[dict[str, Any]]:
    """The reasons (``column``: ``reasons`` or ``nps_reasons``) of the customer at position
    ``row`` of ``scores.frame``."""
    found: list[dict[str, Any]] = json.loads(scores.frame[column].iloc[row])
    return found

"""Key driver analysis: how much of an outcome each signal, theme and survey attribute explains,
shown as the importance x performance quadrant.

Importance is Johnson's relative weight (Johnson 2000, "A heuristic method for estimating the
relative weight of predictor variables in multiple regression", Multivariate Behavioral
Research 35(1)): the predictors are replaced by their closest orthogonal counterparts, the
outcome is regressed on those, and each predictor is given back its share through the
loadings. The weights are non-negative, **sum to the model's R²** and approximate the Shapley
decomposition of R² (Lindeman, Merenda & Gold 1980; Grömping 2007) at a fraction of its cost
(one eigen decomposition instead of 2^p regressions). Intervals are percentile bootstrap
intervals over rows (Tonidandel, LeBreton & Johnson 2009). For churn (0/1) the weights are
those of the linear probability model: the share of the variance in churn each driver explains.

Performance is the mean outcome among the rows where the driver is present (the mean score of
answers whose customer met a signal, or whose comment had a theme; the retention rate for
churn), beside the mean of all rows; for a survey attribute, its mean answer scaled to 0-1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from ibis.backends import BaseBackend

from cxm.errors import Invalid
from cxm.insights import analytics
from cxm.insights import attribution as attr
from cxm.insights.definitions import Signal
from cxm.metrics.definitions import Lifecycle

Outcome = Literal["nps", "csat", "churn"]
OUTCOMES = ("nps", "csat", "churn")
BOOTSTRAP = 200
SEED = 7
MIN_ROWS = 30


def relative_weights(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Johnson's relative weights of the columns of ``x`` (n x p) for ``y`` (n).

    Returns ``(weights, r2)``: p non-negative weights that sum to ``r2``, the R² of the
    least-squares regression of ``y`` on ``x`` with an intercept. Columns must vary; ``Invalid``
    when one is constant or a column is an exact combination of others.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if x.ndim != 2 or len(x) != len(y) or len(y) < 3:
        raise Invalid("relative weights need a 2-d x with one row per y, at least 3 rows")
    sx, sy = x.std(axis=0), y.std()
    if (sx == 0).any() or sy == 0:
        raise Invalid("relative weights need every predictor and the outcome to vary")
    rxx = np.corrcoef(x, rowvar=False).reshape(x.shape[1], x.shape[1])
    rxy = ((x - x.mean(axis=0)) * (y - y.mean())[:, None]).mean(axis=0) / (sx * sy)
    values, vectors = np.linalg.eigh(rxx)
    if values.min() <= 1e-10:
        raise Invalid("relative weights: some predictors are exact combinations of others")
    # Lambda: correlations between the predictors and their orthogonal counterparts Z.
    lam = vectors @ np.diag(np.sqrt(values)) @ vectors.T
    beta = np.linalg.solve(lam, rxy)  # the standardised regression of y on Z
    weights = (lam**2) @ (beta**2)
    return weights, float((beta**2).sum())


def shapley_r2(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The Shapley (LMG) decomposition of R² by brute force over all 2^p subsets; for checking
    ``relative_weights`` on small p (each weight is the mean gain in R² over orderings)."""
    from itertools import combinations
    from math import factorial

    x, y = np.asarray(x, float), np.asarray(y, float)
    n, p = x.shape

    def r2(cols: tuple[int, ...]) -> float:
        if not cols:
            return 0.0
        a = np.column_stack([np.ones(n), x[:, list(cols)]])
        coef, *_ = np.linalg.lstsq(a, y, rcond=None)
        resid = y - a @ coef
        return 1.0 - float(resid @ resid) / float(((y - y.mean()) ** 2).sum())

    cache = {s: r2(s) for k in range(p + 1) for s in combinations(range(p), k)}
    out = np.zeros(p)
    for j in range(p):
        others = [i for i in range(p) if i != j]
        for k in range(p):
            w = factorial(k) * factorial(p - k - 1) / factorial(p)
            for s in combinations(others, k):
                out[j] += w * (cache[tuple(sorted((*s, j)))] - cache[s])
    return out


@dataclass
class Driver:
    """One driver's importance and performance."""

    key: str  # the column: a signal key, theme_<key> or attr_<question>
    kind: str  # signal | theme | attribute
    label: str
    department: str | None  # the owner of a signal's touchpoints; None for themes, attributes
    present: int  # rows where the driver is present (met, tagged, answered)
    importance: float  # raw relative weight: the share of the outcome's variance, 0-1
    importance_low: float  # 95% bootstrap interval
    importance_high: float
    share: float  # importance / R², 0-1
    direction: float  # sign of the driver's standardised regression coefficient: -1 or +1
    performance: float | None  # mean outcome where present (retention for churn)
    quadrant: str  # fix first | keep | monitor | maintain


@dataclass
class DepartmentImportance:
    """The summed importance of the drivers at a department's touchpoints."""

    key: str
    importance: float
    importance_low: float
    importance_high: float
    drivers: list[str]


@dataclass
class Drivers:
    """A key driver analysis of one outcome."""

    outcome: str
    method: str
    rows: int
    r2: float
    mean_outcome: float
    bootstrap: int
    drivers: list[Driver]
    departments: list[DepartmentImportance] = field(default_factory=list)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


QUADRANTS = {
    (True, False): "fix first",  # important, performing below the mean
    (True, True): "keep",  # important, performing above
    (False, False): "monitor",
    (False, True): "maintain",
}


def analyse(
    frame: pd.DataFrame,
    y_col: str,
    columns: dict[str, tuple[str, str, str | None]],
    bootstrap: int = BOOTSTRAP,
    seed: int = SEED,
    scale: tuple[float, float] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
) -> Drivers:
    """The driver table of ``frame`` for the outcome ``y_col``.

    ``columns``: driver column -> ``(kind, label, department)``; a column that never varies is
    left out. ``bounds``: an attribute column's answer scale (a rating question's min and
    max), else ``scale``, to show its performance on 0-1. Importance intervals come from
    ``bootstrap`` resamples of the rows (numpy generator seeded ``seed``).
    """
    keep = [c for c in columns if frame[c].nunique(dropna=True) > 1]
    if not keep:
        raise Invalid("no driver varies across the rows (nobody met a signal or a theme)")
    if len(frame) < MIN_ROWS:
        raise Invalid(f"only {len(frame)} rows; a driver analysis needs at least {MIN_ROWS}")
    x = frame[keep].astype(float)
    x = x.fillna(x.mean())  # an attribute left unanswered counts as its mean
    y = frame[y_col].astype(float).to_numpy()
    xv = x.to_numpy()
    weights, r2 = relative_weights(xv, y)
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(bootstrap):
        idx = rng.integers(0, len(y), len(y))
        try:
            boot.append(relative_weights(xv[idx], y[idx])[0])
        except Invalid:  # a resample where some driver does not vary: skip it
            continue
    draws = np.array(boot) if boot else weights[None, :]
    low, high = np.percentile(draws, [2.5, 97.5], axis=0)
    z = (xv - xv.mean(axis=0)) / xv.std(axis=0)
    coef, *_ = np.linalg.lstsq(np.column_stack([np.ones(len(y)), z]), y, rcond=None)
    mean_y = float(y.mean())
    mean_w = float(weights.mean())
    drivers = []
    for j, c in enumerate(keep):
        kind, label, dept = columns[c]
        if kind == "attribute":
            vals = x[c].to_numpy()
            known = (bounds or {}).get(c) or scale
            lo, hi = known if known else (float(vals.min()), float(vals.max()))
            perf = float((vals.mean() - lo) / (hi - lo)) if hi > lo else None
            present = int(frame[c].notna().sum())
            above = perf is not None and perf >= 0.5
        else:
            mask = frame[c].astype(float) == 1
            present = int(mask.sum())
            perf = float(y[mask.to_numpy()].mean()) if present else None
            above = perf is not None and perf >= mean_y
        important = bool(weights[j] >= mean_w)
        drivers.append(
            Driver(
                key=c, kind=kind, label=label, department=dept, present=present,
                importance=float(weights[j]), importance_low=float(low[j]),
                importance_high=float(high[j]), share=float(weights[j] / r2) if r2 else 0.0,
                direction=float(np.sign(coef[j + 1])) or 1.0, performance=perf,
                quadrant=QUADRANTS[(important, above)],
            )
        )  # fmt: skip
    drivers.sort(key=lambda d: -d.importance)
    by_dept: dict[str, list[int]] = {}
    for j, c in enumerate(keep):
        for d in (columns[c][2] or "").split(","):
            if d:
                by_dept.setdefault(d, []).append(j)
    departments = []
    for d, cols in by_dept.items():
        sums = draws[:, cols].sum(axis=1)
        departments.append(
            DepartmentImportance(
                key=d,
                importance=float(weights[cols].sum()),
                importance_low=float(np.percentile(sums, 2.5)),
                importance_high=float(np.percentile(sums, 97.5)),
                drivers=[keep[j] for j in cols],
            )
        )
    departments.sort(key=lambda d: -d.importance)
    return Drivers(
        outcome=y_col,
        method="Johnson's relative weights, 95% percentile bootstrap intervals",
        rows=len(y),
        r2=r2,
        mean_outcome=mean_y,
        bootstrap=len(boot),
        drivers=drivers,
        departments=departments,
    )


def drivers(
    con: BaseBackend,
    signals: Sequence[Signal],
    outcome: Outcome = "nps",
    lifecycle: Lifecycle | None = None,
    window_days: int = analytics.WINDOW_DAYS,
    bootstrap: int = BOOTSTRAP,
    seed: int = SEED,
    survey: str | None = None,
    questions: Mapping[str, tuple[str, tuple[float, float] | None]] | None = None,
) -> Drivers:
    """Key drivers of ``outcome``: every usable signal, every theme tagged on survey comments
    and every numeric survey attribute (nps, csat: the other rated questions of the same
    answer, e.g. "How satisfied are you with the delivery speed?"), computed on the engine
    and weighed with ``relative_weights``. ``survey`` (nps, csat): only that survey's answers
    and its rated questions; ``questions``: question id -> (its text, its scale) from the
    survey's definition, for the labels and the attributes' performance.

    Errors: ``Invalid`` for an unknown outcome, a survey with churn, too few rows, or no
    driver that varies.
    """
    if outcome not in OUTCOMES:
        raise Invalid(f"outcome: {outcome!r}; choose one of {', '.join(OUTCOMES)}")
    if survey is not None and outcome == "churn":
        raise Invalid("survey: churn is a customer's outcome, not a survey answer's; "
                      "use --survey with nps or csat")  # fmt: skip
    touchpoint_owner, _ = attr.owners(con)
    usable = attr._usable(signals, touchpoint_owner)
    themes = analytics.theme_keys(con)
    columns: dict[str, tuple[str, str, str | None]] = {
        s.key: ("signal", s.label, attr._owner(s, touchpoint_owner)) for s in usable
    }
    columns.update(
        {f"theme_{k}": ("theme", k.replace("_", " ").capitalize(), None) for k in themes}
    )
    bounds: dict[str, tuple[float, float]] = {}
    if outcome in ("nps", "csat"):
        t = analytics.answer_signals(con, usable, window_days, survey, score=outcome)
        if themes:
            th = analytics.answer_themes(con, themes).rename(_rid="response_id")
            t = t.left_join(th, t.response_id == th._rid).drop("_rid")
        exclude = ["nps", "csat", "ces", "hidden"]
        found = analytics.attribute_questions(con, exclude, survey)
        if found:
            at = analytics.answer_attributes(con, found).rename(_rid="response_id")
            t = t.left_join(at, t.response_id == at._rid).drop("_rid")
            known = questions or {}
            columns.update(
                {f"attr_{q}": ("attribute", known[q][0] if q in known else q, None)
                 for q in found}
            )  # fmt: skip
            bounds = {f"attr_{q}": b for q, (_, b) in known.items() if b is not None}
        y_col: str = outcome
        scale: tuple[float, float] | None = (0.0, 10.0) if outcome == "nps" else (1.0, 5.0)
    else:
        if lifecycle is None:
            raise Invalid("churn needs the customer lifecycle (the metrics files define it)")
        end = analytics.log_end(con)
        t = analytics.customer_signals(con, usable, lifecycle, end, window_days)
        if themes:
            pts = analytics.customer_outcomes(con, lifecycle, end)
            pts = pts.select(key=pts.customer_id, customer_id=pts.customer_id,
                             cutoff=pts.reference_time)  # fmt: skip
            th = analytics.customer_themes(con, pts, themes, window_days).rename(_k="key")
            t = t.left_join(th, t.customer_id == th._k).drop("_k")
        t = t.mutate(retained=1 - t.churned)
        y_col, scale = "retained", None
    frame: pd.DataFrame = t.execute()
    for c in columns:
        if c.startswith("theme_") and c in frame:
            frame[c] = frame[c].fillna(0)
    result = analyse(frame, y_col, {c: v for c, v in columns.items() if c in frame},
                     bootstrap, seed, scale, bounds)  # fmt: skip
    result.outcome = outcome
    if outcome == "churn":
        result.note = "performance is the retention rate (1 - churn) of those with the driver"
    return result

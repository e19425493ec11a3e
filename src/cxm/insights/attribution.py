"""Department attribution: what each signal, and so each department, costs in NPS and churn.

The features come from Ibis (``cxm.insights.analytics``); the models fit with statsmodels on
that aggregated table (one row per answer, or per customer), never on raw log rows:

* NPS: ordinary least squares of the 0-10 score on every signal (0/1), with the customer's
  segment (categorical) and tenure in months as controls, and heteroskedasticity-robust (HC3)
  standard errors (MacKinnon & White 1985), clustered by customer when a customer answered
  more than once. The coefficient of a signal is the change in the
  expected score, in points of the 0-10 scale, for an answer whose customer met it. The same
  model on the NPS value of each answer (+100 promoter, 0 passive, -100 detractor) gives the
  effect in NPS points.
* Churn: logistic regression (maximum likelihood) of churned (0/1) on the same features,
  robust (HC0) standard errors. The coefficient is a change in log-odds; "extra churned" is
  the sum, over the customers who met the signal, of their fitted churn probability minus the
  probability with that signal set to 0.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from ibis.backends import BaseBackend

from cxm.errors import Invalid
from cxm.insights import analytics
from cxm.insights.definitions import Signal
from cxm.metrics.definitions import Lifecycle, Metric
from cxm.org import facts as org_facts

Outcome = str  # "nps", "churn", or the name of a metric of survey answers
OUTCOMES = ("nps", "churn")
ESTIMATORS = {
    "nps": "OLS, HC3 robust standard errors (clustered by customer for repeated answers)",
    "churn": "logistic regression (MLE), HC0 robust standard errors",
    "metric": "OLS of each answer's value (a linear probability model in % points for a %), "
    "HC3 robust standard errors (clustered by customer for repeated answers)",
}
MIN_ROWS = 30  # fewer rows than this cannot carry a regression with controls


@dataclass
class SignalEffect:
    """One signal's effect on an outcome, its reach, the plain difference and its owner."""

    key: str
    label: str
    touchpoints: list[str]
    department: str | None  # owner of the touchpoints (comma-joined when several)
    team: str | None  # the owning team(s) of the touchpoints, comma-joined
    department_name: str | None
    met: int  # answers (nps) or customers (churn) that met the signal
    reach: float  # met / rows analysed
    effect: float | None  # score points (nps) or log-odds (churn); None when not estimable
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    mean_met: float | None  # mean score (nps) or churn rate (churn) of those who met it
    mean_not_met: float | None
    difference: float | None  # mean_met - mean_not_met, the check a reader can redo by hand
    cost: float | None  # nps: -effect x reach (score points lost); churn: extra churned
    nps_points: float | None = None  # nps only: effect on NPS (-100..100) with its interval
    nps_points_low: float | None = None
    nps_points_high: float | None = None
    note: str = ""


@dataclass
class DepartmentCost:
    """What the signals at a department's touchpoints cost, summed."""

    key: str
    name: str
    signals: list[str]
    cost: float  # the sum of its signals' cost (0 when it has none)
    note: str = ""


@dataclass
class Attribution:
    """The attribution of one outcome to signals and departments."""

    outcome: str
    estimator: str
    window_days: int
    rows: int  # answers (nps) or customers (churn) in the model
    controls: list[str]
    signals: list[SignalEffect]
    departments: list[DepartmentCost] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- models on a feature table -------------------------------------------------------------


def design(frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """The regressors: a constant, the signals (0/1), segment dummies (the most common
    segment is the reference) and tenure in months. Rows without a segment or a numeric tenure
    are left out (complete cases)."""
    tenure = pd.to_numeric(frame["tenure_months"], errors="coerce")
    keep = frame["segment"].notna() & tenure.notna()
    f = frame[keep]
    x = f[list(keys)].astype(float)
    segments = f["segment"].astype(str)
    if segments.nunique() > 1:
        reference = segments.value_counts().index[0]
        dummies = pd.get_dummies(segments, prefix="segment", dtype=float)
        x = pd.concat([x, dummies.drop(columns=f"segment_{reference}")], axis=1)
    x["tenure_months"] = tenure[keep].astype(float)
    return sm.add_constant(x, has_constant="add")


def _estimable(frame: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    # A signal nobody (or everybody) met has no contrast to estimate.
    return [k for k in keys if 0 < frame[k].sum() < len(frame)]


def _number(value: Any) -> float | None:
    v = float(value)
    return None if math.isnan(v) else v


def _robust(frame: pd.DataFrame) -> dict[str, Any]:
    """HC3 errors for one answer per customer; errors clustered by customer (CR1) when some
    customers answered more than once, since their answers are not independent."""
    if "customer_id" in frame and frame["customer_id"].duplicated().any():
        groups = pd.factorize(frame["customer_id"])[0]
        return {"cov_type": "cluster", "cov_kwds": {"groups": groups}}
    return {"cov_type": "HC3"}


def fit_nps(frame: pd.DataFrame, keys: Sequence[str]) -> dict[str, dict[str, float | None]]:
    """OLS of ``nps`` (0-10) on the signals and controls, HC3 errors (clustered by
    ``customer_id`` when the frame has it and a customer answered more than once).

    ``frame``: one row per answer with ``nps``, the 0/1 signal columns ``keys``, ``segment``
    and ``tenure_months``. Returns per estimable key: ``effect, ci_low, ci_high, p_value``
    (score points, 95% interval) and ``nps_points, nps_points_low, nps_points_high`` (the
    same model on +100/0/-100 per answer).
    """
    frame = frame.reset_index(drop=True)
    x = design(frame, keys)
    y = frame.loc[x.index, "nps"].astype(float)
    est = _estimable(frame.loc[x.index], keys)
    if len(x) < MIN_ROWS:
        raise Invalid(
            f"only {len(x)} answers with an NPS score and the control traits; "
            f"attribution needs at least {MIN_ROWS}"
        )
    x = x.drop(columns=[k for k in keys if k not in est])
    robust = _robust(frame.loc[x.index])
    score = sm.OLS(y, x).fit(**robust)
    index = np.where(y >= 9, 100.0, np.where(y <= 6, -100.0, 0.0))
    points = sm.OLS(index, x).fit(**robust)
    ci, ci_points = score.conf_int(0.05), points.conf_int(0.05)
    return {
        k: {
            "effect": _number(score.params[k]),
            "ci_low": _number(ci.loc[k, 0]),
            "ci_high": _number(ci.loc[k, 1]),
            "p_value": _number(score.pvalues[k]),
            "nps_points": _number(points.params[k]),
            "nps_points_low": _number(ci_points.loc[k, 0]),
            "nps_points_high": _number(ci_points.loc[k, 1]),
        }
        for k in est
    }


def fit_score(frame: pd.DataFrame, keys: Sequence[str],
              column: str = "value") -> dict[str, dict[str, float | None]]:  # fmt: skip
    """OLS of ``column`` (a metric's per-answer value: a 1-5 or 1-7 answer, or 100/0 for a
    %) on the signals and controls, HC3 errors (clustered by ``customer_id`` when a customer
    answered more than once). Returns per estimable key ``effect, ci_low, ci_high, p_value``
    in the metric's unit (95% interval)."""
    frame = frame.reset_index(drop=True)
    x = design(frame, keys)
    y = frame.loc[x.index, column].astype(float)
    est = _estimable(frame.loc[x.index], keys)
    if len(x) < MIN_ROWS:
        raise Invalid(
            f"only {len(x)} answers with a value and the control traits; "
            f"attribution needs at least {MIN_ROWS}"
        )
    x = x.drop(columns=[k for k in keys if k not in est])
    fit = sm.OLS(y, x).fit(**_robust(frame.loc[x.index]))
    ci = fit.conf_int(0.05)
    return {
        k: {
            "effect": _number(fit.params[k]),
            "ci_low": _number(ci.loc[k, 0]),
            "ci_high": _number(ci.loc[k, 1]),
            "p_value": _number(fit.pvalues[k]),
        }
        for k in est
    }


def fit_churn(frame: pd.DataFrame, keys: Sequence[str]) -> dict[str, dict[str, float | None]]:
    """Logistic regression of ``churned`` (0/1) on the signals and controls, HC0 errors.

    Returns per estimable key: ``effect, ci_low, ci_high, p_value`` (log-odds, 95% interval)
    and ``extra_churned`` (customers: the sum over those who met it of p - p without it).
    When ``frame`` has ``annual_revenue``, the key ``_revenue`` maps each signal to the same
    sum weighted by each customer's annual revenue (the revenue its extra churn takes).
    """
    frame = frame.reset_index(drop=True)
    x = design(frame, keys)
    y = frame.loc[x.index, "churned"].astype(float)
    est = _estimable(frame.loc[x.index], keys)
    if len(x) < MIN_ROWS or not 0 < y.sum() < len(y):
        raise Invalid(
            f"{len(x)} customers, {int(y.sum())} churned: churn attribution needs at "
            f"least {MIN_ROWS} customers with the control traits, some of them churned"
        )
    x = x.drop(columns=[k for k in keys if k not in est])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; the result is checked below
        model = sm.Logit(y, x).fit(disp=0, cov_type="HC0", maxiter=200)
    ci = model.conf_int(0.05)
    out: dict[str, dict[str, float | None]] = {}
    for k in est:
        met = x[x[k] == 1]
        without = met.assign(**{k: 0.0})
        lift = model.predict(met) - model.predict(without)
        extra = float(lift.sum())
        if "annual_revenue" in frame:  # revenue the extra churn takes with it, per year
            revenue = frame.loc[met.index, "annual_revenue"].astype(float).fillna(0.0)
            out.setdefault("_revenue", {})[k] = float((lift * revenue).sum())
        out[k] = {
            "effect": _number(model.params[k]),
            "ci_low": _number(ci.loc[k, 0]),
            "ci_high": _number(ci.loc[k, 1]),
            "p_value": _number(model.pvalues[k]),
            "extra_churned": extra,
        }
    return out


# --- from the store ------------------------------------------------------------------------


def owners(con: BaseBackend) -> tuple[dict[str, str], dict[str, str]]:
    """``(touchpoint -> department key, department key -> name)`` from the org model."""
    tp = org_facts.touchpoints_expr(con).select("key", "department_key").execute()
    dep = con.table(org_facts.departments.name).select("key", "name").execute()
    return dict(zip(tp["key"], tp["department_key"], strict=True)), dict(
        zip(dep["key"], dep["name"], strict=True)
    )


def teams(con: BaseBackend) -> dict[str, str]:
    """``touchpoint -> owning team key`` (touchpoints without a team are left out)."""
    tp = org_facts.touchpoints_expr(con)
    rows = tp.filter(tp.team_key.notnull()).select("key", "team_key").execute()
    return dict(zip(rows["key"], rows["team_key"], strict=True))


def _owner(signal: Signal, touchpoint_owner: dict[str, str]) -> str:
    unknown = [t for t in signal.touchpoints if t not in touchpoint_owner]
    if unknown:
        known = ", ".join(sorted(touchpoint_owner)) or "none"
        raise Invalid(
            f"{signal.source}: signal {signal.key!r} names touchpoint "
            f"{unknown[0]!r}, which does not exist; known: {known}"
        )
    return ",".join(sorted({touchpoint_owner[t] for t in signal.touchpoints}))


def _usable(signals: Sequence[Signal], touchpoint_owner: dict[str, str]) -> list[Signal]:
    """The signals whose touchpoints exist. A shipped default at a touchpoint this company
    lacks is left out (the defaults name the demo company's touchpoints); an installation's
    own signal at an unknown touchpoint is an error."""
    out = []
    for s in signals:
        if all(t in touchpoint_owner for t in s.touchpoints):
            out.append(s)
        elif not s.shipped:
            _owner(s, touchpoint_owner)  # raises, naming the touchpoint and the known ones
    if not out:
        known = ", ".join(sorted(touchpoint_owner)) or "none"
        raise Invalid(
            f"no signal is at a touchpoint of this company (touchpoints: {known}): define "
            "touchpoints ('cxm org apply') and signals for them in <data dir>/signals/"
        )
    return out


def feature_table(
    con: BaseBackend,
    signals: Sequence[Signal],
    outcome: Outcome,
    lifecycle: Lifecycle | None = None,
    window_days: int = analytics.WINDOW_DAYS,
    survey: str | None = None,
    metric: Metric | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> pd.DataFrame:
    """The per-answer (nps, a metric) or per-customer (churn) feature table, computed by
    Ibis; ``since``/``until`` (naive UTC, nps only) keep the answers given in that period."""
    if metric is not None:
        t = analytics.metric_signals(con, signals, metric, window_days, survey)
    elif outcome == "nps":
        t = analytics.answer_signals(con, signals, window_days, survey, since=since, until=until)
    elif outcome == "churn":
        if lifecycle is None:
            raise Invalid("churn needs the customer lifecycle (the metrics files define it)")
        as_of = analytics.log_end(con)
        t = analytics.customer_signals(con, signals, lifecycle, as_of, window_days)
    else:
        raise Invalid(f"outcome: {outcome!r}; choose one of {', '.join(OUTCOMES)}")
    frame: pd.DataFrame = analytics.with_controls(t, con).execute()
    return frame


def attribute(
    con: BaseBackend,
    signals: Sequence[Signal],
    outcome: Outcome = "nps",
    lifecycle: Lifecycle | None = None,
    window_days: int = analytics.WINDOW_DAYS,
    survey: str | None = None,
    metric: Metric | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> Attribution:
    """Attribute ``outcome`` (nps, churn, or ``metric``: any metric of survey answers) to the
    signals and the departments owning them. For a metric the effect is in its unit per
    answer and the cost is ``-effect x reach`` (``+`` when lower is better), so a positive
    cost always means the signal makes the metric worse.

    Shipped signals at touchpoints this company lacks are left out. Errors: ``Invalid`` for
    an unknown outcome, an installation's signal at an unknown touchpoint, no usable signal,
    too few rows, or an empty log. ``since``/``until`` (naive UTC, nps only): the answers
    given in ``[since, until)``.
    """
    touchpoint_owner, department_names = owners(con)
    signals = _usable(signals, touchpoint_owner)
    owner = {s.key: _owner(s, touchpoint_owner) for s in signals}
    team_of = teams(con)
    frame = feature_table(con, signals, outcome, lifecycle, window_days, survey, metric,
                          since, until)  # fmt: skip
    keys = [s.key for s in signals]
    if metric is not None:
        y_col = "value"
        fits = fit_score(frame, keys)
    else:
        y_col = "nps" if outcome == "nps" else "churned"
        fits = fit_nps(frame, keys) if outcome == "nps" else fit_churn(frame, keys)
    rows = len(design(frame, keys))
    effects: list[SignalEffect] = []
    for s in signals:
        met_rows = frame[s.key] == 1
        met = int(met_rows.sum())
        reach = met / len(frame) if len(frame) else 0.0
        mean_met = _number(frame.loc[met_rows, y_col].mean()) if met else None
        mean_not = _number(frame.loc[~met_rows, y_col].mean()) if met < len(frame) else None
        fit = fits.get(s.key, {})
        effect = fit.get("effect")
        if metric is not None:
            sign = 1.0 if metric.direction == "higher" else -1.0
            cost = None if effect is None else -sign * effect * reach
        elif outcome == "nps":
            cost = None if effect is None else -effect * reach
        else:
            cost = fit.get("extra_churned")
        depts = owner[s.key].split(",")
        effects.append(
            SignalEffect(
                key=s.key,
                label=s.label,
                touchpoints=list(s.touchpoints),
                department=owner[s.key],
                team=",".join(sorted({team_of[t] for t in s.touchpoints if t in team_of})) or None,
                department_name=", ".join(department_names.get(d, d) for d in depts),
                met=met,
                reach=reach,
                effect=effect,
                ci_low=fit.get("ci_low"),
                ci_high=fit.get("ci_high"),
                p_value=fit.get("p_value"),
                mean_met=mean_met,
                mean_not_met=mean_not,
                difference=None if mean_met is None or mean_not is None else mean_met - mean_not,
                cost=cost,
                nps_points=fit.get("nps_points"),
                nps_points_low=fit.get("nps_points_low"),
                nps_points_high=fit.get("nps_points_high"),
                note="" if s.key in fits else "not estimable: met by nobody or by everybody",
            )
        )
    effects.sort(key=lambda e: -(e.cost or 0.0))
    return Attribution(
        outcome=outcome,
        estimator=ESTIMATORS["metric" if metric is not None else outcome],
        window_days=window_days,
        rows=rows,
        controls=list(analytics.CONTROLS),
        signals=effects,
        departments=_departments(effects, department_names),
    )


def _departments(effects: list[SignalEffect], names: dict[str, str]) -> list[DepartmentCost]:
    """Every department, ranked by what its signals cost; one with no signals says so."""
    out: list[DepartmentCost] = []
    for key, name in names.items():
        mine = [e for e in effects if e.department and key in e.department.split(",")]
        # A signal shared by several departments is split evenly between them.
        cost = sum((e.cost or 0.0) / len(e.department.split(",")) for e in mine if e.department)
        note = "" if mine else "no signals at this department's touchpoints"
        out.append(DepartmentCost(key, name, [e.key for e in mine], cost, note))
    out.sort(key=lambda d: (-d.cost, d.key))
    return out

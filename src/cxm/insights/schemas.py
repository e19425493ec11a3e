"""Pydantic models for the insights API (the OpenAPI schema is built from these)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field


class SignalEffectOut(BaseModel):
    key: str
    label: str
    touchpoints: list[str]
    department: str | None = Field(description="key of the department owning the touchpoints")
    department_name: str | None
    team: str | None = Field(description="key of the team(s) owning the touchpoints")
    met: int = Field(description="answers (nps) or customers (churn) that met the signal")
    reach: float = Field(description="share of the rows analysed that met the signal, 0-1")
    effect: float | None = Field(description="nps: 0-10 score points; churn: log-odds")
    ci_low: float | None = Field(description="95% interval, robust standard errors")
    ci_high: float | None
    p_value: float | None
    mean_met: float | None = Field(description="mean score or churn rate of those who met it")
    mean_not_met: float | None
    difference: float | None = Field(description="mean_met - mean_not_met, unadjusted")
    cost: float | None = Field(
        description="nps: score points lost across all answers (-effect x reach); "
        "churn: extra churned customers"
    )
    nps_points: float | None = Field(None, description="nps: effect on NPS (-100..100)")
    nps_points_low: float | None = None
    nps_points_high: float | None = None
    note: str = ""


class DepartmentCostOut(BaseModel):
    key: str
    name: str
    signals: list[str]
    cost: float = Field(description="sum of its signals' cost (a shared signal is split evenly)")
    note: str = ""


class AttributionOut(BaseModel):
    outcome: str
    estimator: str
    window_days: int
    rows: int
    controls: list[str]
    signals: list[SignalEffectOut]
    departments: list[DepartmentCostOut]


class DriverOut(BaseModel):
    key: str = Field(description="signal key, theme_<key> or attr_<question>")
    kind: str = Field(description="signal | theme | attribute")
    label: str
    department: str | None = Field(description="owner of a signal's touchpoints")
    present: int = Field(description="rows where the driver is present")
    importance: float = Field(description="relative weight: share of the outcome's variance")
    importance_low: float = Field(description="95% bootstrap interval")
    importance_high: float
    share: float = Field(description="importance / R², 0-1")
    direction: float = Field(description="+1 raises the outcome, -1 lowers it")
    performance: float | None = Field(
        description="mean outcome where present (retention for churn; 0-1 for attributes)"
    )
    quadrant: str = Field(description="fix first | keep | monitor | maintain")


class DepartmentImportanceOut(BaseModel):
    key: str
    importance: float = Field(description="sum of its drivers' relative weights")
    importance_low: float
    importance_high: float
    drivers: list[str]


class DriversOut(BaseModel):
    outcome: str
    method: str
    rows: int
    r2: float = Field(description="R² of the linear model on every driver (weights sum to it)")
    mean_outcome: float
    bootstrap: int = Field(description="resamples the intervals come from")
    drivers: list[DriverOut]
    departments: list[DepartmentImportanceOut]
    note: str = ""


class ReasonOut(BaseModel):
    feature: str
    label: str
    value: Any = None
    contribution: float = Field(description="log-odds (churn) or score points (NPS)")


class PredictionOut(BaseModel):
    customer_id: str
    churn_risk: float = Field(description="probability of churning, 0-1")
    predicted_nps: float | None = Field(description="expected 0-10 score")
    reasons: list[ReasonOut] = Field(description="top three towards churn")
    nps_reasons: list[ReasonOut] = Field(description="top three towards a lower score")
    model_version: str
    feature_set: str
    seed: int
    as_of: dt.datetime = Field(description="the prediction date: features stop here")
    scored_at: dt.datetime


class CategoryRevenueOut(BaseModel):
    category: str = Field(description="promoter | passive | detractor | none (latest answer)")
    customers: int
    churned: int
    churn_rate: float
    revenue_active: float = Field(description="annual revenue of those who stayed")
    revenue_lost: float = Field(description="annual revenue of those who churned")
    revenue_at_risk: float = Field(description="revenue_active x churn_rate")


class SignalRevenueOut(BaseModel):
    key: str
    label: str
    department: str | None
    met: int
    extra_churned: float | None = Field(description="customers the signal's churn adds")
    revenue_at_risk: float | None = Field(description="annual revenue that churn takes")
    customers_kept: float | None = Field(description="if the reach fell by `reduction`")
    revenue_kept: float | None


class RevenueOut(BaseModel):
    reduction: float = Field(description="the share the reach falls by, 0-1")
    customers: int
    currency_note: str
    categories: list[CategoryRevenueOut]
    signals: list[SignalRevenueOut]


class ModelRunIn(BaseModel):
    """A training or scoring run (the options of ``cxm insights train`` / ``predict``)."""

    seed: int = Field(7, description="seed of the holdout split and the model")
    window: int = Field(365, ge=1, le=3650, description="days of history a feature sees")
    lead_hours: int = Field(1, ge=0, le=8760, description="features stop this long before a churn")
    traits: list[str] = Field(
        default_factory=lambda: ["segment", "plan", "region", "tenure_months"],
        min_length=1,
        max_length=50,
        description="customer traits used as features",
    )
    top: int = Field(10, ge=0, le=1000, description="scoring: customers at most risk to report")


class JobProgressOut(BaseModel):
    stage: str
    done: int
    total: int


class ScoredOut(BaseModel):
    customer_id: str
    churn_risk: float
    predicted_nps: float | None
    reasons: list[str] = Field(description="labels of the top reasons towards churn")


class ScoringResultOut(BaseModel):
    written: int = Field(description="customers scored and stored")
    as_of: dt.datetime = Field(description="the prediction date (naive UTC)")
    model_version: str
    feature_set: str
    seed: int
    top: list[ScoredOut] = Field(description="the customers at most risk")


class TrainingResultOut(BaseModel):
    rows: int
    churned: int
    holdout: int
    auc: float = Field(description="holdout ROC AUC of churn risk")
    brier: float
    base_rate: float = Field(description="churn rate of the holdout")
    calibration: list[dict[str, float]]
    nps_rows: int
    nps_mae: float | None
    nps_r2: float | None
    model_version: str
    feature_set: str
    seed: int
    coefficients: dict[str, float]


class ModelJobOut(BaseModel):
    """A training or scoring job: poll ``url`` until ``state`` is done (``result``) or failed."""

    id: str
    kind: str = Field(description="train | predict")
    url: str
    state: str = Field(description="pending | running | done | failed")
    progress: JobProgressOut | None = None
    error: str | None = Field(None, description="why it failed, when state is failed")
    result: ScoringResultOut | TrainingResultOut | None = None

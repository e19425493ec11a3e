"""Pydantic models for the insights API (the OpenAPI schema is built from these)."""

from __future__ import annotations

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

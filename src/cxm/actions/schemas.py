"""Pydantic models at the closed loop's edges: the rules file and the REST bodies."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Key = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")]
Priority = Literal["p1", "p2", "p3", "p4"]
STATUSES = ("new", "in_progress", "waiting_on_customer", "resolved", "closed")
Status = Literal["new", "in_progress", "waiting_on_customer", "resolved", "closed"]
EVENTS = ("case_opened", "case_assigned", "sla_at_risk", "sla_breached")
# Facts announced as they arrive (not by default: a hook asks for them).
FACT_EVENTS = ("response_submitted", "detractor_response", "metric_alert")
WebhookEvent = Literal[
    "case_opened",
    "case_assigned",
    "sla_at_risk",
    "sla_breached",
    "response_submitted",
    "detractor_response",
    "metric_alert",
]
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def parse_duration(value: str | float | int) -> tuple[float, str]:
    """'30m', '4h', '2d' (business days) or a number of hours -> (amount, unit)."""
    if isinstance(value, int | float):
        return float(value), "h"
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"'{value}' is not a duration; write e.g. 30m, 4h or 2d (business days)")
    return float(match.group(1)), match.group(2)


class HoursIn(Strict):
    """Business hours: SLAs count only these hours."""

    start: int = Field(9, ge=0, le=23)
    end: int = Field(17, ge=1, le=24)
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"]  # type: ignore[arg-type]
    )
    timezone: str = "UTC"

    @model_validator(mode="after")
    def _order(self) -> HoursIn:
        if self.end <= self.start:
            raise ValueError("end must be after start (hours 0-24 in the time zone)")
        if not self.days:
            raise ValueError("days: name at least one working day, e.g. [mon, tue, wed]")
        return self


class SlaIn(Strict):
    first_response: str | float = "4h"
    resolution: str | float = "3d"
    hours: HoursIn = Field(default_factory=HoursIn)  # type: ignore[arg-type]

    @field_validator("first_response", "resolution")
    @classmethod
    def _duration(cls, v: str | float) -> str | float:
        parse_duration(v)
        return v


class RouteIn(Strict):
    """Default: the team owning the touchpoint, else the department's default team."""

    team: Key | None = None
    department: Key | None = None
    assign: Literal["round_robin", "least_loaded", "none"] = "least_loaded"


class ResponseWhen(Strict):
    """A survey response; every condition given must hold."""

    nps_max: int | None = Field(None, ge=0, le=10)
    csat_max: int | None = Field(None, ge=1, le=5)
    ces_max: int | None = Field(None, ge=1, le=7)
    sentiment: Literal["negative"] | None = None
    themes: list[str] = Field(default_factory=list)
    surveys: list[Key] = Field(default_factory=list)
    touchpoints: list[Key] = Field(default_factory=list)
    customer_trait: dict[str, list[str]] = Field(
        default_factory=dict, description="trait name -> accepted values, e.g. value: [high]"
    )
    nps_drop: int | None = Field(
        None, ge=1, le=10, description="the customer's NPS fell by at least this much"
    )

    @model_validator(mode="after")
    def _something(self) -> ResponseWhen:
        if not any(
            [
                self.nps_max is not None,
                self.csat_max is not None,
                self.ces_max is not None,
                self.sentiment,
                self.themes,
                self.nps_drop is not None,
            ]
        ):
            raise ValueError(
                "give a condition: nps_max, csat_max, ces_max, sentiment, themes or nps_drop"
            )
        return self


class InteractionWhen(Strict):
    """An interaction pattern: the ``count``-th event named ``event`` within ``within_days``."""

    event: str = Field(min_length=1, max_length=200)
    count: int = Field(1, ge=1, le=100)
    within_days: int = Field(14, ge=1, le=365)
    touchpoints: list[Key] = Field(default_factory=list)


class AlertWhen(Strict):
    """A significant drop found by the metrics layer."""

    metrics: list[str] = Field(default_factory=list)
    max_p: float = Field(0.05, gt=0, le=1)


class RiskWhen(Strict):
    """A customer whose stored churn risk (``cxm insights predict``) is at least ``min``."""

    min: float = Field(gt=0, le=1)


TRIGGERS = ("response", "interaction", "metric_alert", "churn_risk")


class WhenIn(Strict):
    response: ResponseWhen | None = None
    interaction: InteractionWhen | None = None
    metric_alert: AlertWhen | None = None
    churn_risk: RiskWhen | None = None

    @model_validator(mode="after")
    def _one(self) -> WhenIn:
        given = [k for k in TRIGGERS if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "name exactly one trigger: response, interaction, metric_alert or churn_risk"
            )
        return self

    @property
    def trigger(self) -> str:
        return next(k for k in TRIGGERS if getattr(self, k))


class RuleIn(Strict):
    key: Key
    name: str = Field(min_length=1, max_length=200)
    enabled: bool = True
    when: WhenIn
    priority: Priority = "p3"
    sla: SlaIn = Field(default_factory=SlaIn)
    route: RouteIn = Field(default_factory=RouteIn)


class RulesFile(Strict):
    rules: list[RuleIn] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> RulesFile:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.key in seen:
                raise ValueError(f"rule key '{rule.key}' appears twice; keys must be unique")
            seen.add(rule.key)
        return self


class RootCauseIn(Strict):
    key: Key
    name: str = Field(min_length=1, max_length=200)
    category: str = Field(min_length=1, max_length=64)
    department: Key | None = None


class RootCausesFile(Strict):
    root_causes: list[RootCauseIn] = Field(min_length=1)


# ---- REST bodies ----


class AssignBody(Strict):
    assignee: str | None = Field(None, description="user email or id; null to unassign")
    team: Key | None = Field(None, description="move the case to this team")
    reason: str | None = Field(None, max_length=500)


class StatusBody(Strict):
    status: Status
    reason: str | None = Field(None, max_length=500)
    followup: bool = Field(True, description="on close: send the follow-up survey")


class NoteBody(Strict):
    body: str = Field(min_length=1, max_length=10000)


class RootCauseBody(Strict):
    root_causes: list[Key] = Field(min_length=1)


class BulkAssignBody(Strict):
    case_ids: list[str] = Field(min_length=1, max_length=500)
    assignee: str | None = None
    reason: str | None = Field(None, max_length=500)


class WebhookIn(Strict):
    """An outgoing webhook. ``format`` picks the body: ``cxm`` is cxm's own JSON signed with
    ``secret`` (X-Cxm-Signature); ``slack`` and ``teams`` post a message to an incoming-webhook
    URL of Slack or Microsoft Teams (whose URL is the secret; ``secret`` still signs)."""

    url: str = Field(pattern=r"^https?://", max_length=2000)
    secret: str = Field(min_length=16, max_length=200)
    events: list[WebhookEvent] = Field(
        default_factory=lambda: list(EVENTS),  # type: ignore[arg-type]
        min_length=1,
    )
    format: Literal["cxm", "slack", "teams"] = "cxm"
    name: str | None = Field(None, max_length=200)


class InitiativeIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    owner_department: Key
    root_causes: list[Key] = Field(default_factory=list)
    touchpoints: list[Key] = Field(min_length=1)
    metric: Literal["nps", "csat", "ces"] = "nps"
    start_date: dt.date
    expected_effect: float | None = Field(None, description="expected change of the metric")

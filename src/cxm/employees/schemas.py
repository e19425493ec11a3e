"""Pydantic models at the edges of the employees API."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class EmployeeBody(BaseModel):
    """One employee to create or update; a changed ``team`` is a move at ``as_of`` (now)."""

    model_config = ConfigDict(extra="forbid")

    employee_id: str = Field(min_length=1, max_length=64)
    team: str = Field(min_length=1, max_length=64)
    email: str | None = Field(None, max_length=320)
    name: str | None = Field(None, max_length=200)
    role: str | None = Field(None, max_length=100)
    manager_id: str | None = Field(None, max_length=64)
    start_date: dt.date | None = None
    location: str | None = Field(None, max_length=200)
    user_email: str | None = Field(None, max_length=320)


class StintOut(BaseModel):
    team: str
    valid_from: dt.datetime
    valid_to: dt.datetime | None


class EmployeeOut(BaseModel):
    employee_id: str
    email: str | None
    name: str | None
    role: str | None
    manager_id: str | None
    start_date: dt.date | None
    location: str | None
    user_id: str | None
    team: str | None
    department: str | None
    history: list[StintOut] = []


class EmployeePage(BaseModel):
    total: int
    items: list[EmployeeOut]


class ApplyOut(BaseModel):
    created: int
    updated: int
    moved: int
    unchanged: int


class GroupOut(BaseModel):
    """One group's pulse figures; ``hidden`` groups carry none (confidentiality)."""

    period: str | None
    level: str
    key: str
    department: str | None
    hidden: bool
    respondents: int | None
    enps: float | None
    enps_low: float | None
    enps_high: float | None
    score_mean: float | None
    engagement: float | None = None  # 0-100, the mean of the rescaled pulse items
    engagement_low: float | None = None
    engagement_high: float | None = None


class PulseOut(BaseModel):
    minimum_group: int
    groups: list[GroupOut]


class RelationOut(BaseModel):
    x: str
    y: str
    lag: int
    slope: float | None
    low: float | None
    high: float | None
    p_value: float | None
    teams: int
    periods: int
    observations: int
    note: str


class TeamPeriodOut(BaseModel):
    team: str
    period: str
    respondents: int | None
    enps: float | None
    score_mean: float | None
    engagement: float | None = None
    csat_mean: float | None
    ces_mean: float | None
    friction_rate: float | None


class PeopleAndExperienceOut(BaseModel):
    grain: str
    minimum_group: int
    teams: list[TeamPeriodOut]
    relations: list[RelationOut]


class FigureOut(BaseModel):
    """CSAT: % of answers 4 or 5 of 5, with its Wilson 95% interval; ``n`` answers."""

    n: int
    value: float | None
    low: float | None
    high: float | None


class OutcomesOut(BaseModel):
    employee_id: str
    team: str | None
    own: FigureOut
    team_figure: FigureOut


class NpsFigureOut(BaseModel):
    """NPS in points with the adjusted Wald 95% interval (Rocks 2016); ``n`` answers."""

    n: int
    value: float | None
    low: float | None
    high: float | None


class FollowupsOut(BaseModel):
    employee_id: str
    team: str | None
    own: NpsFigureOut
    team_figure: NpsFigureOut


class TeamSpreadOut(BaseModel):
    team: str
    minimum_group: int
    team_figure: FigureOut
    agents: list[FigureOut]
    pooled_agents: int


class KudosOut(BaseModel):
    """A positive customer comment about an employee (``why``: handled | named); no customer."""

    employee_id: str
    comment: str
    submitted_at: str
    touchpoint: str | None
    why: str


class PartnerOut(BaseModel):
    key: str
    name: str
    kind: str
    touchpoints: list[str]


class PartnerFigureOut(BaseModel):
    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    flags: list[str]


class PartnerTouchpointOut(BaseModel):
    touchpoint: str
    metric: str
    value: float | None
    n: int


class PartnerSignalOut(BaseModel):
    """A signal at the partner's touchpoints: ``met`` and ``cost`` count the interactions
    the partner ran; ``met_touchpoint`` and ``cost_touchpoint`` the touchpoints' as a whole."""

    key: str
    label: str
    touchpoints: list[str]
    cost: float | None
    effect: float | None
    met: int
    met_touchpoint: int
    cost_touchpoint: float | None


class PartnerPulseItemOut(BaseModel):
    item: str
    label: str
    mean: float  # on the item's 1-5 scale
    low: float | None
    high: float | None
    n: int


class PartnerPulseOut(BaseModel):
    """The partner pulse of the partner's own people. ``hidden``: fewer than the minimum group
    size answered in every month of the range, so no figure and no comment is given."""

    hidden: bool
    respondents: int | None
    answers: int
    pnps: float | None  # partner NPS, points -100..100
    pnps_low: float | None
    pnps_high: float | None
    items: list[PartnerPulseItemOut]
    comments: list[str]
    months: int  # months that count
    months_withheld: int  # months left out: fewer respondents than the minimum
    note: str


class ScorecardOut(BaseModel):
    """A partner's scorecard: CSAT/NPS/CES of the touchpoints it runs, overall and per
    touchpoint, what the signals at those touchpoints cost in NPS points, and the partner
    pulse of the partner's own people."""

    partner: PartnerOut
    metrics: list[PartnerFigureOut]
    by_touchpoint: list[PartnerTouchpointOut]
    signals: list[PartnerSignalOut]
    signals_note: str
    pulse: PartnerPulseOut


class PartnerContactBody(BaseModel):
    """A person at a partner who answers the partner pulse."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320)
    role: str | None = Field(None, max_length=100)


class PartnerContactOut(BaseModel):
    id: str
    partner: str
    name: str
    email: str
    role: str | None


class ContactsApplyOut(BaseModel):
    created: int
    updated: int
    unchanged: int

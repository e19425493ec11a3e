"""Pydantic models at the text domain's edges: taxonomy files and REST responses."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Key = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$", strip_whitespace=True)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Phrase = Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ThemeIn(Strict):
    """One theme: matched by any keyword, or by meaning close enough to an example phrase."""

    key: Key
    name: Name
    department: Key | None = None
    keywords: list[Phrase] = Field(default_factory=list)
    examples: list[Phrase] = Field(default_factory=list)
    threshold: float | None = Field(default=None, gt=0, le=1)


class TaxonomyFile(Strict):
    taxonomy: Key
    threshold: float = Field(default=0.55, gt=0, le=1)
    themes: list[ThemeIn] = Field(min_length=1)


class Theme(BaseModel):
    taxonomy: str
    key: str
    name: str
    department_key: str | None
    keywords: list[str]
    examples: list[str]
    threshold: float


class ApplySummary(BaseModel):
    taxonomy: str
    created: list[str]
    updated: list[str]
    removed: list[str]


class SentenceOut(BaseModel):
    text: str
    label: str
    score: float


class AnnotationOut(BaseModel):
    source: str
    source_id: str
    model: str
    tier: str
    model_version: str
    language: str
    label: str
    score: float | None
    sentences: list[SentenceOut] | None
    themes: list[str]
    annotated_at: dt.datetime


class LanguageCount(BaseModel):
    """How many comments of one language got a sentiment score, and why the others did not."""

    language: str = Field(description="ISO 639-1 code, or und (undetermined)")
    texts: int
    scored: int
    unscored: int
    reason: str | None = Field(
        None, description='why some were not scored: "not scored: language xx", or nothing known'
    )


class LanguagesReport(BaseModel):
    model: str | None
    languages: list[LanguageCount]


class ThemeImpact(BaseModel):
    """What one theme costs in the report's metric: what the metric would gain if the answers
    mentioning the theme scored like the others. The ``nps_*`` fields are filled when the
    metric is an NPS; ``value_*`` and ``impact*`` for every metric."""

    taxonomy: str
    theme: str
    name: str
    department_key: str | None
    volume: int  # answers with a value of the metric that mention it
    share: float  # of the rows with a value
    # Share of the unfavourable answers (detractors, not top box, churned) that mention it;
    # 0 for a mean, which has no such answers.
    detractor_share: float
    avg_score_with: float | None  # NPS: mean 0-10 answer; a mean metric: its mean
    avg_score_without: float | None
    nps_with: float | None
    nps_without: float | None
    nps_impact: float | None  # NPS points; positive = the theme pulls NPS down
    nps_impact_low: float | None
    nps_impact_high: float | None
    value_with: float | None = None  # the metric (its unit) over the rows mentioning the theme
    value_without: float | None = None
    impact: float | None = None  # metric units; positive = the theme makes the metric worse
    impact_low: float | None = None
    impact_high: float | None = None
    note: str | None = None  # why there is no impact, in words


class ImpactReport(BaseModel):
    responses: int
    nps: float | None
    confidence: float
    themes: list[ThemeImpact]
    metric: str = "nps"
    unit: str = "points"
    direction: str = "higher"
    value: float | None = None  # the metric over every row with a value
    method: str | None = None  # the two-sample method behind the intervals
    note: str | None = None  # why there is nothing to compute, in words


class DiscoveredThemeOut(BaseModel):
    id: int
    label: str
    keywords: list[str]
    size: int
    share: float
    sentiment: float | None
    examples: list[str]


class DiscoveryOut(BaseModel):
    vectors: str
    texts: int
    excluded_other_language: int
    seed: int
    themes: list[DiscoveredThemeOut]
    note: str | None = None


def as_dict(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")

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
    """What one theme costs: NPS points gained if its mentioners scored like everyone else."""

    taxonomy: str
    theme: str
    name: str
    department_key: str | None
    volume: int  # responses with an NPS score that mention the theme
    share: float  # of scored responses
    detractor_share: float  # share of all detractors who mention it
    avg_score_with: float | None
    avg_score_without: float | None
    nps_with: float | None
    nps_without: float | None
    nps_impact: float | None  # NPS points; positive = the theme pulls NPS down
    nps_impact_low: float | None
    nps_impact_high: float | None


class ImpactReport(BaseModel):
    responses: int
    nps: float | None
    confidence: float
    themes: list[ThemeImpact]


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

"""Journey definitions: the YAML format, loading and validation.

A journey names its **case notion** (one case per customer, or per value of an event property
such as ``order_id``), the **activities** that enter a case (event names, optionally narrowed
by touchpoint or a property, each with the label it carries in the case), where a case
**starts**, its **success** and **failure** outcomes and its **maximum duration**. The shipped
journeys live in ``definitions/*.yaml`` inside the package; every error names the file, the
line and the reason.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cxm.errors import Invalid, NotFound
from cxm.org.schemas import Stage
from cxm.yamldoc import YamlDoc, parse, read, validate

SHIPPED = Path(__file__).parent / "definitions"
CUSTOMER = "customer"
ANY = "*"  # an activity rule for every event name; a start on any activity
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(h|d|w)\s*$")
_HOURS = {"h": 1.0, "d": 24.0, "w": 168.0}
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
# The org model's stages of a touchpoint, in the order a customer usually meets them.
STAGES: tuple[str, ...] = get_args(Stage)
_PROPERTY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ActivityModel(BaseModel):
    """One rule: events named ``event`` (at ``touchpoint``, with ``where`` properties) enter
    the case as ``label``. The first rule an event matches wins."""

    model_config = ConfigDict(extra="forbid")

    event: str = Field(min_length=1)
    touchpoint: str | None = None
    # property -> the value it must equal (string, number or boolean)
    where: dict[str, str | bool | int | float] = Field(default_factory=dict)
    has: list[str] = Field(default_factory=list)  # properties that must be present
    label: str | None = None


class StageModel(BaseModel):
    """One stage of the journey's defined order; an optional stage may be passed over."""

    model_config = ConfigDict(extra="forbid")

    stage: str = Field(min_length=1)
    optional: bool = False


class JourneyModel(BaseModel):
    """A journey as written in YAML."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    case: str = Field(
        CUSTOMER, description="'customer', or the event property that identifies a case"
    )
    activities: list[ActivityModel] = Field(min_length=1)
    start: list[str] = Field(min_length=1)
    success: list[str] = Field(default_factory=list)
    failure: list[str] = Field(default_factory=list)
    max_duration: str = "90d"
    churn: list[str] = Field(default_factory=lambda: ["subscription_cancelled"], min_length=1)
    # Labels that recur in a healthy case (a customer's orders): their repeats are not rework.
    repeatable: list[str] = Field(default_factory=list)
    # Per-customer journeys: only customers holding this trait (e.g. 'plan': members) have cases.
    require_trait: str | None = None
    # The defined order of the stages (of the org model's touchpoints) a case passes through;
    # a stage is a name, or {stage: NAME, optional: true}. Without it: every stage of the org
    # model in its order, all optional.
    stages: list[str | StageModel] | None = None

    @field_validator("stages")
    @classmethod
    def _stages(cls, v: list[str | StageModel] | None) -> list[str | StageModel] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("stages lists at least one stage (or is left out)")
        names = [s if isinstance(s, str) else s.stage for s in v]
        unknown = [n for n in names if n not in STAGES]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a stage; stages are: {', '.join(STAGES)}")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"{twice[0]!r} is listed twice in stages")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _KEY.match(v):
            raise ValueError(
                "a journey name is lower case letters, digits and _ (order_to_delivery)"
            )
        return v

    @field_validator("case")
    @classmethod
    def _case(cls, v: str) -> str:
        if not _PROPERTY.match(v):
            raise ValueError("case is 'customer' or an event property name (order_id, ticket_id)")
        return v

    @field_validator("max_duration")
    @classmethod
    def _duration(cls, v: str) -> str:
        if not _DURATION.match(v):
            raise ValueError("a duration is a number and a unit: h, d or w (e.g. 30d, 36h, 8w)")
        return v

    @model_validator(mode="after")
    def _outcomes(self) -> JourneyModel:
        if not self.success and not self.failure:
            raise ValueError("a journey needs at least one success or failure outcome")
        both = set(self.success) & set(self.failure)
        if both:
            raise ValueError(f"{sorted(both)} cannot be both a success and a failure")
        return self


@dataclass(frozen=True)
class Activity:
    event: str
    touchpoint: str | None
    where: tuple[tuple[str, Any], ...]
    has: tuple[str, ...]
    label: str


@dataclass(frozen=True)
class Journey:
    """A validated journey definition (what mining reads)."""

    name: str
    description: str
    case: str  # "customer" or a property name
    activities: tuple[Activity, ...]
    start: tuple[str, ...]
    success: tuple[str, ...]
    failure: tuple[str, ...]
    max_hours: float
    churn: tuple[str, ...]
    source: str
    repeatable: tuple[str, ...] = ()
    require_trait: str | None = None
    # The defined stage order: (stage, optional) pairs.
    stages: tuple[tuple[str, bool], ...] = tuple((s, True) for s in STAGES)

    @property
    def labels(self) -> list[str]:
        """Every activity label the rules can give, in rule order (``*``: any event name)."""
        return list(dict.fromkeys(a.label for a in self.activities))

    @property
    def any_event(self) -> bool:
        """Whether a rule takes every event (``event: "*"``, its name as the label)."""
        return any(a.event == ANY for a in self.activities)

    @property
    def any_start(self) -> bool:
        """Whether any activity starts a case (``start: ["*"]``)."""
        return ANY in self.start

    @property
    def outcomes(self) -> tuple[str, ...]:
        return self.success + self.failure


def _hours(text: str) -> float:
    m = _DURATION.match(text)
    assert m is not None  # validated
    return float(m.group(1)) * _HOURS[m.group(2)]


def _stage_order(stages: list[str | StageModel] | None) -> tuple[tuple[str, bool], ...]:
    if stages is None:
        return tuple((s, True) for s in STAGES)
    return tuple((s, False) if isinstance(s, str) else (s.stage, s.optional) for s in stages)


def from_doc(doc: YamlDoc) -> Journey:
    """Validate one journey document; errors name the file, line and field."""
    model = validate(doc, JourneyModel)
    activities = tuple(
        Activity(
            a.event, a.touchpoint, tuple(sorted(a.where.items())), tuple(a.has), a.label or a.event
        )
        for a in model.activities
    )
    for i, a in enumerate(activities):
        if a.event == ANY and a.label != ANY:
            raise Invalid(
                f"{doc.where(('activities', i))}: a rule for every event ('*') keeps each "
                "event's name as its label; remove 'label'"
            )
    labels = {a.label for a in activities}
    if model.require_trait is not None and model.case != CUSTOMER:
        raise Invalid(
            f"{doc.where(('require_trait',))}: require_trait applies to per-customer journeys "
            f"(case: customer), not to case '{model.case}'"
        )
    for field in ("start", "success", "failure", "repeatable"):
        for i, label in enumerate(getattr(model, field)):
            if ANY in labels and label != ANY:
                continue  # a rule for every event: any name can be an activity
            if field == "start" and label == ANY:
                continue
            if label not in labels:
                raise Invalid(
                    f"{doc.where((field, i))}: '{label}' is not an activity of this journey; "
                    f"known: {', '.join(sorted(labels))}"
                )
    return Journey(
        name=model.name,
        description=model.description,
        case=model.case,
        activities=activities,
        start=tuple(model.start),
        success=tuple(model.success),
        failure=tuple(model.failure),
        max_hours=_hours(model.max_duration),
        churn=tuple(model.churn),
        source=doc.source,
        repeatable=tuple(model.repeatable),
        require_trait=model.require_trait,
        stages=_stage_order(model.stages),
    )


def load(folders: list[Path] | None = None) -> dict[str, Journey]:
    """Every journey: the shipped ones, then ``*.yaml`` in each of ``folders`` (a journey of
    the same name replaces an earlier one). Raises Invalid on any definition error."""
    out: dict[str, Journey] = {}
    for folder in [SHIPPED, *(folders or [])]:
        for path in sorted(folder.glob("*.yaml")):
            journey = from_doc(read(path))
            out[journey.name] = journey
    return out


def get(name: str, folders: list[Path] | None = None) -> Journey:
    """One journey by name; NotFound names the known ones."""
    journeys = load(folders)
    if name not in journeys:
        raise NotFound(f"no journey named '{name}'; known: {', '.join(sorted(journeys))}")
    return journeys[name]


# ---- editing an installation's journeys (the settings page) ----

VERSIONS = "versions"  # <folder>/versions/<name>/<n>.yaml: every saved text, never globbed


def installation_dir(data_dir: Path) -> Path:
    """Where an installation keeps its own journey files."""
    return data_dir / "journeys"


def text_of(name: str, folder: Path) -> str:
    """The YAML of journey ``name`` as it is in force: the installation's file when it has one,
    else the shipped one. NotFound names the known journeys."""
    journeys = load([folder] if folder.is_dir() else [])
    if name not in journeys:
        raise NotFound(f"no journey named '{name}'; known: {', '.join(sorted(journeys))}")
    return Path(journeys[name].source).read_text(encoding="utf-8")


def check_text(text: str, name: str | None = None) -> Journey:
    """Validate one journey's YAML (``name``: the journey being edited, to name the text in
    messages); Invalid names the line and field of the mistake. Nothing is written."""
    return from_doc(parse(text, f"journeys/{name or 'new'}.yaml"))


def save_text(text: str, folder: Path, name: str | None = None) -> tuple[Journey, int]:
    """Validate ``text`` (``check_text``) and make it the installation's definition of the
    journey it names: written to ``<folder>/<name>.yaml`` (replacing a shipped journey of
    that name), and kept as the next version in ``<folder>/versions/<name>/``. Returns the
    journey and its version number (1 for the first save). On any error nothing is written.
    """
    journey = check_text(text, name)
    history = folder / VERSIONS / journey.name
    history.mkdir(parents=True, exist_ok=True)
    version = max((int(p.stem) for p in history.glob("*.yaml") if p.stem.isdigit()), default=0)
    version += 1
    _write(history / f"{version}.yaml", text)
    _write(folder / f"{journey.name}.yaml", text)
    return journey, version


def _write(path: Path, text: str) -> None:
    """Write atomically: a reader sees the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def versions(name: str, folder: Path) -> list[dict[str, object]]:
    """The saved versions of journey ``name``, latest first: ``version, saved_at`` (UTC)."""
    history = folder / VERSIONS / name
    if not _KEY.match(name) or not history.is_dir():
        return []
    found = sorted((int(p.stem) for p in history.glob("*.yaml") if p.stem.isdigit()),
                   reverse=True)  # fmt: skip
    return [{"version": n, "saved_at": dt.datetime.fromtimestamp(
        (history / f"{n}.yaml").stat().st_mtime, dt.UTC).replace(microsecond=0)}
        for n in found]  # fmt: skip


def version_text(name: str, version: int, folder: Path) -> str:
    """The text of one saved version; NotFound when there is no such version."""
    path = folder / VERSIONS / name / f"{version}.yaml"
    if not _KEY.match(name) or not path.is_file():
        raise NotFound(f"journey '{name}' has no saved version {version}")
    return path.read_text(encoding="utf-8")

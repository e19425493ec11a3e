"""Pydantic models at the org domain's edges: the org file and the REST bodies."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

CHANNELS = (
    "web", "app", "email", "phone", "chat", "store", "social", "mail", "delivery", "billing",
    "in-product",
)  # fmt: skip
STAGES = ("discover", "consider", "buy", "receive", "use", "get help", "pay", "renew", "leave")
ROLES = ("admin", "cx_lead", "manager", "agent", "viewer", "partner")
PARTNER_KINDS = ("courier", "reseller", "installer", "other")

Channel = Literal[
    "web", "app", "email", "phone", "chat", "store", "social", "mail", "delivery", "billing",
    "in-product",
]  # fmt: skip
Stage = Literal[
    "discover", "consider", "buy", "receive", "use", "get help", "pay", "renew", "leave"
]
Key = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$", strip_whitespace=True)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
# A touchpoint key as stored: ingest may record keys that the org file's pattern would refuse.
StoredKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]


def _not_null(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError(
            "not_null", "may not be null; leave the field out to keep its current value"
        )
    return value


T = TypeVar("T")
# A PATCH field that may be left out (None: keep the value) but not sent as null, since its
# column is required; the schema shows the plain type.
Kept = Annotated[T | SkipJsonSchema[None], BeforeValidator(_not_null)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CompanyIn(Strict):
    name: Name


class TeamIn(Strict):
    key: Key
    name: Name
    default: bool = False
    lead_email: str | None = None


class DepartmentIn(Strict):
    key: Key
    name: Name
    description: str | None = None
    teams: list[TeamIn] = Field(default_factory=list)


class OwnerIn(Strict):
    department: Key
    team: Key | None = Field(default=None, description="Defaults to the department's default team")


class PartnerIn(Strict):
    key: Key
    name: Name
    kind: Literal["courier", "reseller", "installer", "other"]


class TouchpointIn(Strict):
    key: Key
    name: Name
    channel: Channel
    stage: Stage
    owner: OwnerIn
    partner: Key | None = Field(
        default=None, description="The partner that runs it for the owning department"
    )
    partner_runs: Literal["all", "marked"] = Field(
        default="all",
        description="all: the partner runs every interaction there; marked: only those whose "
        "properties.partner names it (the rest are run in-house)",
    )
    contributors: list[Key] = Field(default_factory=list)
    description: str | None = None


class OrgFile(Strict):
    """The declarative org file read by ``cxm org apply`` and written by ``cxm org export``."""

    company: CompanyIn | None = None
    departments: list[DepartmentIn] = Field(default_factory=list)
    partners: list[PartnerIn] = Field(default_factory=list)
    touchpoints: list[TouchpointIn] = Field(default_factory=list)


# REST bodies and answers


class Department(BaseModel):
    key: str
    name: str
    description: str | None
    position: int


class DepartmentCreate(Strict):
    key: Key
    name: Name
    description: str | None = None


class DepartmentUpdate(Strict):
    name: Kept[Name] = None
    description: str | None = None


class Team(BaseModel):
    key: str
    department_key: str
    name: str
    is_default: bool
    lead_email: str | None


class TeamCreate(Strict):
    key: Key
    department_key: Key
    name: Name
    is_default: bool = False
    lead_email: str | None = None


class TeamUpdate(Strict):
    name: Kept[Name] = None
    is_default: Kept[bool] = None
    lead_email: str | None = None


class Touchpoint(BaseModel):
    key: str
    name: str
    channel: str | None
    stage: str | None
    department_key: str | None
    team_key: str | None
    contributors: list[str]
    description: str | None
    owned: bool
    partner_key: str | None = None
    partner_runs: str | None = None


class Partner(BaseModel):
    key: str
    name: str
    kind: str
    touchpoints: list[str]


class PartnerCreate(Strict):
    key: Key
    name: Name
    kind: Literal["courier", "reseller", "installer", "other"]
    touchpoints: list[StoredKey] = Field(
        default_factory=list, description="Keys of the touchpoints it runs (none run by another)"
    )


class PartnerUpdate(Strict):
    name: Kept[Name] = None
    kind: Kept[Literal["courier", "reseller", "installer", "other"]] = None
    touchpoints: Kept[list[StoredKey]] = Field(
        None, description="Replaces the touchpoints it runs; those left out are run in-house"
    )


class TouchpointCreate(Strict):
    key: Key
    name: Name
    channel: Channel
    stage: Stage
    department_key: Key
    team_key: Key | None = None
    contributors: list[Key] = Field(default_factory=list)
    description: str | None = None


class TouchpointUpdate(Strict):
    name: Kept[Name] = None
    channel: Kept[Channel] = None
    stage: Kept[Stage] = None
    department_key: Kept[Key] = None
    team_key: Key | None = Field(None, description="null: the department's default team")
    contributors: Kept[list[Key]] = None
    description: str | None = None


class ApiKeyCreate(Strict):
    scope: str = Field(description="ingest | read | admin")
    user: str | None = Field(None, description="email of the user the key belongs to")
    name: str | None = Field(None, max_length=200, description="a label to recognise the key by")


class ApiKeyCreated(BaseModel):
    """The key in plain text: the only time it is shown."""

    token: str
    scope: str
    name: str | None

"""The import mapping file users write (which source column feeds which event field)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

TARGETS = (
    "event_id",
    "type",
    "name",
    "timestamp",
    "user_id",
    "anonymous_id",
    "email",
    "phone",
    "touchpoint",
    "channel",
    "properties",
    "context",
    "revenue",
)


class Mapping(BaseModel):
    """``columns``: event field → source column (external ids by their own name, e.g. crm_id);
    ``defaults``: a fixed value for a field the file lacks (e.g. ``touchpoint: store``)."""

    model_config = ConfigDict(extra="forbid")

    columns: dict[str, str] = Field(default_factory=dict)
    defaults: dict[str, str] = Field(default_factory=dict)

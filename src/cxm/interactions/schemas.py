"""The import mapping file users write (which source column feeds which event field)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

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

    @field_validator("defaults")
    @classmethod
    def _no_fixed_identifier(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name in ("user_id", "anonymous_id", "email", "phone") or (
                name.endswith("_id") and name != "event_id"
            ):
                raise ValueError(
                    f"'{name}' identifies a customer; a fixed value would make every row the "
                    "same customer: map it to a column under 'columns' instead"
                )
        return value

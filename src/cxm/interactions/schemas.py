"""The import mapping file users write (which source column feeds which event field)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cxm.interactions.formats import Dates, Numbers

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
    ``defaults``: a fixed value for a field the file lacks (e.g. ``touchpoint: store``);
    ``dates`` and ``numbers``: how the file writes times and numbers; ``max_rejected_share``:
    refuse the file when more than this share of its rows is rejected (1: only when all are)."""

    model_config = ConfigDict(extra="forbid")

    columns: dict[str, str] = Field(default_factory=dict)
    defaults: dict[str, str] = Field(default_factory=dict)
    dates: Dates = Field(default_factory=Dates)
    numbers: Numbers = Field(default_factory=Numbers)
    max_rejected_share: float = Field(default=1.0, ge=0.0, le=1.0)

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

"""How an export writes times and numbers, as a mapping names it, read column-wise with Arrow.

Real exports write ``11/04/2018 20:09`` (day first, local time) or ``1.234,50`` (decimal comma,
thousands dot). The mapping says which: ``dates.format`` (strptime fields, e.g.
``%d/%m/%Y %H:%M``) or ``dates.order`` (``day_first`` / ``month_first``: the usual numeric
forms are tried), ``dates.timezone`` (the IANA zone of times written without an offset) and
``numbers.decimal`` / ``numbers.thousands``. A value that does not fit is named in the rejects
file with the format it was read against.
"""

from __future__ import annotations

from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, field_validator

UTC_US = pa.timestamp("us", tz="UTC")


class Dates(BaseModel):
    """How the file writes times: ISO 8601 (the default), day-first or month-first, or a format.

    ``timezone`` (an IANA name) is the zone of times written without an offset; UTC by default.
    """

    model_config = ConfigDict(extra="forbid")
    order: Literal["iso", "day_first", "month_first"] = "iso"
    format: str | None = None  # strptime, e.g. "%d/%m/%Y %H:%M"; wins over order
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use a name like Europe/Oslo") from exc
        return value

    @field_validator("format")
    @classmethod
    def _usable_format(cls, value: str | None) -> str | None:
        if value is not None and "%" not in value:
            raise ValueError(f"format {value!r} has no % fields; write it like %d/%m/%Y %H:%M")
        return value

    @property
    def default(self) -> bool:
        return self.order == "iso" and self.format is None and self.timezone == "UTC"

    def described(self) -> str:
        if self.format:
            return f"the format {self.format}"
        if self.order == "iso":
            return "ISO 8601 (e.g. 2026-03-01T10:00:00)"
        return "day-first dates" if self.order == "day_first" else "month-first dates"


class Numbers(BaseModel):
    """How the file writes numbers: the decimal mark and the thousands separator."""

    model_config = ConfigDict(extra="forbid")
    decimal: Literal[".", ","] = "."
    thousands: Literal["", ",", ".", " ", "'", "\u00a0", "\u202f"] = ""

    @field_validator("thousands")
    @classmethod
    def _differs(cls, value: str, info: Any) -> str:
        if value and value == info.data.get("decimal"):
            raise ValueError("thousands separator and decimal mark must differ")
        return value

    @property
    def default(self) -> bool:
        return self.decimal == "." and not self.thousands


def _formats(dates: Dates) -> list[str]:
    """The strptime formats to try, most specific first."""
    if dates.format:
        return [dates.format]
    if dates.order == "iso":
        return [
            "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d",
        ]  # fmt: skip
    day = "%d{s}%m{s}%Y" if dates.order == "day_first" else "%m{s}%d{s}%Y"
    out = []
    for sep in ("/", ".", "-"):
        date = day.format(s=sep)
        out += [f"{date} %H:%M:%S", f"{date} %H:%M", date]
    return out


def parse_times(text: pa.Array, dates: Dates) -> tuple[pa.Array, np.ndarray]:
    """Times written as ``dates`` says, as aware UTC microseconds; and which non-empty values
    fit no format (null in the result).

    ISO values with an offset keep it; values without one are in ``dates.timezone``
    (an hour that a clock change skips or repeats takes its earliest reading).
    """
    trimmed = pc.utf8_trim_whitespace(text.cast(pa.string()))
    # Fractions of a second and a trailing Z are ISO forms strptime does not read.
    cleaned = pc.replace_substring_regex(trimmed, r"(\d{2}:\d{2}:\d{2})\.\d+", r"\1")
    cleaned = pc.replace_substring_regex(cleaned, r"Z$", "+0000")
    cleaned = pc.replace_substring_regex(cleaned, r"([+-]\d{2}):(\d{2})$", r"\1\2")
    found: pa.Array = pa.nulls(len(text), UTC_US)
    for fmt in _formats(dates):
        parsed = pc.strptime(cleaned, format=fmt, unit="us", error_is_null=True)
        if parsed.type.tz is None:
            local = pc.assume_timezone(
                parsed, dates.timezone, ambiguous="earliest", nonexistent="earliest"
            )
            parsed = local.cast(UTC_US)
        else:
            parsed = parsed.cast(UTC_US)
        found = pc.coalesce(found, parsed)
    given = pc.and_(trimmed.is_valid(), pc.not_equal(trimmed, ""))
    bad = pc.and_(given, found.is_null())
    return found, np.asarray(bad.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def plain_numbers(text: pa.Array, numbers: Numbers) -> pa.Array:
    """Numbers written with ``numbers``' marks, rewritten in the plain form (``1234.5``).

    Only separators are rewritten; whether the result is a number is checked where numbers
    are read, so ``12,3,4`` with a decimal comma is still refused there.
    """
    out = pc.utf8_trim_whitespace(text.cast(pa.string()))
    if numbers.thousands:
        out = pc.replace_substring(out, numbers.thousands, "")
    if numbers.decimal == ",":
        out = pc.replace_substring(out, ",", ".")
    return out

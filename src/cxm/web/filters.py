"""Page filters that live in the URL (date range, department, segment), so views can be shared."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from cxm.errors import Invalid
from cxm.org.scope import Scope


@dataclass(frozen=True)
class Filters:
    start: dt.date | None = None
    end: dt.date | None = None  # inclusive, as people read date ranges
    department: str | None = None
    segment: str | None = None

    @classmethod
    def from_request(cls, request: Request, scope: Scope) -> Filters:
        q = request.query_params

        def day(name: str) -> dt.date | None:
            raw = q.get(name) or None
            if raw is None:
                return None
            try:
                return dt.date.fromisoformat(raw)
            except ValueError as exc:
                raise Invalid(f"{name}: '{raw}' is not a date like 2026-01-31") from exc

        start, end = day("start"), day("end")
        if start and end and start > end:
            raise Invalid(f"start ({start}) is after end ({end})")
        department = q.get("department") or None
        if scope.by_department:
            # A manager's view is their department, whatever the URL says.
            department = scope.department_key
        return cls(start, end, department, q.get("segment") or None)

    @property
    def start_at(self) -> dt.datetime | None:
        return dt.datetime.combine(self.start, dt.time(), dt.UTC) if self.start else None

    @property
    def end_at(self) -> dt.datetime | None:
        if self.end is None:
            return None
        return dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), dt.UTC)

    def metric_filters(self, department: bool = True) -> dict[str, str]:
        out: dict[str, str] = {}
        if department and self.department:
            out["department"] = self.department
        if self.segment:
            out["segment"] = self.segment
        return out

    def query(self, **override: Any) -> str:
        """This view's query string, with some values replaced (for links that keep filters)."""
        values = {
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "department": self.department,
            "segment": self.segment,
        } | override
        return urlencode({k: v for k, v in values.items() if v})

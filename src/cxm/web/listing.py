"""What every list page shares: a total, pages, a sort order a person picks, and a CSV download
of the whole filtered list (not only the page shown)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response

from cxm.apitypes import checked_offset
from cxm.errors import Invalid

PAGE = 50
CSV_MAX = 100_000  # rows in one download: a whole list, short of an export


@dataclass(frozen=True)
class Listing:
    """One page of a list: ``offset`` and ``size`` in rows, ``sort`` a column key or "" for
    the list's own order, ``descending`` its direction; ``total`` rows match the filters."""

    request: Request
    offset: int
    size: int
    sort: str
    descending: bool
    total: int = 0

    @classmethod
    def from_request(cls, request: Request, sorts: Sequence[str], size: int = PAGE) -> Listing:
        """Read ``offset``, ``sort`` (``-name`` sorts descending) from the query; an unknown
        column is refused with the known ones listed."""
        offset = checked_offset(request.query_params.get("offset"))
        raw = (request.query_params.get("sort") or "").strip()
        column = raw.lstrip("-")
        if column and column not in sorts:
            raise Invalid(f"sort: '{column}' is not one of {', '.join(sorts)}")
        return cls(request, offset, size, column, raw.startswith("-"))

    def counted(self, total: int) -> Listing:
        return Listing(self.request, self.offset, self.size, self.sort, self.descending, total)

    def _link(self, **changes: Any) -> str:
        params = dict(self.request.query_params) | {k: str(v) for k, v in changes.items()}
        return "?" + urlencode({k: v for k, v in params.items() if v not in ("", "0")})

    @property
    def first(self) -> int:
        return min(self.offset + 1, self.total)

    @property
    def last(self) -> int:
        return min(self.offset + self.size, self.total)

    @property
    def next_link(self) -> str | None:
        return self._link(offset=self.offset + self.size) if self.last < self.total else None

    @property
    def prev_link(self) -> str | None:
        return self._link(offset=max(0, self.offset - self.size)) if self.offset > 0 else None

    @property
    def csv_link(self) -> str:
        return self._link(format="csv", offset=0)

    def sort_link(self, column: str) -> str:
        """The link a column heading carries: sort by it, or reverse it when already sorted."""
        descending = column == self.sort and not self.descending
        return self._link(sort=("-" if descending else "") + column, offset=0)

    def aria_sort(self, column: str) -> str:
        if column != self.sort:
            return "none"
        return "descending" if self.descending else "ascending"

    def in_memory(
        self, rows: Sequence[Any], keys: dict[str, Callable[[Any], Any]]
    ) -> tuple[list[Any], Listing]:
        """Sort and page a short list held in memory (surveys, rules): (this page, counted).
        ``keys`` gives each sortable column's value; None sorts last."""
        ordered = list(rows)
        if self.sort:
            key = keys[self.sort]
            present = [r for r in ordered if key(r) is not None]
            missing = [r for r in ordered if key(r) is None]
            ordered = sorted(present, key=key, reverse=self.descending) + missing
        counted = self.counted(len(ordered))
        return ordered[self.offset : self.offset + self.size], counted

    @property
    def wants_csv(self) -> bool:
        return self.request.query_params.get("format") == "csv"


def csv_response(
    rows: Iterable[dict[str, Any]],
    columns: Sequence[tuple[str, str | Callable[[dict[str, Any]], Any]]],
    filename: str,
) -> Response:
    """``rows`` as a CSV download; ``columns`` is (heading, key or function of the row)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([heading for heading, _ in columns])
    for row in rows:
        writer.writerow(
            [(get(row) if callable(get) else row.get(get)) for _, get in columns]
        )  # fmt: skip
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )

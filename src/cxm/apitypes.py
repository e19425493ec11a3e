"""Types every domain's API routes share: one validated paging pair, and open records.

``limit``/``offset`` are checked before a query is built: a negative or 20-digit offset is a
422 that names the allowed range, never a database error (DuckDB refuses a negative
LIMIT/OFFSET, and values past INT64 overflow).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict

from cxm.errors import Invalid
from cxm.yamldoc import MAX_CHARS

MAX_LIMIT = 1000
MAX_OFFSET = 1_000_000_000  # far past any list, far inside INT64


@dataclass(frozen=True)
class Page:
    """``limit`` rows starting after ``offset`` rows (both validated)."""

    limit: int
    offset: int


def paging(default_limit: int = 50, max_limit: int = MAX_LIMIT) -> Callable[..., Page]:
    """The FastAPI dependency of a list route's paging, used as a named alias:
    ``Paging = Annotated[Page, Depends(paging(200))]``, then ``page: Paging``.

    ``limit`` is 1..``max_limit`` (default ``default_limit``), ``offset`` 0..``MAX_OFFSET``;
    anything else answers 422 with the range.
    """

    def dependency(
        limit: int = Query(default_limit, ge=1, le=max_limit, description="rows per page"),
        offset: int = Query(0, ge=0, le=MAX_OFFSET, description="rows to skip"),
    ) -> Page:
        return Page(limit, offset)

    return dependency


def checked_offset(raw: str | None, name: str = "offset") -> int:
    """A page's offset from a query string value (for HTML pages): 0..``MAX_OFFSET`` or Invalid."""
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError as exc:
        raise Invalid(f"{name}: '{raw[:40]}' is not a whole number") from exc
    if not 0 <= value <= MAX_OFFSET:
        raise Invalid(f"{name}: {value} is out of range; use 0 to {MAX_OFFSET}")
    return value


class Record(BaseModel):
    """An answer whose named fields are documented and whose further columns pass through.

    Rows of tables that grow columns (cases, rules, webhooks) declare what clients rely on;
    ``extra="allow"`` keeps the others in the answer instead of silently dropping them.
    """

    model_config = ConfigDict(extra="allow")


async def read_text(request: Request, max_bytes: int = MAX_CHARS) -> str:
    """A text body (YAML, JSON) read up to ``max_bytes``; larger bodies answer 413 unread."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(413, f"body is {declared} bytes; the limit is {max_bytes} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise HTTPException(413, f"body exceeds the limit of {max_bytes} bytes")
    return body.decode("utf-8", "replace")

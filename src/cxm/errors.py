"""The small set of domain errors, and the one error body every 4xx answer of the API carries.

The API layer maps the errors to status codes in one place (``cxm.web.app``); routes declare
the statuses they may answer with ``responses(...)`` so the OpenAPI schema says what comes back.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class CxmError(Exception):
    """Base of every error a person can act on."""

    status_code = 400


class NotFound(CxmError):
    status_code = 404


class Invalid(CxmError):
    status_code = 422


class Forbidden(CxmError):
    status_code = 403


class Conflict(CxmError):
    status_code = 409


class FieldError(BaseModel):
    """One problem with one input: ``field`` is a dotted path (``body.name``, ``query.limit``)."""

    field: str = Field(description="where the problem is, e.g. 'name' or 'limit'")
    message: str = Field(description="what is wrong, in words a person can act on")


class ErrorBody(BaseModel):
    """The body of every 4xx answer: one readable sentence, plus the per-field problems."""

    detail: str = Field(description="what went wrong and what to change, as one sentence")
    errors: list[FieldError] = Field(
        default_factory=list, description="per-field problems (422 on invalid input); else empty"
    )


DESCRIPTIONS = {
    400: "The request cannot be read (malformed body or encoding)",
    401: "Missing or invalid API key",
    403: "The key's scope or the caller's role does not allow this",
    404: "No such object, or not one the caller may see",
    409: "Conflicts with the current state; read it again and retry",
    413: "The body or batch is larger than the limit",
    422: "Invalid input; `errors` names each field",
    429: "Too many requests; retry later",
    503: "A part the server needs is missing or not answering (the detail names it)",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route may answer, all with ``ErrorBody``."""
    return {code: {"model": ErrorBody, "description": DESCRIPTIONS[code]} for code in codes}

"""The small set of domain errors; the API layer maps them to status codes in one place."""


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

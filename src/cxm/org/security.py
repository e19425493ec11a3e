"""FastAPI dependencies shared by every domain's router: the request's transaction and caller."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable, Iterator

from fastapi import Depends, HTTPException, Request
from sqlalchemy.engine import Connection, Engine

from cxm.org.auth import Principal, authenticate_key
from cxm.org.scope import partner_may_reach, scope_for


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def db(request: Request) -> Iterator[Connection]:
    """One unit of work per request: committed when the handler returns, rolled back on error.

    Declare it ``Depends(db, scope="function")``: FastAPI otherwise closes a dependency with
    ``yield`` after the response is sent, and a client that follows a redirect at once (a
    browser after signing in) could arrive before the commit and miss the write."""
    with get_engine(request).begin() as conn:
        yield conn


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    if scheme.lower() == "basic" and value:
        # Segment's SDKs send the write key as the Basic user name with an empty password.
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return user or password or None
    return request.headers.get("x-api-key")


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
CSRF_HEADER = "X-CSRF-Token"


def _check_session_csrf(request: Request) -> None:
    """A state change authenticated by the session cookie must carry the session's token.

    The browser sends the cookie with any request, a forged one from another site included;
    only a page of ours can read the token (from its forms) and send it as ``X-CSRF-Token``.
    Key-authenticated calls need no token: no browser attaches a key by itself.
    """
    if request.method in SAFE_METHODS:
        return
    resolver = getattr(request.app.state, "session_csrf", None)
    expected = resolver(request) if resolver is not None else None
    sent = request.headers.get(CSRF_HEADER, "")
    if not expected or not sent or not hmac.compare_digest(expected, sent):
        raise HTTPException(
            403,
            f"this change is authenticated by a session cookie, so it needs the {CSRF_HEADER} "
            "header with the session's CSRF token; scripts should use an API key instead",
        )


def principal(request: Request) -> Principal | None:
    """The caller, from an API key or (for pages) the signed-in session, else None.

    Session-authenticated state changes are checked for the CSRF token here, so every route
    that accepts a session (``/api/v1``, Segment's ``/v1``) checks it alike.
    """
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    token = _token(request)
    found: Principal | None = None
    if token:
        with get_engine(request).connect() as conn:
            found = authenticate_key(conn, token)
    else:
        resolver = getattr(request.app.state, "session_principal", None)
        if resolver is not None:
            found = resolver(request)
        if found is not None:
            _check_session_csrf(request)
    request.state.principal = found
    return found


READING_METHODS = ("GET", "HEAD", "OPTIONS")


def require(scope: str) -> Callable[[Request], Principal]:
    """Dependency: 401 without valid credentials, 403 when the key's scope does not cover it
    (a read key that belongs to no user reads only: it cannot change anything),
    404 for a partner user outside the routes they may reach (``partner_may_reach``)."""

    def dependency(request: Request, who: Principal | None = Depends(principal)) -> Principal:
        if who is None:
            raise HTTPException(
                401,
                "missing or invalid API key: send 'Authorization: Bearer <key>' "
                "(create one with 'cxm keys create')",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not who.allows(scope):
            raise HTTPException(403, f"this key has scope '{who.scope}'; this needs '{scope}'")
        if request.method not in READING_METHODS and who.scope == "read" and who.user_id is None:
            raise HTTPException(
                403,
                "a read key that belongs to no user only reads: create the key for a user "
                "('cxm keys create --scope read --user EMAIL') to act with their role, or use "
                "an admin key",
            )
        if not partner_may_reach(scope_for(who), request.method, request.url.path):
            raise HTTPException(
                404,
                "not found in your scope: a partner user reads the metrics of their partner's "
                "touchpoints (/api/v1/metrics/NAME) and their partner's scorecard "
                "(/api/v1/partners/KEY/scorecard)",
            )
        return who

    return dependency

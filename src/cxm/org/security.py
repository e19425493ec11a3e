"""FastAPI dependencies shared by every domain's router: the request's transaction and caller."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator

from fastapi import Depends, HTTPException, Request
from sqlalchemy.engine import Connection, Engine

from cxm.org.auth import Principal, authenticate_key


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def db(request: Request) -> Iterator[Connection]:
    """One unit of work per request: committed when the handler returns, rolled back on error."""
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


def principal(request: Request) -> Principal | None:
    """The caller, from an API key or (for pages) the signed-in session, else None."""
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
    request.state.principal = found
    return found


def require(scope: str) -> Callable[[Request], Principal]:
    """Dependency: 401 without valid credentials, 403 when the key's scope does not cover it."""

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
        return who

    return dependency

"""Sign-in for people: server-side sessions, CSRF tokens on forms, lockout, sign-out.

The session cookie carries a random token; the session itself (user, CSRF token, expiry) is a
row in the store, so sign-out and a password change end it for every copy of the cookie.
"""

from __future__ import annotations

import datetime as dt
import hmac
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, Signer
from sqlalchemy.engine import Connection

from cxm.config import Settings
from cxm.errors import Invalid, NotFound
from cxm.org import auth
from cxm.org.auth import Principal
from cxm.org.scope import partner_may_reach, scope_for
from cxm.org.security import db, get_engine
from cxm.web.templating import templates

SESSION_COOKIE = "cxm_session"
CSRF_COOKIE = "cxm_csrf"

router = APIRouter(include_in_schema=False)


class LoginRequired(Exception):
    """Raised by page dependencies when nobody is signed in; answered with a redirect."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def secret_key(settings: Settings) -> str:
    """CXM_SECRET_KEY, else a random key kept in the data folder (created mode 0600)."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.data_dir) / ".secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created with its final mode: no moment when another user could read it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def _signer(request: Request) -> Signer:
    # Signed so a forged or truncated cookie is refused before any store lookup.
    signer: Signer | None = getattr(request.app.state, "session_signer", None)
    if signer is None:
        signer = Signer(secret_key(request.app.state.settings), salt="session")
        request.app.state.session_signer = signer
    return signer


def _cookie_token(request: Request) -> str | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        return _signer(request).unsign(raw).decode()
    except BadSignature:
        return None


def session_age(request: Request) -> dt.timedelta:
    settings: Settings = request.app.state.settings
    return dt.timedelta(hours=settings.session_hours)


def _session(request: Request) -> auth.Session | None:
    """The live session of this request's cookie (looked up once per request)."""
    if hasattr(request.state, "session"):
        found: auth.Session | None = request.state.session
        return found
    token = _cookie_token(request)
    found = None
    if token:
        with get_engine(request).connect() as conn:
            found = auth.find_session(conn, token)
    request.state.session = found
    return found


def session_principal(request: Request) -> Principal | None:
    """The signed-in user of this request (installed as the app's session resolver)."""
    data = _session(request)
    if data is None:
        return None
    with get_engine(request).connect() as conn:
        return auth.principal_for_user(conn, data.user_id)


def session_csrf(request: Request) -> str | None:
    """The CSRF token of this request's session, or None without one."""
    data = _session(request)
    return data.csrf if data is not None else None


def csrf_token(request: Request) -> str:
    """The token every form carries: the session's, or a pre-session one for the sign-in form."""
    data = _session(request)
    if data is not None:
        return data.csrf
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if token is None:
        token = secrets.token_urlsafe(24)
        request.state.new_csrf = token
    return str(token)


def check_csrf(request: Request, submitted: str) -> None:
    expected = csrf_token(request)
    if not submitted or not hmac.compare_digest(expected, submitted):
        raise Invalid("the form expired or came from another site; reload the page and try again")


def signed_in(request: Request) -> Principal:
    """Page dependency: the signed-in user, else a redirect to the sign-in page."""
    who = session_principal(request)
    if who is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    if not partner_may_reach(scope_for(who), request.method, request.url.path):
        raise NotFound("page not found")
    request.state.principal = who
    return who


def _set_cookie(request: Request, response: Response, name: str, value: str, age: int) -> None:
    response.set_cookie(
        name, value, max_age=age, httponly=True, samesite="lax",
        secure=request.url.scheme == "https", path="/",
    )  # fmt: skip


def _safe_next(next_url: str) -> str:
    # Only same-site paths, so the sign-in form cannot be used as an open redirect.
    return next_url if next_url.startswith("/") and not next_url.startswith("//") else "/"


def login_page(request: Request, error: str | None = None, status: int = 200,
               next_url: str = "/") -> HTMLResponse:  # fmt: skip
    token = csrf_token(request)
    response = templates.TemplateResponse(
        request, "login.html",
        {"error": error, "csrf_token": token, "next": _safe_next(next_url)},
        status_code=status,
    )  # fmt: skip
    if getattr(request.state, "new_csrf", None):
        _set_cookie(request, response, CSRF_COOKIE, token, 3600)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return login_page(request, next_url=next)


@router.post("/login", response_model=None)
def login(
    request: Request,
    email: str = Form(""),
    password: str = Form(""),
    csrf_token_: str = Form("", alias="csrf_token"),
    next: str = Form("/"),
    conn: Connection = Depends(db, scope="function"),
) -> Response:
    try:
        check_csrf(request, csrf_token_)
    except Invalid as exc:
        return login_page(request, str(exc), 400, next)
    try:
        user_id = auth.sign_in(conn, email, password)
    except auth.SignInRefused as exc:
        # The failed attempt is committed with the request (it counts toward the lockout).
        return login_page(request, str(exc), 401, next)
    age = session_age(request)
    token, _ = auth.start_session(conn, user_id, age)
    target = _safe_next(next)
    who = auth.principal_for_user(conn, user_id)
    if who is not None and who.partner_key and target == "/":
        target = f"/partners/{who.partner_key}"  # a partner user's one page
    response = RedirectResponse(target, status_code=303)
    cookie = _signer(request).sign(token).decode()
    _set_cookie(request, response, SESSION_COOKIE, cookie, int(age.total_seconds()))
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(
    request: Request,
    csrf_token_: str = Form("", alias="csrf_token"),
    conn: Connection = Depends(db, scope="function"),
) -> RedirectResponse:
    check_csrf(request, csrf_token_)
    token = _cookie_token(request)
    if token:
        auth.end_session(conn, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/account/password", response_class=HTMLResponse)
def password_form(request: Request, who: Principal = Depends(signed_in)) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "password.html", {"who": who, "csrf_token": csrf_token(request)}
    )


@router.post("/account/password", response_class=HTMLResponse)
def password_change(
    request: Request,
    current: str = Form(""),
    new: str = Form(""),
    csrf_token_: str = Form("", alias="csrf_token"),
    who: Principal = Depends(signed_in),
    conn: Connection = Depends(db, scope="function"),
) -> HTMLResponse:
    context: dict[str, Any] = {"who": who, "csrf_token": csrf_token(request)}
    try:
        check_csrf(request, csrf_token_)
        assert who.user_id is not None
        auth.change_password(conn, who.user_id, current, new, keep_session=_cookie_token(request))
    except Invalid as exc:
        return templates.TemplateResponse(
            request, "password.html", context | {"error": str(exc)}, status_code=400
        )
    return templates.TemplateResponse(request, "password.html", context | {"done": True})


def login_redirect(request: Request, exc: LoginRequired) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(exc.next_url)}", status_code=303)

"""Sign-in through the real app: cookies, CSRF, lockout, sign-out, password change."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.org import auth

PASSWORD = "correct horse battery"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the form carries no CSRF token"
    return match.group(1)


def _user(engine: Engine, email: str = "lead@example.com", role: str = "cx_lead") -> str:
    with engine.begin() as conn:
        return auth.create_user(conn, email, role, password=PASSWORD)


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> int:
    form = client.get("/login")
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": _csrf(form.text), "next": "/"},
        follow_redirects=False,
    )
    return response.status_code


def test_pages_redirect_to_sign_in_and_back(app_client: TestClient, seeded: Engine) -> None:
    _user(seeded)
    first = app_client.get("/?department=billing", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/login?next=/%3Fdepartment%3Dbilling"
    form = app_client.get(first.headers["location"])
    assert 'value="/?department=billing"' in form.text
    done = app_client.post(
        "/login",
        data={"email": "LEAD@example.com", "password": PASSWORD, "csrf_token": _csrf(form.text),
              "next": "/?department=billing"},
        follow_redirects=False,
    )  # fmt: skip
    assert done.status_code == 303 and done.headers["location"] == "/?department=billing"
    cookie = done.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    home = app_client.get("/")
    assert home.status_code == 200 and "lead@example.com" in home.text


def test_sign_in_without_csrf_token_is_refused(app_client: TestClient, seeded: Engine) -> None:
    _user(seeded)
    response = app_client.post("/login", data={"email": "lead@example.com", "password": PASSWORD})
    assert response.status_code == 400 and "reload the page" in response.text
    assert app_client.get("/", follow_redirects=False).status_code == 303


def test_open_redirects_are_refused(app_client: TestClient, seeded: Engine) -> None:
    _user(seeded)
    form = app_client.get("/login?next=https://evil.example/")
    assert 'name="next" value="/"' in form.text


def test_lockout_after_repeated_failures(app_client: TestClient, seeded: Engine) -> None:
    _user(seeded)
    for _ in range(auth.MAX_FAILED_LOGINS):
        assert sign_in(app_client, "lead@example.com", "wrong password") == 401
    assert sign_in(app_client, "lead@example.com") == 401  # the right password, but locked
    page = app_client.get("/login")
    response = app_client.post(
        "/login",
        data={"email": "lead@example.com", "password": PASSWORD, "csrf_token": _csrf(page.text)},
    )
    assert "locked" in response.text


def test_sign_out_needs_the_token_and_ends_the_session(
    app_client: TestClient, seeded: Engine
) -> None:
    _user(seeded)
    assert sign_in(app_client, "lead@example.com") == 303
    home = app_client.get("/")
    assert app_client.post("/logout", data={"csrf_token": "forged"}).status_code == 422
    assert app_client.get("/").status_code == 200
    out = app_client.post("/logout", data={"csrf_token": _csrf(home.text)}, follow_redirects=False)
    assert out.status_code == 303
    assert app_client.get("/", follow_redirects=False).status_code == 303


def test_password_change(app_client: TestClient, seeded: Engine) -> None:
    _user(seeded)
    sign_in(app_client, "lead@example.com")
    page = app_client.get("/account/password")
    token = _csrf(page.text)
    short = app_client.post(
        "/account/password", data={"current": PASSWORD, "new": "short", "csrf_token": token}
    )
    assert short.status_code == 400 and "at least 10" in short.text
    ok = app_client.post(
        "/account/password",
        data={"current": PASSWORD, "new": "a much longer one", "csrf_token": token},
    )
    assert ok.status_code == 200 and "was changed" in ok.text
    app_client.cookies.clear()
    assert sign_in(app_client, "lead@example.com") == 401
    assert sign_in(app_client, "lead@example.com", "a much longer one") == 303


def test_api_accepts_a_signed_in_session_with_the_users_scope(
    app_client: TestClient, seeded: Engine
) -> None:
    _user(seeded, "viewer@example.com", "viewer")
    sign_in(app_client, "viewer@example.com")
    home = app_client.get("/")
    assert app_client.get("/api/v1/departments").status_code == 200
    denied = app_client.post(
        "/api/v1/departments",
        json={"key": "legal", "name": "Legal"},
        headers={"X-CSRF-Token": _csrf(home.text)},
    )
    assert denied.status_code == 403 and "scope 'read'" in denied.json()["detail"]

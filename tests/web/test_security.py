"""Sessions, forms and headers as OWASP ASVS level 2 expects, one behaviour per test."""

from __future__ import annotations

import re
import stat
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.config import load_settings
from cxm.org import auth
from cxm.org import service as org
from cxm.store import create_engine, upgrade
from cxm.web.app import create_app
from cxm.web.sessions import SESSION_COOKIE, secret_key
from tests.conftest import make_key
from tests.web.conftest import World
from tests.web.test_pages import as_role
from tests.web.test_sessions import PASSWORD, _csrf, _user, sign_in

HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
}


def _copy_cookie(client: TestClient) -> str:
    value = client.cookies.get(SESSION_COOKIE)
    assert value
    return value


def test_a_copied_session_cookie_stops_working_after_sign_out(
    app_client: TestClient, seeded: Engine
) -> None:
    _user(seeded)
    assert sign_in(app_client, "lead@example.com") == 303
    copied = _copy_cookie(app_client)
    token = _csrf(app_client.get("/").text)
    assert app_client.post("/logout", data={"csrf_token": token}).status_code == 200
    app_client.cookies.set(SESSION_COOKIE, copied)
    assert app_client.get("/", follow_redirects=False).status_code == 303
    assert app_client.get("/api/v1/departments").status_code == 401


def test_a_forged_session_cookie_is_refused(app_client: TestClient, seeded: Engine) -> None:
    _user(seeded)
    app_client.cookies.set(SESSION_COOKIE, "made-up.value")
    assert app_client.get("/", follow_redirects=False).status_code == 303


def test_password_change_ends_the_other_sessions_and_keeps_this_one(
    app_client: TestClient, seeded: Engine, tmp_path: Path
) -> None:
    _user(seeded)
    settings = load_settings(data_dir=tmp_path, database_url=str(seeded.url))
    with TestClient(create_app(settings, engine=seeded, run_worker=False)) as other:
        assert sign_in(other, "lead@example.com") == 303
        assert sign_in(app_client, "lead@example.com") == 303
        page = app_client.get("/account/password")
        form = {
            "current": PASSWORD,
            "new": "a brand new passphrase",
            "csrf_token": _csrf(page.text),
        }
        done = app_client.post("/account/password", data=form)
        assert done.status_code == 200 and "was changed" in done.text
        assert other.get("/", follow_redirects=False).status_code == 303
    assert app_client.get("/", follow_redirects=False).status_code == 200


def test_session_cookie_api_writes_need_the_csrf_token(
    app_client: TestClient, seeded: Engine
) -> None:
    _user(seeded, "admin@example.com", "admin")
    assert sign_in(app_client, "admin@example.com") == 303
    body = {"key": "legal", "name": "Legal"}
    forged = app_client.post("/api/v1/departments", json=body)
    assert forged.status_code == 403 and "X-CSRF-Token" in forged.json()["detail"]
    wrong = app_client.post("/api/v1/departments", json=body, headers={"X-CSRF-Token": "x"})
    assert wrong.status_code == 403
    token = _csrf(app_client.get("/").text)
    ok = app_client.post("/api/v1/departments", json=body, headers={"X-CSRF-Token": token})
    assert ok.status_code in (200, 201), ok.text
    assert app_client.get("/api/v1/departments").status_code == 200  # reads need no token


def test_session_cookie_text_plain_ingest_needs_the_csrf_token(
    app_client: TestClient, seeded: Engine
) -> None:
    # A form on another site can send text/plain without a preflight: the classic CSRF body.
    _user(seeded, "admin@example.com", "admin")
    assert sign_in(app_client, "admin@example.com") == 303
    event = '{"event_id": "csrf-1", "name": "login", "email": "x@example.com"}'
    plain = {"content-type": "text/plain"}
    assert app_client.post("/api/v1/interactions", content=event, headers=plain).status_code == 403
    segment = app_client.post("/v1/track", content='{"userId": "u", "event": "e"}', headers=plain)
    assert segment.status_code == 403


def test_key_authenticated_api_writes_need_no_csrf_token(
    app_client: TestClient, seeded: Engine
) -> None:
    headers = make_key(seeded, "admin")
    created = app_client.post(
        "/api/v1/departments", json={"key": "legal", "name": "Legal"}, headers=headers
    )
    assert created.status_code in (200, 201), created.text
    event = {"event_id": "k-1", "name": "login", "email": "x@example.com"}
    stored = app_client.post("/api/v1/interactions", json=event, headers=make_key(seeded, "ingest"))
    assert stored.status_code == 201


def _case_form(client: TestClient, **data: str) -> tuple[int, str]:
    page = client.get("/cases/case-ana")
    assert page.status_code == 200
    response = client.post("/cases/case-ana", data={"csrf_token": _csrf(page.text), **data})
    return response.status_code, response.text


def test_case_form_refuses_an_unknown_status_like_the_api(
    app_client: TestClient, seeded: Engine, world: World
) -> None:
    client = as_role(app_client, seeded, "cx_lead")
    status, text = _case_form(client, action="status", status="hacked")
    assert status == 422 and "status" in text and "in_progress" in text
    api = client.post(
        "/api/v1/cases/case-ana/status",
        json={"status": "hacked"},
        headers={"X-CSRF-Token": _csrf(client.get("/cases").text)},
    )
    assert api.status_code == 422
    assert client.get("/api/v1/cases/case-ana").json()["status"] == "new"


def test_case_form_refuses_an_overlong_note_like_the_api(
    app_client: TestClient, seeded: Engine, world: World
) -> None:
    client = as_role(app_client, seeded, "cx_lead")
    status, text = _case_form(client, action="note", note="x" * 200_000)
    assert status == 422 and "at most 10000 characters" in text
    assert client.get("/api/v1/cases/case-ana").json()["notes"] == []
    ok, _ = _case_form(client, action="note", note="called the customer back")
    assert ok == 200
    assert [n["body"] for n in client.get("/api/v1/cases/case-ana").json()["notes"]] == [
        "called the customer back"
    ]


def _paths(world: World) -> Iterator[str]:
    yield from ("/", "/login", "/cases", "/feedback", "/org", "/surveys", "/initiatives")
    yield from (f"/customers/{world.ana}", "/customers/nobody", "/rules", "/account/password")
    yield from ("/api/v1/departments", "/api/v1/cases/none", "/api/openapi.json", "/healthz")
    yield from ("/static/cxm.css", "/static/charts.js", f"/surveys/{world.survey}")


def test_every_response_carries_the_security_headers(
    app_client: TestClient, seeded: Engine, world: World
) -> None:
    client = as_role(app_client, seeded, "admin")
    for path in _paths(world):
        response = client.get(path, headers={"accept": "text/html"})
        assert response.status_code < 500, path
        for name, value in HEADERS.items():
            assert response.headers.get(name) == value, (path, name)
        assert response.headers["x-frame-options"] == "DENY", path
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0], path
    app_client.cookies.clear()
    anonymous = app_client.get("/api/v1/departments")
    assert anonymous.status_code == 401 and anonymous.headers["x-frame-options"] == "DENY"


def test_pages_carry_no_inline_scripts(
    app_client: TestClient, seeded: Engine, world: World
) -> None:
    client = as_role(app_client, seeded, "admin")
    for path in _paths(world):
        response = client.get(path)
        if "text/html" not in response.headers.get("content-type", ""):
            continue
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", response.text, re.S)
        assert all("src=" in attrs and not body.strip() for attrs, body in scripts), path
        assert not re.search(r"\son[a-z]+=", response.text), path


def test_api_docs_scripts_run_by_nonce_only(app_client: TestClient) -> None:
    docs = app_client.get("/api/docs")
    csp = docs.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert docs.status_code == 200 and nonce and "unsafe-inline" not in csp.split(";")[1]
    tags = re.findall(r"<script[^>]*>", docs.text)
    assert tags and all(f'nonce="{nonce.group(1)}"' in t for t in tags)


def test_survey_pages_may_be_framed_only_by_the_configured_origins(
    seeded: Engine, tmp_path: Path
) -> None:
    from tests.surveys.conftest import apply

    with seeded.begin() as conn:
        apply(conn)
    settings = load_settings(
        data_dir=tmp_path, database_url=str(seeded.url),
        frame_ancestors=("https://shop.example.com",),
    )  # fmt: skip
    with TestClient(create_app(settings, engine=seeded, run_worker=False)) as client:
        page = client.get("/s/open/delivery_csat")
        staff = client.get("/login")
    assert page.status_code == 200 and "x-frame-options" not in page.headers
    assert "frame-ancestors https://shop.example.com" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert staff.headers["x-frame-options"] == "DENY"


def _open_posts(client: TestClient, forwarded: list[str]) -> list[int]:
    return [
        client.post(
            "/s/open/delivery_csat", data={"q": "csat", "a": "5"},
            headers={"x-forwarded-for": ip},
        ).status_code
        for ip in forwarded
    ]  # fmt: skip


@pytest.mark.parametrize("trusted", [(), ("10.0.0.1",)])
def test_forwarded_for_is_ignored_unless_a_trusted_proxy_sent_it(
    seeded: Engine, tmp_path: Path, trusted: tuple[str, ...]
) -> None:
    from tests.surveys.conftest import apply

    with seeded.begin() as conn:
        apply(conn)
    settings = load_settings(data_dir=tmp_path, database_url=str(seeded.url),
                             trusted_proxies=trusted)  # fmt: skip
    with TestClient(create_app(settings, engine=seeded, run_worker=False)) as client:
        # TestClient connects as "testclient": never a trusted proxy here.
        codes = _open_posts(client, [f"203.0.113.{i}" for i in range(25)])
    assert 429 in codes


def test_forwarded_for_names_the_client_behind_a_trusted_proxy(
    seeded: Engine, tmp_path: Path
) -> None:
    from tests.surveys.conftest import apply

    with seeded.begin() as conn:
        apply(conn)
    settings = load_settings(data_dir=tmp_path, database_url=str(seeded.url),
                             trusted_proxies=("testclient",))  # fmt: skip
    with TestClient(create_app(settings, engine=seeded, run_worker=False)) as client:
        spread = _open_posts(client, [f"203.0.113.{i}" for i in range(25)])
        one = _open_posts(client, ["198.51.100.7"] * 25)
    assert 429 not in spread and 429 in one


def test_open_link_records_only_a_known_touchpoint(app_client: TestClient, seeded: Engine) -> None:
    import sqlalchemy as sa

    from cxm.surveys.tables import responses
    from tests.surveys.conftest import apply

    with seeded.begin() as conn:
        apply(conn)
        org.ensure_touchpoints(conn, {"store_42"})
    for touchpoint in ("<svg onload=alert(1)>", "store_42"):
        answered = app_client.post(
            "/s/open/delivery_csat", params={"touchpoint": touchpoint},
            data={"q": "csat", "a": "4"},
        )  # fmt: skip
        assert answered.status_code == 200
    with seeded.connect() as conn:
        stored = conn.execute(sa.select(responses.c.touchpoint_key)).scalars().all()
    assert sorted(stored, key=str) == sorted([None, "store_42"], key=str)


def _refusal(client: TestClient, email: str, password: str = "wrong password") -> str:
    form = client.get("/login")
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": _csrf(form.text)},
    )
    assert response.status_code == 401
    match = re.search(r'class="error"[^>]*>([^<]+)<', response.text)
    assert match, response.text
    return match.group(1)


def test_sign_in_refusal_reads_the_same_for_unknown_existing_and_locked_accounts(
    app_client: TestClient, seeded: Engine
) -> None:
    _user(seeded)
    unknown = _refusal(app_client, "nobody@example.com")
    wrong = _refusal(app_client, "lead@example.com")
    for _ in range(auth.MAX_FAILED_LOGINS):
        _refusal(app_client, "lead@example.com")
    locked = _refusal(app_client, "lead@example.com", PASSWORD)
    for _ in range(auth.MAX_FAILED_LOGINS + 1):
        unknown_again = _refusal(app_client, "nobody@example.com")
    assert unknown == wrong == locked == unknown_again


def test_sign_in_takes_as_long_for_an_unknown_email_as_for_an_existing_one(
    duckdb_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CXM_ARGON2_PROFILE", auth.DEFAULT_ARGON2_PROFILE)  # not the suite's
    with duckdb_engine.begin() as conn:
        auth.create_user(conn, "lead@example.com", "cx_lead", password=PASSWORD)

    def seconds(email: str) -> float:
        with duckdb_engine.begin() as conn:
            start = time.perf_counter()
            with pytest.raises(auth.SignInRefused):
                auth.sign_in(conn, email, "wrong password")
            return time.perf_counter() - start

    seconds("nobody@example.com")  # the dummy hash is made once
    known = statistics.median(seconds("lead@example.com") for _ in range(4))
    unknown = statistics.median(seconds("nobody@example.com") for _ in range(4))
    # Both run one argon2 verification (tens of milliseconds); a skipped one is ~1 ms.
    assert unknown > 0.5 * known and known > 0.5 * unknown, (known, unknown)


def test_the_store_file_and_the_secret_key_file_are_private(tmp_path: Path) -> None:
    store = tmp_path / "data" / "cxm.duckdb"
    engine = create_engine(f"duckdb:///{store}")
    upgrade(engine)
    engine.dispose()
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.parent.stat().st_mode) == 0o700
    key = secret_key(load_settings(data_dir=tmp_path / "keys", secret_key=""))
    path = tmp_path / "keys" / ".secret_key"
    assert key and stat.S_IMODE(path.stat().st_mode) == 0o600

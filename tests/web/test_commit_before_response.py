"""A request's writes are committed before its response leaves the server: a browser that
follows the redirect at once (sign-in, then the overview) finds them. Before, the commit came
after the response, and now and then the page after signing in found no session."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.config import load_settings
from cxm.org import auth
from cxm.org.tables import user_sessions
from cxm.web.app import create_app

EMAIL, PASSWORD = "lead@example.com", "a long password"


def _sessions(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(user_sessions)).scalar_one())


def test_every_handler_commits_before_its_response() -> None:
    """No handler takes the unit of work without ``scope="function"`` (see org.security.db)."""
    src = Path(__file__).resolve().parents[2] / "src" / "cxm"
    late = [f"{p.relative_to(src)}:{n}" for p in src.rglob("*.py")
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if re.search(r"Depends\(db\)", line)]  # fmt: skip
    assert not late, late


def test_a_sign_in_is_committed_before_its_redirect_is_sent(seeded: Engine, tmp_path: Path) -> None:
    with seeded.begin() as conn:
        auth.create_user(conn, EMAIL, "cx_lead", password=PASSWORD)
    app = create_app(load_settings(data_dir=tmp_path, database_url=str(seeded.url)),
                     engine=seeded, run_worker=False)  # fmt: skip
    with TestClient(app) as client:  # the sign-in form's CSRF cookie and token
        form = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    body = urlencode({"email": EMAIL, "password": PASSWORD, "csrf_token": token.group(1),
                      "next": "/"}).encode()  # fmt: skip
    seen: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            # The moment the browser could follow the redirect: the session must be stored.
            seen["status"] = message["status"]
            seen["sessions"] = await asyncio.to_thread(_sessions, seeded)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/login", "raw_path": b"/login", "query_string": b"",
        "root_path": "", "server": ("testserver", 80), "client": ("127.0.0.1", 5000),
        "headers": [(b"host", b"testserver"), (b"cookie", cookie.encode()),
                    (b"content-type", b"application/x-www-form-urlencoded"),
                    (b"content-length", str(len(body)).encode())],
        "state": {},
    }  # fmt: skip
    assert _sessions(seeded) == 0
    # In a thread of its own: the browser tests' session fixture may hold this thread's loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, app(scope, receive, send)).result()
    assert seen == {"status": 303, "sessions": 1}

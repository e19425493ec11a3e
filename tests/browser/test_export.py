"""PDF and PNG exports of pages, rendered by chromium as the reader sees them."""

from __future__ import annotations

import concurrent.futures
import io
import struct
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.org import auth
from cxm.org.tables import user_sessions
from tests.browser.conftest import LiveServer


def _key(engine: Engine, scope: str, email: str | None = None, role: str = "cx_lead",
         department: str | None = None) -> dict[str, str]:  # fmt: skip
    with engine.begin() as conn:
        user_id = None
        if email:
            user_id = auth.create_user(conn, email, role, password="a long password",
                                       department_key=department)  # fmt: skip
        token = auth.create_api_key(conn, scope, user_id=user_id)
    return {"Authorization": f"Bearer {token}"}


def test_a_dashboard_exports_as_pdf_and_png_for_its_reader(
    live_engine: Engine, live_server: LiveServer
) -> None:
    headers = _key(live_engine, "read", "lead@example.com")
    url = f"{live_server.url}/api/v1/reports/export"
    pdf = httpx.get(url, params={"path": "/", "format": "pdf"}, headers=headers,
                    timeout=120)  # fmt: skip
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-") and b"%%EOF" in pdf.content[-1024:]
    assert 'filename="cxm-home.pdf"' in pdf.headers["content-disposition"]
    png = httpx.get(url, params={"path": "/", "format": "png"}, headers=headers,
                    timeout=120)  # fmt: skip
    assert png.status_code == 200
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", io.BytesIO(png.content[16:24]).read())
    assert width == 1440 and height >= 900
    # The session made for the render is gone afterwards.
    with live_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(user_sessions)).scalar() == 0


def test_an_export_is_refused_outside_pages_and_outside_the_readers_scope(
    live_engine: Engine, live_server: LiveServer
) -> None:
    url = f"{live_server.url}/api/v1/reports/export"
    manager = _key(live_engine, "read", "m@example.com", "manager", "supply_chain")
    api = httpx.get(url, params={"path": "/api/v1/customers"}, headers=manager)
    assert api.status_code == 422 and "not a page that can be exported" in api.text
    other = httpx.get(url, params={"path": "https://evil.example/"}, headers=manager)
    assert other.status_code == 422 and "must be a page of cxm" in other.text
    outside = httpx.get(url, params={"path": "/departments/service"}, headers=manager,
                        timeout=120)  # fmt: skip
    assert outside.status_code == 404
    not_admin = httpx.get(url, params={"path": "/", "as": "m@example.com"}, headers=manager)
    assert not_admin.status_code == 403
    admin = _key(live_engine, "admin")
    params = {"path": "/departments/supply_chain", "format": "png", "as": "m@example.com"}
    as_manager = httpx.get(url, params=params, headers=admin, timeout=120)
    assert as_manager.status_code == 200 and as_manager.content[:4] == b"\x89PNG"
    nobody = httpx.get(url, params={"path": "/"}, headers=admin)
    assert nobody.status_code == 422 and "belongs to no user" in nobody.text


def test_a_subscribed_page_arrives_weekly_as_an_attachment(
    live_engine: Engine, live_server: LiveServer, tmp_path: Path
) -> None:
    import datetime as dt
    import email
    import email.policy

    from cxm.config import load_settings
    from cxm.web.export import send_due_exports
    from tests.actions.conftest import smtp_server

    headers = _key(live_engine, "read", "lead@example.com")
    subscribe = f"{live_server.url}/api/v1/reports/export/subscriptions"
    made = httpx.post(
        subscribe, params={"path": "/cases", "format": "pdf", "weekday": 0}, headers=headers
    )
    assert made.status_code == 201, made.text
    bad = httpx.post(subscribe, params={"path": "/api/v1/cases"}, headers=headers)
    assert bad.status_code == 422
    monday = dt.datetime(2026, 11, 30, 7, tzinfo=dt.UTC)
    with smtp_server() as (port, inbox):
        settings = load_settings(data_dir=tmp_path, smtp_port=port, base_url=live_server.url)
        # The server renders in a worker thread; so does the test (the session's browser
        # fixture holds this thread's event loop, which Playwright's sync API refuses).
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            first = pool.submit(send_due_exports, live_engine, settings, now=monday).result()
        with live_engine.connect() as conn:
            errors = conn.execute(sa.text("select error from report_sends")).scalars().all()
        assert first == {"sent": 1, "failed": 0}, errors
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            again = pool.submit(send_due_exports, live_engine, settings, now=monday).result()
        assert again == {"sent": 0, "failed": 0}
    (mail,) = inbox.messages
    message = email.message_from_string(mail["data"], policy=email.policy.default)
    assert message["Subject"] == "cxm: /cases for the week of 2026-11-23"
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == "cxm-cases-2026-11-23.pdf"
    assert attachment.get_content().startswith(b"%PDF-")

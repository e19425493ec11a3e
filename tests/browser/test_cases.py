"""An agent works a case from new to closed in chromium; the follow-up email arrives."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.engine import Engine

from cxm.actions import service
from cxm.yamldoc import parse
from tests.actions.conftest import (
    DETRACTOR_RULES,
    Inbox,
    add_agent,
    add_customer,
    add_response,
    setup_org,
    smtp_server,
)
from tests.browser.conftest import LiveServer, screenshot

pytestmark = pytest.mark.browser


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def cases_server(
    live_engine: Engine, tmp_path: Path, smtp: tuple[int, Inbox], monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveServer]:
    monkeypatch.setenv("CXM_SMTP_PORT", str(smtp[0]))
    monkeypatch.setenv("CXM_SMTP_HOST", "127.0.0.1")
    with live_engine.begin() as conn:
        setup_org(conn)
        add_agent(conn, "dee@example.com", "delivery_team")
        service.apply_rules(conn, parse(DETRACTOR_RULES))
        cid = add_customer(conn, "ann@example.com")
        add_response(conn, cid, "delivery", nps=2)
        add_response(conn, None, "support_chat", nps=1)  # another team's case
        service.run_rules(conn)
    with LiveServer(live_engine, tmp_path) as server:
        yield server


def test_agent_works_a_case_from_new_to_closed(
    cases_server: LiveServer, page: Page, smtp: tuple[int, Inbox]
) -> None:
    _, inbox = smtp
    page.goto(cases_server.url + "/cases")
    page.get_by_label("Email").fill("dee@example.com")
    page.get_by_label("Password").fill("a long password")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/cases")
    rows = page.locator("#cases tbody tr")
    assert rows.count() == 1  # only the agent's team
    assert "Delivery team" in rows.first.inner_text()  # the team's name, not its key
    screenshot(page, "cases-inbox")
    rows.first.get_by_role("link").click()
    assert page.locator("#case-status").inner_text() == "New"
    page.locator("#status").select_option("in_progress")
    page.get_by_role("button", name="Update status").click()
    assert page.locator("#case-status").inner_text() == "In progress"
    page.get_by_label("Add a note").fill("Called Ann; a new parcel goes out today.")
    page.get_by_role("button", name="Add note").click()
    assert "new parcel" in page.locator("#notes").inner_text()
    page.locator("#root-causes").select_option(["late_delivery"])
    page.get_by_role("button", name="Save root causes").click()
    assert page.locator("#case-root-causes").inner_text() == "Late delivery"
    page.locator("#status").select_option("closed")
    page.get_by_role("button", name="Update status").click()
    assert page.locator("#case-status").inner_text() == "Closed"
    # Planned, queued or already sent: never a bare "requested" that hides a failure.
    expect(page.locator("#case-followup")).to_have_text(re.compile(r"^(requested: |sent)"))
    screenshot(page, "case-closed")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any("ann@example.com" in m["to"] for m in inbox.messages):
            break
        time.sleep(0.3)
    mail = next(m for m in inbox.messages if "ann@example.com" in m["to"])
    assert "Did we resolve your issue?" in mail["data"]
    # The job that sent it commits just after the hand-over: read the case until it says so.
    deadline = time.monotonic() + 30
    while page.locator("#case-followup").inner_text() != "sent, not answered yet":
        assert time.monotonic() < deadline, page.locator("#case-followup").inner_text()
        page.reload()


def test_root_cause_page_shows_the_loop_metrics(
    cases_server: LiveServer, page: Page, live_engine: Engine
) -> None:
    with live_engine.begin() as conn:
        from cxm.org import auth

        auth.create_user(conn, "lead@example.com", "cx_lead", password="a long password")
    page.goto(cases_server.url + "/cases/root-causes")
    page.get_by_label("Email").fill("lead@example.com")
    page.get_by_label("Password").fill("a long password")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/cases/root-causes")
    assert page.get_by_role("heading", name="Root causes").is_visible()
    assert "2" in page.locator(".kpi").first.inner_text()  # two cases opened
    screenshot(page, "cases-root-causes")

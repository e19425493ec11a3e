"""The organization page as a person sees it in chromium."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page
from sqlalchemy.engine import Engine

from cxm.org import auth
from cxm.org import service as org
from cxm.yamldoc import parse
from tests.browser.conftest import LiveServer, screenshot

ORG = """\
touchpoints:
  - {key: delivery, name: Home delivery, channel: delivery, stage: receive,
     owner: {department: supply_chain}, contributors: [operations]}
  - {key: support_chat, name: Support chat, channel: chat, stage: get help,
     owner: {department: service}}
"""

pytestmark = pytest.mark.browser


def sign_in(page: Page, server: LiveServer, engine: Engine) -> None:
    with engine.begin() as conn:
        auth.create_user(conn, "lead@example.com", "cx_lead", password="a long password")
    page.goto(server.url + "/")
    page.get_by_label("Email").fill("lead@example.com")
    page.get_by_label("Password").fill("a long password")
    page.get_by_role("button", name="Sign in").click()


def test_home_lists_departments_and_touchpoints_with_owners(
    live_server: LiveServer, live_engine: Engine, page: Page
) -> None:
    with live_engine.begin() as conn:
        org.apply_org(conn, parse(ORG))
        org.ensure_touchpoints(conn, {"kiosk"})
    sign_in(page, live_server, live_engine)
    page.goto(live_server.url + "/org")
    row = page.locator("#tp-delivery")
    assert "Supply Chain & Delivery" in row.inner_text()
    assert "Operations" in row.inner_text()  # contributor
    assert "Unowned" in page.locator("#tp-kiosk").inner_text()
    assert page.get_by_role("heading", name="Customer Service").is_visible()
    screenshot(page, "home-organization")


def test_skip_link_and_menu_are_reachable_by_keyboard(
    live_server: LiveServer, live_engine: Engine, page: Page
) -> None:
    sign_in(page, live_server, live_engine)
    page.goto(live_server.url + "/org")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "cxm"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('href')") == "/"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Departments"

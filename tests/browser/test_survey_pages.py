"""A respondent fills a survey in chromium: phone-sized, keyboard only, second language."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page
from sqlalchemy.engine import Engine

from cxm.surveys import service
from cxm.surveys.tables import responses
from tests.browser.conftest import LiveServer, screenshot
from tests.surveys.conftest import add_customer, apply

pytestmark = pytest.mark.browser


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    yield page
    context.close()


def _token(engine: Engine, **kwargs: object) -> str:
    with engine.begin() as conn:
        if not service.list_surveys(conn):
            apply(conn)
        cid = add_customer(conn, f"{len(kwargs)}-{dt.datetime.now().timestamp()}@example.com")
        inv = service.create_invitation(
            conn,
            "delivery_csat",
            customer_id=cid,
            touchpoint="delivery",
            **kwargs,  # type: ignore[arg-type]
        )
    assert inv.token
    return inv.token


def test_keyboard_only_on_a_phone_through_a_logic_branch_in_german(
    live_server: LiveServer, live_engine: Engine, phone: Page
) -> None:
    token = _token(live_engine, language="de")
    phone.goto(f"{live_server.url}/s/{token}")
    assert phone.locator("html").get_attribute("lang") == "de"
    assert phone.get_by_role("group", name="Wie zufrieden sind Sie?").is_visible()
    screenshot(phone, "survey-phone-de-question-1")
    # Tab into the scale, arrow to 2 (screen-reader name "2 von 5"), submit with Enter.
    phone.keyboard.press("Tab")
    assert phone.evaluate("document.activeElement.name") == "a"
    phone.keyboard.press("ArrowRight")  # radios: arrows move and select
    assert phone.get_by_role("radio", name="2 von 5").is_checked()
    phone.keyboard.press("Enter")
    # The branch for an unhappy answer (every step has the same address, so wait for content).
    phone.get_by_label("Was lief schief?").wait_for()
    phone.keyboard.press("Tab")
    assert phone.evaluate("document.activeElement.tagName") == "TEXTAREA"
    phone.keyboard.type("Paket war nass <b>")
    phone.keyboard.press("Tab")
    phone.keyboard.press("Enter")
    phone.get_by_role("group", name="Hauptgrund?").wait_for()
    phone.keyboard.press("Tab")
    phone.keyboard.press("Space")  # first option of the choice question
    phone.keyboard.press("Tab")
    phone.keyboard.press("Enter")
    phone.get_by_role("heading", name="Vielen Dank!").wait_for()
    screenshot(phone, "survey-phone-de-thank-you")
    with live_engine.connect() as conn:
        row = conn.execute(sa.select(responses)).mappings().one()
    assert row["completed"] and row["csat"] == 2 and row["language"] == "de"
    assert row["comment"] == "Paket war nass <b>"
    # The used link now shows the friendly page.
    again = phone.goto(f"{live_server.url}/s/{token}")
    assert again is not None and again.status == 409
    assert "bereits" in phone.content() or "already been answered" in phone.content()
    screenshot(phone, "survey-used-token")


def test_expired_link_shows_a_friendly_page(
    live_server: LiveServer, live_engine: Engine, phone: Page
) -> None:
    token = _token(live_engine, now=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    response = phone.goto(f"{live_server.url}/s/{token}")
    assert response is not None and response.status == 410
    assert phone.get_by_role("heading", name="This survey is closed").is_visible()
    screenshot(phone, "survey-expired-token")

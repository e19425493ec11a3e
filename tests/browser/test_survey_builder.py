"""The visual survey builder in chromium: a choice question's options, a trigger's channel,
delay, touchpoint and rules, with a refused edit shown next to the trigger it concerns; the
YAML view and the builder edit one definition, published as a new version."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.engine import Engine

from cxm.org import auth
from cxm.surveys import service as surveys
from cxm.yamldoc import read
from tests.actions.conftest import setup_org
from tests.browser.conftest import LiveServer, screenshot
from tests.browser.test_ux import axe_violations

pytestmark = pytest.mark.browser
TEMPLATE = Path(surveys.__file__).parent / "templates" / "support_csat.yaml"
PASSWORD = "a long password for the lead"


@pytest.fixture
def lead_page(browser: Browser, live_server: LiveServer, live_engine: Engine) -> Iterator[Page]:
    with live_engine.begin() as conn:
        setup_org(conn)
        surveys.apply_definition(conn, read(TEMPLATE))
        auth.create_user(conn, "lead@example.com", "cx_lead", password=PASSWORD)
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(60_000)
    page = context.new_page()
    page.goto(live_server.url + "/login")
    page.get_by_label("Email").fill("lead@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/")
    yield page
    context.close()


def test_options_and_triggers_are_edited_in_the_builder_and_published(
    lead_page: Page, live_server: LiveServer, live_engine: Engine
) -> None:
    page = lead_page
    page.goto(live_server.url + "/surveys/support_csat")
    builder = page.locator("#builder")
    # An option for the choice question: the preview and the YAML view show it.
    builder.get_by_label("New option").fill("Partly")
    builder.get_by_role("button", name="Add option to resolved").click()
    expect(page.locator(".preview")).to_contain_text("Partly")
    expect(page.locator("#definition")).to_have_value(re.compile(r"value: partly"))
    # A delay the survey cannot use is refused, and says so inside the trigger's box.
    trigger = page.locator("#btr-0")
    trigger.get_by_label("Delay").fill("soon")
    builder.get_by_role("button", name="Apply changes").click()
    expect(page.locator("#btr-0 .field-error")).to_contain_text("delay 'soon' is not like 30m")
    expect(page.locator("#definition")).to_have_value(re.compile(r"delay: 2h"))
    screenshot(page, "survey-builder-trigger-error")
    assert axe_violations(page) == []
    # Fixed: a delay, a touchpoint and a rule; then a second trigger by text message.
    trigger = page.locator("#btr-0")
    trigger.get_by_label("Delay").fill("30m")
    trigger.get_by_label("Touchpoint").select_option(label="Support chat")
    trigger.get_by_label(re.compile("Only when")).fill("plan = gold")
    builder.get_by_role("button", name="Apply changes").click()
    expect(page.locator("#definition")).to_have_value(re.compile(r"plan: gold"))
    new = page.locator("#b-new-trigger")
    new.get_by_label("Interaction (event)").fill("order_delivered")
    new.get_by_label("Channel").select_option("sms")
    new.get_by_label("Delay").fill("1d")
    new.get_by_role("button", name="Add trigger").click()
    expect(page.locator("#btr-1").get_by_label("Channel")).to_have_value("sms")
    # The YAML view edits the same definition: the builder follows the text.
    text = page.locator("#definition").input_value()
    page.locator("#definition").fill(text.replace("delay: 1d", "delay: 3d"))
    expect(page.locator("#btr-1").get_by_label("Delay")).to_have_value("3d")
    screenshot(page, "survey-builder-options-and-triggers")
    page.get_by_role("button", name="Publish new version").click()
    expect(page.get_by_role("status")).to_contain_text("published version 2")
    with live_engine.connect() as conn:
        defn = surveys.get_definition(conn, "support_csat")
    resolved = defn.question("resolved")
    assert resolved is not None and [o.value for o in resolved.options or []] == [
        "yes", "no", "partly"]  # fmt: skip
    first, second = defn.triggers
    assert (first.event, first.delay, first.touchpoint, first.where) == (
        "ticket_closed", "30m", "support_chat", {"plan": "gold"})  # fmt: skip
    assert (second.event, second.channel, second.delay) == ("order_delivered", "sms", "3d")

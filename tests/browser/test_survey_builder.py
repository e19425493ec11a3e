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


# Every field of the builder, as the layout check reads it: its box, its column's box, and
# whether its text fits (a text field whose value is wider than the field is clipped).
_FIELDS = """() => {
  const col = document.querySelector('#builder').getBoundingClientRect();
  return [...document.querySelectorAll(
      '#builder input:not([type=checkbox]):not([type=hidden]), #builder select, #builder textarea')]
    .filter(e => e.offsetParent !== null)
    .map(e => { const b = e.getBoundingClientRect();
      return {id: e.id || e.name, left: b.left, right: b.right, width: b.width,
              inside: b.left >= col.left - 0.5 && b.right <= col.right + 0.5,
              clipped: e.tagName === 'INPUT' && e.scrollWidth > e.clientWidth + 1}; });
}"""


def _box(page: Page, selector: str) -> dict[str, float]:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not shown"
    return box


def test_the_builder_uses_the_width_and_the_language_picker_sits_with_the_preview(
    lead_page: Page, live_server: LiveServer
) -> None:
    page = lead_page
    page.goto(live_server.url + "/surveys/support_csat")
    # 1440 px: the builder is a wide column beside the preview; no field is cut or squeezed.
    fields = page.evaluate(_FIELDS)
    assert len(fields) > 5
    outside = [f["id"] for f in fields if not f["inside"]]
    narrow = [(f["id"], round(f["width"])) for f in fields if f["width"] < 320]
    clipped = [f["id"] for f in fields if f["clipped"]]
    assert (outside, narrow, clipped) == ([], [], [])
    builder, preview = _box(page, "#builder"), _box(page, ".preview")
    assert builder["width"] >= 600
    assert preview["x"] >= builder["x"] + builder["width"]  # side by side
    yaml = _box(page, "#definition")
    assert yaml["width"] >= 600 and yaml["height"] >= 300
    # The language picker is part of the preview it controls (and still of the form).
    picker = _box(page, "#language")
    assert preview["x"] <= picker["x"] and picker["x"] + picker["width"] <= preview["x"] + preview[
        "width"] and preview["y"] <= picker["y"] <= preview["y"] + preview["height"]  # fmt: skip
    page.locator("#language").select_option("de")
    expect(page.locator(".preview h3").first).to_have_text("Wie war unser Service?")
    expect(page.locator("#language")).to_have_value("de")
    screenshot(page, "survey-builder-1440")
    # 390 px: one column, builder then YAML then preview, and nothing scrolls sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    fields = page.evaluate(_FIELDS)
    assert [f["id"] for f in fields if not f["inside"] or f["right"] > 390] == []
    builder, yaml, preview = (
        _box(page, "#builder"),
        _box(page, "#definition"),
        _box(page, ".preview"),
    )
    assert builder["y"] < yaml["y"] < preview["y"]
    picker = _box(page, "#language")
    assert preview["y"] <= picker["y"] <= preview["y"] + preview["height"]
    screenshot(page, "survey-builder-390")
    assert axe_violations(page) == []

"""The outer loop in chromium: root causes with their cost, the demo initiative's before/after,
and the rules page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page
from sqlalchemy.engine import Engine

from cxm.actions import service
from cxm.demo.load import DEMO_INITIATIVE, add_demo_initiative
from cxm.org import auth
from cxm.org.scope import Scope
from cxm.yamldoc import parse
from tests.actions.conftest import (
    DETRACTOR_RULES,
    add_agent,
    add_customer,
    add_response,
    setup_org,
)
from tests.browser.conftest import LiveServer, screenshot

pytestmark = pytest.mark.browser
START = dt.datetime.combine(DEMO_INITIATIVE.start_date, dt.time(12), dt.UTC)


@pytest.fixture
def outer_loop_server(live_engine: Engine, tmp_path: Path) -> Iterator[LiveServer]:
    """Detractor cases tagged with root causes, delivery CSAT around the demo initiative."""
    with live_engine.begin() as conn:
        setup_org(conn)
        add_agent(conn, "dee@example.com", "delivery_team")
        auth.create_user(conn, "lead@example.com", "cx_lead", password="a long password")
        service.apply_rules(conn, parse(DETRACTOR_RULES))
        for i in range(4):
            cid = add_customer(conn, f"c{i}@example.com")
            add_response(conn, cid, "delivery", nps=2, at=START - dt.timedelta(days=20 + i))
        for day in range(1, 31):
            # Delivery CSAT a little better after the start: a real difference for the test.
            before, after = START - dt.timedelta(days=day), START + dt.timedelta(days=day)
            add_response(conn, None, "delivery", csat=3 + day % 2, at=before)
            add_response(conn, None, "delivery", csat=4 + day % 2, at=after)
        service.run_rules(conn)
        lead = Scope("cx_lead")
        for n, case in enumerate(service.list_cases(conn, lead)):
            cause = "late_delivery" if n < 3 else "damaged_item"
            service.set_root_causes(conn, lead, "lead@example.com", case["id"], [cause])
        add_demo_initiative(conn)
    with LiveServer(live_engine, tmp_path) as server:
        yield server


def _sign_in(page: Page, url: str) -> None:
    page.goto(url)
    page.get_by_label("Email").fill("lead@example.com")
    page.get_by_label("Password").fill("a long password")
    page.get_by_role("button", name="Sign in").click()


def test_root_causes_and_the_demo_initiatives_before_after(
    outer_loop_server: LiveServer, page: Page
) -> None:
    _sign_in(page, outer_loop_server.url + "/cases/root-causes")
    page.wait_for_url("**/cases/root-causes")
    cost = page.locator("#cost tbody tr")
    assert cost.count() == 2
    assert cost.first.locator("th").inner_text() == "Late delivery"
    assert cost.first.locator("td").first.inner_text() == "3"  # affected customers
    assert "Late delivery" in page.locator("#by-cause").inner_text()
    screenshot(page, "outer-loop-root-causes")

    page.get_by_role("link", name="Initiatives").first.click()
    page.get_by_role("link", name=DEMO_INITIATIVE.name).click()
    assert page.get_by_role("heading", name=DEMO_INITIATIVE.name).is_visible()
    rows = page.locator("#effect tbody tr")
    assert rows.nth(0).locator("td").first.inner_text() == "30"  # responses before
    assert rows.nth(1).locator("td").first.inner_text() == "30"  # and after
    verdict = page.locator("#verdict").inner_text()
    assert "p = " in verdict and "significant change" in verdict
    assert "planted effects do not change over time" in page.locator(".lede").inner_text()
    screenshot(page, "outer-loop-initiative")


def test_a_lead_disables_a_rule_and_checks_an_edit(
    outer_loop_server: LiveServer, page: Page
) -> None:
    _sign_in(page, outer_loop_server.url + "/rules")
    page.wait_for_url("**/rules")
    row = page.locator("#rule-detractor")
    assert "NPS ≤ 6" in row.inner_text() and "Enabled" in row.inner_text()
    screenshot(page, "rules-list")
    row.get_by_role("button", name="Disable detractor").click()
    assert "Disabled" in page.locator("#rule-detractor").inner_text()
    page.get_by_role("link", name="Edit the rules (YAML)").click()
    editor = page.locator("#rules")
    editor.fill(editor.input_value().replace("nps_max: 6", "nps_max: 60"))
    page.get_by_role("button", name="Check").click()
    assert "nps_max" in page.locator("#problems").inner_text()
    assert "line" in page.locator("#problems").inner_text()
    screenshot(page, "rules-editor-check")

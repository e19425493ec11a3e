"""The journey pages in chromium at 1440 px: the map, the Sankey and the frequency slider
draw under the page's CSP; the screenshots docs/journeys.md shows are written here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Browser, Page
from sqlalchemy.engine import Engine

from cxm.demo.generator import generate
from cxm.demo.load import load
from cxm.journeys import definitions, service
from cxm.org import service as org
from cxm.store import create_engine, upgrade
from cxm.web.names import Names
from tests.browser.conftest import LiveServer
from tests.browser.test_pages_by_role import sign_in

pytestmark = pytest.mark.browser
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Engine]]:
    tmp = tmp_path_factory.mktemp("journeys")
    generate(tmp / "company", customers=400, months=3, seed=7)
    engine: Engine = create_engine(f"duckdb:///{tmp / 'cxm.duckdb'}")
    upgrade(engine)
    with engine.begin() as conn:
        org.seed_defaults(conn)
    load(engine, tmp / "company")
    with LiveServer(engine, tmp) as server:
        yield server, engine
    engine.dispose()


def _page(browser: Browser) -> Page:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(120_000)
    page = context.new_page()
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None)
    page.blocked = blocked  # type: ignore[attr-defined]
    return page


def _shoot(page: Page, name: str) -> None:
    DOCS_IMG.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS_IMG / f"{name}.png"), full_page=True)


def test_a_journey_page_draws_its_map_and_sankey(
    demo: tuple[LiveServer, Engine], browser: Browser
) -> None:
    server, engine = demo
    page = _page(browser)
    try:
        sign_in(page, server, "cx_lead")
        page.goto(server.url + "/journeys")
        page.get_by_role("link", name="order to delivery").click()
        page.wait_for_url("**/journeys/order_to_delivery")
        page.locator(".plot .main-svg").first.wait_for()
        page.locator(".plot .sankey").first.wait_for()
        graph = service.directly_follows(engine, definitions.get("order_to_delivery"))
        # Every activity is drawn with its label; the owning departments form the legend.
        labels = page.locator(".plot .textpoint").evaluate_all("els => els.map(e => e.textContent)")
        named = Names(engine)
        for node in graph["nodes"]:
            assert any(named.path(node["activity"]) in t for t in labels), node["activity"]
        legend = page.locator(".plot .legendtext").evaluate_all(
            "els => els.map(e => e.textContent)"
        )
        owners = {named.department(n["department"]) for n in graph["nodes"] if n["department"]}
        assert owners <= set(legend)
        _shoot(page, "journey-order-to-delivery")
        assert not page.blocked  # type: ignore[attr-defined]
    finally:
        page.context.close()


def test_the_frequency_slider_hides_rare_paths(
    demo: tuple[LiveServer, Engine], browser: Browser
) -> None:
    server, engine = demo
    page = _page(browser)
    try:
        sign_in(page, server, "cx_lead")
        page.goto(server.url + "/journeys/renewal")
        page.locator(".plot .main-svg").first.wait_for()
        _shoot(page, "journey-renewal")
        graph = service.directly_follows(engine, definitions.get("renewal"))
        cut = sorted(e["frequency"] for e in graph["edges"])[len(graph["edges"]) // 2]
        slider = page.locator('input[name="min_frequency"]')
        slider.evaluate(
            "(el, v) => { el.value = v; el.dispatchEvent(new Event('change')); }", str(cut)
        )
        page.wait_for_url("**min_frequency=*")
        assert parse_qs(urlparse(page.url).query)["min_frequency"] == [str(cut)]
        page.locator(".plot .main-svg").first.wait_for()
        rows = page.locator("#map-title ~ figure details tbody tr").count()
        assert rows == sum(1 for e in graph["edges"] if e["frequency"] >= cut) < len(graph["edges"])
    finally:
        page.context.close()


def test_a_manager_sees_their_steps_and_hand_offs(
    demo: tuple[LiveServer, Engine], browser: Browser
) -> None:
    server, _engine = demo
    page = _page(browser)
    try:
        sign_in(page, server, "manager")
        page.goto(server.url + "/journeys/renewal")
        page.locator(".plot .main-svg").first.wait_for()
        assert page.locator("tr.mine").count() > 0
        _shoot(page, "journey-renewal-manager")
    finally:
        page.context.close()

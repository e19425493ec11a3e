"""The daily experience in chromium: every page passes axe-core with no serious or critical
violation; the layout holds at 1440 and 390 px; the survey editor's preview follows the text;
error pages keep the navigation; the public scale names its ends."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from cxm.demo.generator import generate
from cxm.demo.load import load
from cxm.org import service as org
from cxm.store import create_engine, upgrade
from tests.browser.conftest import LiveServer, screenshot
from tests.browser.test_pages_by_role import sign_in

pytestmark = pytest.mark.browser
# axe-core from its npm package, installed by `make test` (package.json; never served).
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
ADMIN_PAGES = ["/", "/departments", "/feedback", "/customers", "/surveys", "/cases",
               "/cases/root-causes", "/initiatives", "/rules", "/rules/edit", "/org",
               "/settings", "/status", "/account/password", "/journeys", "/people",
               "/settings/journeys", "/partners/swiftpost"]  # fmt: skip


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("ux")
    generate(tmp / "company", customers=250, months=6, seed=11)
    engine = create_engine(f"duckdb:///{tmp / 'cxm.duckdb'}")
    upgrade(engine)
    with engine.begin() as conn:
        org.seed_defaults(conn)
    load(engine, tmp / "company")
    with LiveServer(engine, tmp) as server:
        yield server
    engine.dispose()


@pytest.fixture
def wide(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(90_000)
    yield context.new_page()
    context.close()


def axe_violations(page: Page) -> list[dict[str, object]]:
    """Run axe-core on the page as it stands; the serious and critical violations.

    The script is evaluated through the DevTools protocol, so the page's CSP (no inline
    scripts) stays in force for everything else."""
    assert AXE.exists(), f"{AXE} is missing: run `make test` (it runs `npm ci`) first"
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
             .filter(v => v.impact === 'serious' || v.impact === 'critical')
             .map(v => ({id: v.id, impact: v.impact, help: v.help,
                         nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}))"""
    )
    return list(found)


def _detail_pages(page: Page, server: LiveServer) -> list[str]:
    """One page of each detail kind, reached from the lists as a person would."""
    found = []
    for listing, prefix in (("/departments", "/departments/"), ("/feedback", "/customers/"),
                            ("/surveys", "/surveys/"), ("/cases", "/cases/"),
                            ("/initiatives", "/initiatives/"),
                            ("/journeys", "/journeys/")):  # fmt: skip
        page.goto(server.url + listing)
        link = page.locator(f'main a[href^="{prefix}"]:not([href*="root-causes"])').first
        href = link.get_attribute("href")
        assert href, listing
        found.append(href)
    return found


SPILLED = """() => [...document.querySelectorAll('.two-col > *, main table, main .scroll')]
                .filter(c => c.scrollWidth > c.clientWidth + 1)
                .map(c => c.tagName + '.' + c.className)"""


@dataclass
class Visit:
    """What one admin page shows at one width: axe-core's serious and critical violations,
    what spills out of its box, and how wide the document scrolls."""

    violations: list[dict[str, object]]
    spilled: list[str]
    scroll_width: int


@pytest.fixture(scope="module")
def tour(demo_server: LiveServer, browser: Browser) -> dict[int, dict[str, Visit]]:
    """Every admin page, signed in as the admin (the longest menu), at 1440 and at 390 px:
    ``{width: {path: Visit}}``. One visit per page and width serves the accessibility and the
    layout tests, which only read it; the 1440 px pages are saved as ``axe-*`` screenshots."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(90_000)
    page = context.new_page()
    sign_in(page, demo_server, "admin")
    paths = ADMIN_PAGES + _detail_pages(page, demo_server)
    seen: dict[int, dict[str, Visit]] = {}
    for width, height in ((1440, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        seen[width] = {}
        for path in paths:
            response = page.goto(demo_server.url + path)
            assert response is not None and response.status == 200, (width, path)
            if page.locator(".plot[data-figure]").count():
                page.locator(".plot .main-svg").first.wait_for()
            seen[width][path] = Visit(
                axe_violations(page),
                list(page.evaluate(SPILLED)),
                int(page.evaluate("document.documentElement.scrollWidth")),
            )
            if width == 1440:
                screenshot(page, "axe-" + (path.strip("/").replace("/", "-") or "overview"))
    context.close()
    return seen


def test_every_page_passes_axe_core(
    demo_server: LiveServer, wide: Page, tour: dict[int, dict[str, Visit]]
) -> None:
    report = {path: visit.violations for path, visit in tour[1440].items()}
    # Signed out: the sign-in page, a public survey page and an error page.
    for path, status in (("/login", 200), ("/s/open/relationship_nps", 200), ("/nowhere", 404)):
        response = wide.goto(demo_server.url + path)
        assert response is not None and response.status == status, path
        report[path] = axe_violations(wide)
    failing = {p: v for p, v in report.items() if v}
    assert not failing, json.dumps(failing, indent=1)


def test_every_page_passes_axe_core_on_a_phone(
    demo_server: LiveServer, wide: Page, tour: dict[int, dict[str, Visit]]
) -> None:
    # At 390 px wide tables scroll inside themselves; a keyboard must reach them too.
    failing = {path: visit.violations for path, visit in tour[390].items() if visit.violations}
    assert not failing, json.dumps(failing, indent=1)
    sign_in(wide, demo_server, "admin")
    wide.set_viewport_size({"width": 390, "height": 844})
    wide.goto(demo_server.url + "/org")
    expect(wide.locator("main table").first).to_have_attribute("tabindex", "0")
    screenshot(wide, "axe-390-org")


def test_the_menu_fits_at_1440_and_nothing_scrolls_sideways_at_390(
    demo_server: LiveServer, wide: Page, tour: dict[int, dict[str, Visit]]
) -> None:
    sign_in(wide, demo_server, "admin")  # the longest menu
    items = wide.locator('nav[aria-label="Main"] li')
    tops = {round(box["y"]) for box in (items.nth(i).bounding_box() for i in range(items.count()))
            if box}  # fmt: skip
    assert len(tops) == 1, f"the menu wraps onto {len(tops)} lines at 1440 px"
    cards = wide.locator(".kpis > .kpi")
    assert len({round(cards.nth(i).bounding_box()["y"]) for i in range(cards.count())}) == 1  # type: ignore[index]
    screenshot(wide, "layout-1440")
    # Side by side, nothing spills out of its column (a long id once pushed the customer 360's
    # journeys table over its timeline), and no table scrolls sideways at 1440 px (the admin's
    # ownership matrix once hid its assign buttons).
    spilled = {path: visit.spilled for path, visit in tour[1440].items() if visit.spilled}
    assert not spilled, spilled
    sideways = {path: v.scroll_width for path, v in tour[390].items() if v.scroll_width > 390}
    wide.set_viewport_size({"width": 390, "height": 844})
    wide.goto(demo_server.url + "/org")
    screenshot(wide, "layout-390-org")
    assert not sideways, sideways


def test_survey_editor_preview_follows_the_text(demo_server: LiveServer, wide: Page) -> None:
    sign_in(wide, demo_server, "cx_lead")
    wide.goto(demo_server.url + "/surveys/relationship_nps")
    editor = wide.locator("#definition")
    text = editor.input_value()
    assert "How likely are you to recommend us?" in text
    editor.fill(text.replace("How likely are you to recommend us?", "Would you recommend us?"))
    # The preview re-renders from the server once typing stops: wait on what it shows.
    expect(wide.locator(".preview h3").first).to_have_text("Would you recommend us?")
    wide.locator("#language").select_option("de")
    expect(wide.locator(".preview h3").first).to_have_text(re.compile("empfehlen"))
    screenshot(wide, "survey-editor-live-preview")


def test_error_pages_keep_the_navigation_and_the_site_has_a_favicon(
    demo_server: LiveServer, wide: Page
) -> None:
    sign_in(wide, demo_server, "cx_lead")
    for path in ("/cases/no-such-case", "/no-such-page"):
        response = wide.goto(demo_server.url + path)
        assert response is not None and response.status == 404
        expect(wide.locator('nav[aria-label="Main"] a[href="/cases"]')).to_be_visible()
        expect(wide.get_by_role("button", name="Sign out")).to_be_visible()
    screenshot(wide, "error-page-with-navigation")
    icon = wide.locator('link[rel="icon"]').get_attribute("href")
    assert icon
    answer = wide.request.get(demo_server.url + icon)
    assert answer.ok and answer.headers["content-type"].startswith("image/svg")


def test_the_public_scales_name_their_ends(demo_server: LiveServer, wide: Page) -> None:
    wide.goto(demo_server.url + "/s/open/delivery_csat")
    ends = wide.locator(".ends")
    expect(ends).to_contain_text("Very dissatisfied")
    expect(ends).to_contain_text("Very satisfied")
    # Screen readers hear the ends on the first and last points too.
    expect(wide.locator(".scale label").first).to_contain_text("Very dissatisfied")
    screenshot(wide, "public-scale-ends")


def test_the_visual_builder_adds_and_moves_a_question_and_previews_on_a_phone(
    demo_server: LiveServer, wide: Page
) -> None:
    sign_in(wide, demo_server, "cx_lead")
    wide.goto(demo_server.url + "/surveys/support_csat")
    builder = wide.locator("#builder")
    builder.get_by_label("Type").select_option("open_text")
    builder.get_by_label("Id (letters, digits, _)").fill("why")
    builder.get_by_label("Question text (en)", exact=True).last.fill("What made the difference?")
    builder.get_by_role("button", name="Add question").click()
    expect(wide.locator(".preview")).to_contain_text("What made the difference?")
    expect(wide.locator("#definition")).to_have_value(re.compile("What made the difference"))
    wide.get_by_role("button", name="Move why up").click()
    questions = wide.locator(".builder-questions > li")
    expect(questions.nth(questions.count() - 2)).to_have_id("bq-why")
    wide.get_by_role("button", name="Phone").click()
    expect(wide.locator(".preview")).to_have_class(re.compile("preview-phone"))
    box = wide.locator(".preview").bounding_box()
    assert box is not None and box["width"] <= 390
    screenshot(wide, "survey-builder-phone-preview")

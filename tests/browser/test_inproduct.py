"""The in-product snippet in chromium on a page of another origin: a matching event shows the
survey; the contact rules hold it back afterwards and after an email; bad checks get 422."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from functools import partial
from http.server import HTTPServer, SimpleHTTPRequestHandler
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser
from sqlalchemy.engine import Engine

from cxm.customers.tables import customer_identities
from cxm.surveys import distribution, inproduct
from cxm.surveys.tables import invitations
from tests.browser.conftest import ARTIFACTS, LiveServer, free_port
from tests.surveys.conftest import T0, add_customer, apply

SURVEY = """\
key: checkout_ces
title: {en: "How easy was checking out?"}
kind: transactional
questions:
  - {id: ces, type: ces, required: true, text: {en: "It was easy to check out."}}
triggers:
  - {event: order_placed, channel: in_product}
  - {event: page_viewed, where: {path: "/help/*"}, channel: in_product}
"""
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<script src="{cxm}/inproduct/cxm.js" data-user-id="{user}" async></script></head>
<body><main><h1>Your basket</h1>
<button id="buy" onclick="cxm.track('order_placed')">Place order</button></main></body></html>
"""


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """The company's own web site: a static server on another port (another origin)."""
    root = tmp_path / "shop"
    (root / "help").mkdir(parents=True)
    port = free_port()
    server = HTTPServer(("127.0.0.1", port), partial(SimpleHTTPRequestHandler, directory=root))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


def _customer(engine: Engine, user_id: str, email: str) -> str:
    with engine.begin() as conn:
        cid = add_customer(conn, email)
        conn.execute(
            customer_identities.insert().values(
                kind="user_id", value=user_id, customer_id=cid, first_seen=T0
            )
        )
    return cid


def _shown(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                invitations.c.customer_id, invitations.c.channel, invitations.c.status
            ).order_by(invitations.c.created_at)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_a_tracked_event_shows_the_survey_once_inside_the_fatigue_window(
    live_engine: Engine, live_server: LiveServer, browser: Browser, shop: tuple[Path, str]
) -> None:
    root, origin = shop
    with live_engine.begin() as conn:
        apply(conn, SURVEY)
    ada = _customer(live_engine, "u-1", "ada@example.com")
    (root / "index.html").write_text(PAGE.format(cxm=live_server.url, user="u-1"))
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        with page.expect_response(lambda r: r.url.endswith("/inproduct/check")) as loaded:
            page.goto(f"{origin}/index.html")
        assert loaded.value.json() == {"show": False}  # a page view at / matches no rule
        with page.expect_response(lambda r: r.url.endswith("/inproduct/check")) as answer:
            page.click("#buy")
        assert answer.value.json()["show"] is True
        page.get_by_role("dialog", name="How easy was checking out?").wait_for()
        frame = page.frame_locator("iframe[title='How easy was checking out?']")
        frame.get_by_text("It was easy to check out.").wait_for()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "inproduct-survey.png"))
        assert _shown(live_engine) == [(ada, "in_product", "sent")]
        page.get_by_role("button", name="Close the survey").click()
        assert page.get_by_role("dialog").count() == 0
        # The same customer, the same event, a minute later: the contact rules hold it back.
        with page.expect_response(lambda r: r.url.endswith("/inproduct/check")) as again:
            page.click("#buy")
        assert again.value.json() == {"show": False}
        assert page.get_by_role("dialog").count() == 0
        assert len(_shown(live_engine)) == 1
    finally:
        page.close()


def test_a_page_rule_matches_by_path_and_an_email_contact_holds_it_back(
    live_engine: Engine, live_server: LiveServer, browser: Browser, shop: tuple[Path, str]
) -> None:
    root, origin = shop
    with live_engine.begin() as conn:
        apply(conn, SURVEY)
        apply(conn)  # delivery_csat, sent by email below
    ben = _customer(live_engine, "u-2", "ben@example.com")
    cleo = _customer(live_engine, "u-3", "cleo@example.com")
    with live_engine.begin() as conn:
        assert distribution.invite(conn, {"survey": "delivery_csat", "customer_id": cleo}) == "sent"
    for user in ("u-2", "u-3"):
        (root / "help" / f"{user}.html").write_text(PAGE.format(cxm=live_server.url, user=user))
    page = browser.new_page()
    try:
        with page.expect_response(lambda r: r.url.endswith("/inproduct/check")) as help_page:
            page.goto(f"{origin}/help/u-2.html")
        assert help_page.value.json()["show"] is True
        page.get_by_role("dialog").wait_for()
        with page.expect_response(lambda r: r.url.endswith("/inproduct/check")) as emailed:
            page.goto(f"{origin}/help/u-3.html")
        assert emailed.value.json() == {"show": False}  # emailed this week: one ledger
    finally:
        page.close()
    channels = [(c, ch) for c, ch, _ in _shown(live_engine)]
    assert channels == [(cleo, "email"), (ben, "in_product")]


def test_unknown_people_and_bad_checks(live_engine: Engine, live_server: LiveServer) -> None:
    with live_engine.begin() as conn:
        apply(conn, SURVEY)
    url = f"{live_server.url}/inproduct/check"
    nobody = httpx.post(url, content='{"user_id": "u-404", "event": "order_placed"}')
    assert nobody.status_code == 200 and nobody.json() == {"show": False}
    assert nobody.headers["access-control-allow-origin"] == "*"
    anonymous = httpx.post(url, content='{"event": "order_placed"}')
    assert anonymous.status_code == 422 and "user_id or anonymous_id" in anonymous.text
    broken = httpx.post(url, content="{not json")
    assert broken.status_code == 422 and "not JSON" in broken.text
    huge = httpx.post(url, content='{"user_id": "' + "x" * 20_000 + '"}')
    assert huge.status_code == 413
    assert _shown(live_engine) == []


def test_the_snippet_is_small_and_served_as_javascript(live_server: LiveServer) -> None:
    answer = httpx.get(f"{live_server.url}/inproduct/cxm.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/javascript")
    assert answer.content == inproduct.SCRIPT.read_bytes()
    assert len(gzip.compress(answer.content)) < 15 * 1024


def test_a_survey_with_an_in_product_trigger_is_never_planned_from_the_log(
    live_engine: Engine,
) -> None:
    from cxm.interactions.tables import interactions
    from cxm.surveys import triggers

    cid = _customer(live_engine, "u-9", "dan@example.com")
    with live_engine.begin() as conn:
        apply(conn, SURVEY)
        conn.execute(
            interactions.insert().values(
                event_id="evt-order", type="track", name="order_placed", event_time=T0,
                received_at=T0, customer_id=cid, touchpoint_key="checkout", channel="web",
                properties={}, source="api",
            )
        )  # fmt: skip
        assert triggers.scan(conn) == 0  # the in-product trigger never plans from the log ...
        conn.execute(sa.text("delete from survey_trigger_watermark"))
        by_email = SURVEY.replace("key: checkout_ces", "key: checkout_ces_mail").replace(
            "{event: order_placed, channel: in_product}", "{event: order_placed, channel: email}"
        )
        apply(conn, by_email)
        assert triggers.scan(conn) == 1  # ... while the same event plans an email one


def test_the_sample_help_page_shows_the_shipped_self_service_survey(
    live_engine: Engine, live_server: LiveServer, browser: Browser
) -> None:
    from cxm.org import auth
    from cxm.surveys import service

    with live_engine.begin() as conn:
        service.apply_templates(conn)
        auth.create_user(conn, "admin@example.com", "admin", password="a long password")
    _customer(live_engine, "u-42", "zoe@example.com")
    page = browser.new_page()
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None)
    try:
        page.goto(live_server.url + "/login")
        page.get_by_label("Email").fill("admin@example.com")
        page.get_by_label("Password").fill("a long password")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(live_server.url + "/")
        with page.expect_response(lambda r: r.url.endswith("/inproduct/check")) as answer:
            page.goto(live_server.url + "/inproduct/sample/help/account")
        assert answer.value.json()["survey"] == "self_service_ces"
        assert page.get_by_text("as customer zoe@example.com").is_visible()
        frame = page.frame_locator("iframe[title='Was it easy?']")
        frame.get_by_text("The company made it easy for me").wait_for()
        page.screenshot(path=str(ARTIFACTS / "inproduct-sample-page.png"))
    finally:
        page.close()
    assert blocked == []  # the snippet and the survey frame run under cxm's own CSP

"""A live uvicorn server over a real store, and Debian's chromium driven by Playwright."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy.engine import Engine

from cxm.config import load_settings
from cxm.org import service as org
from tests.conftest import (
    free_port,  # re-exported for this folder's tests
    migrated_duckdb,
)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


class LiveServer:
    """uvicorn in a background thread, serving the real app."""

    def __init__(self, engine: Engine, data_dir: Path) -> None:
        from cxm.web.app import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = load_settings(data_dir=data_dir, database_url=str(engine.url), base_url=self.url)
        config = uvicorn.Config(
            create_app(settings, engine=engine),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def live_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = migrated_duckdb(tmp_path / "cxm.duckdb")
    with engine.begin() as conn:
        org.seed_defaults(conn)
    yield engine
    engine.dispose()


@pytest.fixture
def live_server(live_engine: Engine, tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(live_engine, tmp_path) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    # Waits are on state (a URL, a locator); the limit only says when to give up. A cold page
    # on a loaded 2-core machine (a first sign-in computes every dashboard query) can pass 30 s.
    context.set_default_timeout(90_000)
    page = context.new_page()
    yield page
    context.close()


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as a test artifact for reviewers."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path

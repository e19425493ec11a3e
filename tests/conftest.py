"""Fixtures that build real things: a DuckDB file, a PostgreSQL database, a live app."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine, make_url

from cxm.config import load_settings
from cxm.org import auth
from cxm.org import service as org
from cxm.store import create_engine, metadata, upgrade

POSTGRES_URL = os.environ.get(
    "CXM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for live servers and sinks)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _import_all_tables() -> None:
    """Register every domain's tables on the shared metadata (so cleanup sees them all)."""
    import importlib
    import pkgutil

    import cxm

    for mod in pkgutil.iter_modules(cxm.__path__):
        if mod.ispkg:
            try:
                importlib.import_module(f"cxm.{mod.name}.tables")
            except ModuleNotFoundError as exc:
                if exc.name != f"cxm.{mod.name}.tables":
                    raise
    importlib.import_module("cxm.store.jobs")


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped at the end."""
    admin_url = make_url(POSTGRES_URL)
    name = f"cxm_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def _postgres_engine(postgres_database: str) -> Iterator[Engine]:
    engine = create_engine(postgres_database)
    upgrade(engine)
    yield engine
    engine.dispose()


def _clean(engine: Engine) -> None:
    _import_all_tables()
    existing = set(sa.inspect(engine).get_table_names())
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            if table.name in existing:
                conn.execute(table.delete())


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty store on DuckDB (a temporary file) and on PostgreSQL."""
    if request.param == "duckdb":
        eng = create_engine(f"duckdb:///{tmp_path / 'cxm.duckdb'}")
        upgrade(eng)
        yield eng
        eng.dispose()
    else:
        eng = request.getfixturevalue("_postgres_engine")
        _clean(eng)
        yield eng


@pytest.fixture
def duckdb_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated DuckDB store, for tests that need only the embedded engine."""
    eng = create_engine(f"duckdb:///{tmp_path / 'cxm.duckdb'}")
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    """A store with the default departments."""
    with engine.begin() as conn:
        org.seed_defaults(conn)
    return engine


@pytest.fixture
def app_client(seeded: Engine, tmp_path: Path) -> Iterator[TestClient]:
    """The real ASGI app over a real store, without the background worker."""
    from cxm.web.app import create_app

    settings = load_settings(data_dir=tmp_path, database_url=str(seeded.url))
    with TestClient(create_app(settings, engine=seeded, run_worker=False)) as client:
        yield client


def make_key(engine: Engine, scope: str) -> dict[str, str]:
    """Authorization headers carrying a fresh API key of ``scope``."""
    with engine.begin() as conn:
        token = auth.create_api_key(conn, scope)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin_headers(seeded: Engine) -> dict[str, str]:
    return make_key(seeded, "admin")


@pytest.fixture
def read_headers(seeded: Engine) -> dict[str, str]:
    """A read key of a CX lead's (a read key of no user reads only)."""
    with seeded.begin() as conn:
        lead = auth.create_user(conn, "api-lead@example.com", "cx_lead")
        token = auth.create_api_key(conn, "read", user_id=lead)
    return {"Authorization": f"Bearer {token}"}


def worker_group(nodeid: str) -> str:
    """The group a test runs in under pytest-xdist (``make test`` runs two workers).

    A session or module fixture is built once per worker that needs it, so the tests sharing a
    costly one stay together: the engine conformance suite and every Spark test (one demo
    company in DuckDB and PostgreSQL, one lake, one Spark session), the insights tests (one
    loaded demo company), the browser tests (one chromium). Every other file is its own group,
    which keeps module fixtures to one build as well.
    """
    path = nodeid.split("::")[0]
    if path.startswith("tests/conformance/") or path == "tests/insights/test_spark.py":
        return "engines"
    for folder in ("insights", "browser"):
        if path.startswith(f"tests/{folder}/"):
            return folder
    return path


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Send each group of :func:`worker_group` whole to one worker, the largest (most tests) first.

    The controller sees only node ids, so groups are decided from paths (xdist's own
    ``xdist_group`` marker works by renaming node ids, which pytest 9.2 no longer allows).
    """
    from xdist.scheduler import LoadScopeScheduling

    class Grouped(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return worker_group(nodeid)

    return Grouped(config, log)

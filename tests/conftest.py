"""Fixtures that build real things: a DuckDB file, a PostgreSQL database, a live app."""

from __future__ import annotations

import atexit
import fcntl
import os
import pickle
import secrets
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
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

# Password hashes with argon2-cffi's cheapest parameters: the suite signs in thousands of times,
# and the default profile (64 MiB, 3 passes) made that most of its time. Inherited by the CLI
# and server processes tests start; tests of the profiles set their own.
os.environ.setdefault("CXM_ARGON2_PROFILE", "CHEAPEST")

POSTGRES_URL = os.environ.get(
    "CXM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for live servers and sinks)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that refuses connections for the whole test.

    The port stays bound by a socket that never listens, so a connection to it is refused
    and no server of another test (a parallel worker's, given ``free_port``) can take it
    meanwhile: a port ``free_port`` merely found free could answer a moment later.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


_MIGRATED: list[Path] = []


def migrated_duckdb(path: Path) -> Engine:
    """A migrated, empty DuckDB store at ``path`` (its folder is created if missing).

    The migrations run once per test process, into a template store; each call copies that
    file. Running them takes most of a second, the copy milliseconds, and the copy is the same
    store (no migration writes anything random). The tests of the migrations themselves call
    ``upgrade`` on stores of their own.
    """
    if not _MIGRATED:
        folder = Path(tempfile.mkdtemp(prefix="cxm-migrated-"))
        atexit.register(shutil.rmtree, folder, True)
        template = folder / "cxm.duckdb"
        eng = create_engine(f"duckdb:///{template}")
        upgrade(eng)
        with eng.connect() as conn:
            conn.exec_driver_sql("CHECKPOINT")  # everything in the file, nothing in a WAL
        eng.dispose()
        assert not template.with_name("cxm.duckdb.wal").exists()
        _MIGRATED.append(template)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.copyfile(_MIGRATED[0], path)
    return create_engine(f"duckdb:///{path}")


@pytest.fixture(scope="session")
def default_demo(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], Any]:
    """``copy(folder)``: the default demo company (``generate()``: 2,000 customers, 6 months,
    seed 7) loaded into a DuckDB store, as ``folder/cxm.duckdb`` with its generated files in
    ``folder/files``; returns ``(engine, LoadSummary)``.

    Generating and loading it takes most of a minute, so it is done once per run: under
    pytest-xdist the first worker that needs it builds it in the run's shared folder while the
    other waits. Each caller gets its own copy, to change as it likes.
    """
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the run's folder, above each worker's own
    built = shared / "default-demo"

    def copy(folder: Path) -> Any:
        with open(shared / "default-demo.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (built / "summary.pickle").exists():
                _build_default_demo(built)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copytree(built / "files", folder / "files")
        shutil.copyfile(built / "cxm.duckdb", folder / "cxm.duckdb")
        summary = pickle.loads((built / "summary.pickle").read_bytes())
        return create_engine(f"duckdb:///{folder / 'cxm.duckdb'}"), summary

    return copy


def _build_default_demo(built: Path) -> None:
    from cxm.demo.generator import generate
    from cxm.demo.load import load

    shutil.rmtree(built, ignore_errors=True)  # what a failed build left
    generate(built / "files")
    engine = migrated_duckdb(built / "cxm.duckdb")
    summary = load(engine, built / "files")
    with engine.connect() as conn:
        conn.exec_driver_sql("CHECKPOINT")
    engine.dispose()
    assert not (built / "cxm.duckdb.wal").exists()
    (built / "summary.pickle").write_bytes(pickle.dumps(summary))


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
    names = [t.name for t in reversed(metadata.sorted_tables) if t.name in existing]
    with engine.begin() as conn:
        # One round trip for every table (PostgreSQL): a statement each took four times longer.
        conn.exec_driver_sql("; ".join(f'DELETE FROM "{name}"' for name in names))


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty store on DuckDB (a temporary file) and on PostgreSQL."""
    if request.param == "duckdb":
        eng = migrated_duckdb(tmp_path / "cxm.duckdb")
        yield eng
        eng.dispose()
    else:
        eng = request.getfixturevalue("_postgres_engine")
        _clean(eng)
        yield eng


@pytest.fixture
def duckdb_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated DuckDB store, for tests that need only the embedded engine."""
    eng = migrated_duckdb(tmp_path / "cxm.duckdb")
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
    loaded demo company), the browser tests (one chromium). Each field case (a script of its
    own, which shares nothing) is a group of one. Every other file is its own group, which keeps
    module fixtures to one build as well.
    """
    path = nodeid.split("::")[0]
    if path.startswith("tests/conformance/") or path == "tests/insights/test_spark.py":
        return "engines"
    for folder in ("insights", "browser"):
        if path.startswith(f"tests/{folder}/"):
            return folder
    if path == "tests/cases/test_field_cases.py":
        return nodeid
    return path


# Seconds a group takes on one worker of the 2-core CI machine, where it is far from the
# typical half second a test; only the order of groups depends on these.
GROUP_SECONDS = {
    "engines": 300.0,
    "browser": 240.0,
    "insights": 200.0,
    "tests/api/test_schemathesis.py": 150.0,
    "tests/store/test_production.py": 40.0,
}
TEST_SECONDS = 0.5
# A field case starts the CLI several times, and often a server; one waits on a mail server.
CASE_SECONDS = {"05-hard-bounce-mailed-again": 45.0}


def group_seconds(group: str, tests: int) -> float:
    """The expected time of a group of ``tests`` tests (see ``GROUP_SECONDS``)."""
    if group in GROUP_SECONDS:
        return GROUP_SECONDS[group]
    if group.startswith("tests/cases/test_field_cases.py::") and "[" in group:
        return CASE_SECONDS.get(group.partition("[")[2].rstrip("]"), 12.0)
    return TEST_SECONDS * tests


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Send each group of :func:`worker_group` whole to one worker, the longest first.

    The controller sees only node ids, so groups are decided from paths (xdist's own
    ``xdist_group`` marker works by renaming node ids, which pytest 9.2 no longer allows).
    Longest first (by :func:`group_seconds`, not by number of tests as xdist orders them) keeps
    a long group from starting last, while the other worker has run out of work.
    """
    from collections import OrderedDict

    from xdist.scheduler import LoadScopeScheduling

    class Grouped(LoadScopeScheduling):
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            return worker_group(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            if not self.ordered:  # the queue is complete before the first unit is sent
                by_time = sorted(
                    self.workqueue.items(), key=lambda unit: -group_seconds(unit[0], len(unit[1]))
                )
                self.workqueue = OrderedDict(by_time)
                self.ordered = True
            super()._assign_work_unit(node)

    return Grouped(config, log)

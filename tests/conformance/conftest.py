"""The engine conformance suite's shared stores: the default demo company, loaded once per run
into DuckDB and into its own PostgreSQL database, exported once as a Parquet lake, and read by
one Spark session.

Each test names the engine it runs on through ``ENGINES`` (one test per behaviour and engine);
``on(engine)`` gives the store or backend for that name.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from cxm.demo.load import load as load_demo
from cxm.metrics.export import export_parquet, spark_backend
from cxm.store import create_engine, upgrade
from cxm.text import jobs as text_jobs
from cxm.text import taxonomy
from tests.conftest import POSTGRES_URL

ENGINES = [
    "duckdb",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("spark", marks=pytest.mark.spark),
]


def engine_params(case: str, gaps: dict[tuple[str, str], str]) -> list[Any]:
    """``case`` on every engine, with a strict xfail where ``gaps`` names a known engine gap."""
    out = []
    for p in ENGINES:
        name = p if isinstance(p, str) else p.values[0]
        marks = [] if isinstance(p, str) else list(p.marks)
        if (case, name) in gaps:
            marks.append(pytest.mark.xfail(strict=True, reason=gaps[(case, name)]))
        out.append(pytest.param(case, name, marks=marks, id=f"{case}-{name}"))
    return out


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from cxm.metrics.export import spark_session

    session = spark_session("local[2]")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def _demo_duck(
    tmp_path_factory: pytest.TempPathFactory, default_demo: Callable[[Path], Any]
) -> tuple[Engine, Path]:
    """The default demo company (``cxm demo generate DIR``: 2,000 customers, 6 months) loaded
    into DuckDB, and the folder of its generated files."""
    root = tmp_path_factory.mktemp("conf")
    engine, _ = default_demo(root)
    return engine, root / "files"


@pytest.fixture(scope="session")
def demo_files(_demo_duck: tuple[Engine, Path]) -> Path:
    """The default demo company's generated files."""
    return _demo_duck[1]


def _tag(engine: Engine) -> None:
    """The comments of a loaded demo tagged by the starter taxonomy, as a user would."""
    with engine.begin() as conn:
        taxonomy.apply(conn, taxonomy.starter_doc())
    text_jobs.annotate_bulk(engine, semantic=False)


@pytest.fixture(scope="session")
def duck(_demo_duck: tuple[Engine, Path]) -> Iterator[Engine]:
    eng = _demo_duck[0]
    _tag(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def pg(demo_files: Path) -> Iterator[Engine]:
    """A PostgreSQL database of its own, so that other tests cleaning theirs leave it be."""
    admin_url = make_url(POSTGRES_URL)
    name = f"cxm_conformance_{os.getpid()}_{secrets.token_hex(3)}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    eng = create_engine(admin_url.set(database=name).render_as_string(hide_password=False))
    try:
        upgrade(eng)
        load_demo(eng, demo_files)
        _tag(eng)
        yield eng
    finally:
        eng.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def lake(duck: Engine, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lake")
    written = export_parquet(duck, out)
    assert written["responses"] > 0 and written["text_themes"] > 0
    return out


@pytest.fixture(scope="session")
def sparkb(lake: Path, spark: Any) -> Any:
    return spark_backend(lake, session=spark)


@pytest.fixture
def on(request: pytest.FixtureRequest) -> Any:
    """``on("duckdb" | "postgres" | "spark")``: that engine's store or backend."""
    fixtures = {"duckdb": "duck", "postgres": "pg", "spark": "sparkb"}
    return lambda engine: request.getfixturevalue(fixtures[engine])

"""Engines and connections from a database URL (DuckDB embedded, PostgreSQL in production)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from duckdb_engine import Dialect as _DuckDBEngineDialect
from sqlalchemy.dialects import postgresql, registry
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.compiler import compiles


@compiles(sa.Float, "duckdb")
def _double_on_duckdb(type_: sa.Float[float], compiler: object, **kw: object) -> str:
    # DuckDB reads FLOAT as 32 bits (0.3 comes back as 0.30000001); PostgreSQL's FLOAT is
    # already double precision. Scores, targets and money need double on both.
    return "DOUBLE"


class DuckDBDialect(_DuckDBEngineDialect):
    """duckdb_engine's dialect with SQLAlchemy's compiled-statement cache on.

    duckdb_engine declares ``supports_statement_cache = False``, so every statement is compiled
    afresh (about 1 ms of CPU each). Its dialect adds nothing to compiling that the cache key
    would miss: it compiles as PostgreSQL's, plus a ``TRY_CAST`` rule; cxm adds one type rule
    (``Float`` as ``DOUBLE``) and no construct of its own. ``duckdb:///`` URLs get this dialect
    (``registry`` below), their ``engine.url`` unchanged.
    """

    supports_statement_cache = True


registry.register("duckdb", __name__, "DuckDBDialect")


def create_engine(url: str) -> Engine:
    """Build the engine for ``url``; for DuckDB the file's folder is created if missing."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "duckdb":
        database = parsed.database or ":memory:"
        engine = sa.create_engine(url)
        if database != ":memory:":
            path = Path(database).expanduser()
            # A folder we create is the owner's alone (the WAL file appears there later).
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _private_file(engine, path)
        # One process owns the file (see DESIGN.md); times are stored as naive UTC.
        return engine
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(
            url, pool_pre_ping=True, connect_args={"options": "-c timezone=UTC"}
        )
    raise ValueError(
        f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}: "
        "use duckdb:///path/to/file.duckdb or postgresql+psycopg://user@host/db"
    )


def _private_file(engine: Engine, path: Path) -> None:
    """Keep the store file (and its WAL) mode 0600: it holds personal data.

    DuckDB refuses to open a pre-created empty file, so the mode is set as soon as its first
    connection has created the file.
    """

    @sa.event.listens_for(engine, "connect")
    def _chmod(dbapi_connection: object, record: object) -> None:
        for p in (path, path.with_name(path.name + ".wal")):
            if p.exists() and p.stat().st_mode & 0o077:
                p.chmod(0o600)


def is_duckdb(engine: Engine | sa.Connection) -> bool:
    return engine.dialect.name == "duckdb"


def insert_ignore(table: sa.Table, index_elements: list[str] | None = None) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING``; both stores speak PostgreSQL's form."""
    keys = index_elements or [c.name for c in table.primary_key.columns]
    return postgresql.insert(table).on_conflict_do_nothing(index_elements=keys)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """Normalise a timestamp read back from either store to an aware UTC datetime."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)

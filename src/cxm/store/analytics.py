"""The Ibis connection for analytics over the same store the application writes to."""

from __future__ import annotations

from typing import Any

import duckdb_engine
import ibis
import sqlalchemy
from ibis.backends import BaseBackend
from sqlalchemy.engine import Engine


def analytics(engine: Engine) -> BaseBackend:
    """An Ibis backend reading the store behind ``engine`` (DuckDB file or PostgreSQL)."""
    url = engine.url
    backend = url.get_backend_name()
    if backend == "duckdb":
        # Same file, same process: DuckDB shares one database instance between connections,
        # so what the application committed is visible here at once.
        # DuckDB refuses a second connection whose configuration differs, and duckdb-engine
        # sets a user agent; use the same one.
        agent = f"duckdb_engine/{duckdb_engine.__version__}(sqlalchemy/{sqlalchemy.__version__})"
        return ibis.duckdb.connect(url.database or ":memory:", custom_user_agent=agent)
    if backend == "postgresql":
        kwargs: dict[str, Any] = {
            "host": url.host or "127.0.0.1",
            "port": url.port or 5432,
            "user": url.username,
            "password": url.password,
            "database": url.database,
        }
        return ibis.postgres.connect(**{k: v for k, v in kwargs.items() if v is not None})
    raise ValueError(f"no analytics backend for {backend!r}")

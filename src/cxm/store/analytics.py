"""Ibis connections for analytics over the same store the application writes to.

``analytics`` opens one; ``reading`` lends one for a block; ``ReaderPool`` keeps a few open
for pages that run several reads at once; ``to_frame`` (and ``to_rows``) runs an expression,
keeping its compiled SQL per connection on DuckDB.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import duckdb_engine
import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
import sqlalchemy
from ibis.backends import BaseBackend
from sqlalchemy.engine import Engine

T = TypeVar("T")


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
        con = ibis.duckdb.connect(url.database or ":memory:", custom_user_agent=agent)
        if url.database and url.database != ":memory:":
            # Connections to one file share their compiled statements (``to_frame``).
            setattr(con, SHARED_FILE, os.path.abspath(url.database))
        return con
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


@contextmanager
def reading(source: Engine | BaseBackend) -> Iterator[BaseBackend]:
    """An Ibis backend for ``source``: a store engine (connected here, closed after) or a
    backend given as is (left open for its owner)."""
    if isinstance(source, BaseBackend):
        yield source
        return
    backend = analytics(source)
    try:
        yield backend
    finally:
        backend.disconnect()


class ReaderPool:
    """Threads that each keep one Ibis backend open, for pages that run several reads at once.

    The engines release the GIL while they scan, so reads given together overlap. Each
    backend keeps the table expressions it has built (and so their schemas) for its life: a
    read does not ask the database for a table's columns again. Migrations run before the app
    starts, so schemas do not change under it.
    """

    def __init__(self, engine: Engine, workers: int = 4) -> None:
        self.engine = engine
        self._local = threading.local()
        self._open: list[BaseBackend] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cxm-reader")

    def _backend(self) -> BaseBackend:
        backend: BaseBackend | None = getattr(self._local, "backend", None)
        if backend is None:
            backend = analytics(self.engine)
            setattr(backend, "table", functools.lru_cache(maxsize=256)(backend.table))  # noqa: B010
            self._local.backend = backend
            with self._lock:
                self._open.append(backend)
        return backend

    def _run(self, read: Callable[[BaseBackend], T]) -> T:
        backend = self._backend()
        try:
            return read(backend)
        except Exception:
            # A broken connection must not stay in the pool: the next read opens a new one.
            self._local.backend = None
            with self._lock:
                self._open.remove(backend)
            with contextlib.suppress(Exception):
                backend.disconnect()
            raise

    def map(self, reads: Sequence[Callable[[BaseBackend], T]]) -> list[T]:
        """Run ``reads`` side by side, each given a backend; their results in order."""
        return list(self._pool.map(self._run, reads))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for backend in self._open:
                with contextlib.suppress(Exception):
                    backend.disconnect()
            self._open.clear()


_compiled: weakref.WeakKeyDictionary[BaseBackend, OrderedDict[Hashable, str]] = (
    weakref.WeakKeyDictionary()
)
_compiled_lock = threading.Lock()
COMPILED_PER_BACKEND = 512
# A connection opened for one question (the metric API, the CLI, a scorecard) would compile
# every statement again: on a DuckDB file the statements are kept per file instead, for the
# last few files a process read, so a new connection to it reuses what an earlier one compiled.
SHARED_FILE = "_cxm_shared_file"
_compiled_by_file: OrderedDict[str, OrderedDict[Hashable, str]] = OrderedDict()
FILES_KEPT = 8


def _memo(backend: BaseBackend) -> OrderedDict[Hashable, str]:
    """The compiled statements of ``backend`` (of its file, for a DuckDB file); under the lock."""
    path = getattr(backend, SHARED_FILE, None)
    if path is None:
        return _compiled.setdefault(backend, OrderedDict())
    memo = _compiled_by_file.get(path)
    if memo is None:
        memo = _compiled_by_file[path] = OrderedDict()
        if len(_compiled_by_file) > FILES_KEPT:
            _compiled_by_file.popitem(last=False)
    else:
        _compiled_by_file.move_to_end(path)
    return memo


def to_frame(backend: BaseBackend, key: Hashable, build: Callable[[], ir.Table]) -> pd.DataFrame:
    """Run the expression ``build()`` makes and return it as a DataFrame.

    On DuckDB the SQL is kept per backend under ``key``, which must name everything the
    expression depends on (literals included): asking the same question again skips building
    the expression and compiling it, which costs more than running it on small results.
    Other engines run the expression as is.
    """
    if backend.name != "duckdb":
        return build().to_pandas()
    con: Any = backend.con  # the DuckDB connection
    return con.sql(_compiled_sql(backend, key, build)).df()


def _compiled_sql(backend: BaseBackend, key: Hashable, build: Callable[[], ir.Table]) -> str:
    with _compiled_lock:
        memo = _memo(backend)
        sql = memo.get(key)
        if sql is not None:
            memo.move_to_end(key)
    if sql is None:
        sql = str(backend.compile(build()))
        with _compiled_lock:
            memo[key] = sql
            if len(memo) > COMPILED_PER_BACKEND:
                memo.popitem(last=False)
    return sql


def to_arrow(backend: BaseBackend, key: Hashable, build: Callable[[], ir.Table]) -> pa.Table:
    """Like ``to_frame``, as an Arrow table (in the expression's schema on other engines)."""
    if backend.name != "duckdb":
        return build().to_pyarrow()
    con: Any = backend.con  # the DuckDB connection
    table: pa.Table = con.sql(_compiled_sql(backend, key, build)).to_arrow_table()
    return table


def to_rows_with(
    backend: BaseBackend,
    key: Hashable,
    build: Callable[[], ir.Table],
    side_key: Hashable,
    side_build: Callable[[], ir.Table],
) -> tuple[list[str], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """``to_rows`` of ``build()``, and the rows of a small second table ``side_build()``.

    On DuckDB both come from one statement: the side table rides along as one list column
    (an uncorrelated subquery, run once), so a question that needs a small lookup table
    (a metric and its targets) pays one statement's fixed cost, not two. When the main
    result has no rows the side table is read on its own. Other engines run both as is.
    """
    if backend.name != "duckdb":
        names, rows = to_rows(backend, key, build)
        return names, rows, to_rows(backend, side_key, side_build)[1]
    side = _compiled_sql(backend, side_key, side_build)
    main = _compiled_sql(backend, key, build)
    con: Any = backend.con  # the DuckDB connection
    rel = con.sql(
        f'SELECT "__main".*, (SELECT list("__side") FROM ({side}) AS "__side") AS "__side" '
        f'FROM ({main}) AS "__main"'
    )
    rows = rel.fetchall()
    if not rows:
        return list(rel.columns)[:-1], [], con.sql(side).fetchall()
    side_rows = [tuple(r.values()) for r in rows[0][-1] or []]
    return list(rel.columns)[:-1], [r[:-1] for r in rows], side_rows


def to_rows(
    backend: BaseBackend, key: Hashable, build: Callable[[], ir.Table]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Like ``to_frame``, but the column names and the rows as tuples of plain Python values
    (None for a missing value on DuckDB; what pandas holds, NaN or NaT included, elsewhere).

    For small results read by Python (a few hundred aggregated rows): building a DataFrame
    costs more than the rows' own use of it."""
    if backend.name != "duckdb":
        df = build().to_pandas()
        return [str(c) for c in df.columns], list(df.itertuples(index=False, name=None))
    con: Any = backend.con  # the DuckDB connection
    rel = con.sql(_compiled_sql(backend, key, build))
    return list(rel.columns), rel.fetchall()

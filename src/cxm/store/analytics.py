"""Ibis connections for analytics over the same store the application writes to.

``analytics`` opens one; ``reading`` lends one for a block; ``ReaderPool`` keeps a few open
for pages that run several reads at once; ``to_frame`` (and ``to_rows``) runs an expression,
keeping its compiled SQL per store on DuckDB and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import duckdb
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
        con = ibis.postgres.connect(**{k: v for k, v in kwargs.items() if v is not None})
        # Connections to one database share their compiled statements and result schemas.
        store = f"postgresql://{url.username}@{kwargs['host']}:{kwargs['port']}/{url.database}"
        setattr(con, SHARED_FILE, store)
        return con
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
# every statement again: on a DuckDB file (or a PostgreSQL database) the statements are kept
# per store instead, for the last few stores a process read, so a new connection to it reuses
# what an earlier one compiled.
SHARED_FILE = "_cxm_shared_file"
_compiled_by_file: OrderedDict[str, OrderedDict[Hashable, Any]] = OrderedDict()
FILES_KEPT = 8


def _memo(backend: BaseBackend) -> OrderedDict[Hashable, Any]:
    """The compiled statements of ``backend`` (of its store, when it names one); under the lock."""
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

    On DuckDB and PostgreSQL the SQL is kept per store under ``key``, which must name
    everything the expression depends on (literals included): asking the same question again
    skips building the expression and compiling it, which costs more than running it on small
    results (on PostgreSQL, building one also reads each table's columns from the catalog).
    On PostgreSQL the result goes through the same conversions as Ibis's own ``execute``, so
    the frame is the one ``build().to_pandas()`` returns. Other engines (Spark) run the
    expression as is.
    """
    if backend.name == "postgres":
        return _postgres_frame(backend, key, build)
    if backend.name != "duckdb":
        return build().to_pandas()
    con: Any = backend.con  # the DuckDB connection
    return con.sql(_compiled_sql(backend, key, build)).df()


def _postgres_frame(
    backend: BaseBackend, key: Hashable, build: Callable[[], ir.Table]
) -> pd.DataFrame:
    """``build().to_pandas()`` on PostgreSQL, from the statement and schema kept under ``key``.

    Mirrors ``ibis.backends.postgres.Backend.execute`` (ibis 12): rows fetched in a
    transaction, ``DataFrame.from_records(..., coerce_float=True)``, then the PostgreSQL and
    the generic pandas conversions to the expression's schema. An expression that needs
    something registered before it runs (an in-memory table, a UDF) is run as is each time.
    """
    from ibis.backends.postgres.converter import PostgresPandasData
    from ibis.formats.pandas import PandasData

    built: list[ir.Table] = []

    def make() -> tuple[tuple[str, Any] | None, bool]:
        expr = build()
        built.append(expr)
        if _needs_registration(expr):
            return None, False
        table = expr.as_table()
        return (str(backend.compile(table)), table.schema()), True

    kept = _kept(backend, key, make)
    if kept is None:
        return built[0].to_pandas()
    sql, schema = kept
    con: Any = backend.con  # the psycopg connection
    with con.cursor() as cur, con.transaction():
        rows = cur.execute(sql).fetchall()
    df = pd.DataFrame.from_records(rows, columns=schema.names, coerce_float=True)
    return PandasData.convert_table(PostgresPandasData.convert_table(df, schema), schema)


def _kept(backend: BaseBackend, key: Hashable, make: Callable[[], tuple[Any, bool]]) -> Any:
    """What is kept under ``key`` for ``backend``'s store; else ``make()``'s value, kept when
    its flag says so (the last ``COMPILED_PER_BACKEND`` per store)."""
    with _compiled_lock:
        memo = _memo(backend)
        value = memo.get(key)
        if value is not None:
            memo.move_to_end(key)
            return value
    value, keep = make()
    if keep:
        with _compiled_lock:
            memo[key] = value
            if len(memo) > COMPILED_PER_BACKEND:
                memo.popitem(last=False)
    return value


def _needs_registration(expr: ir.Expr) -> bool:
    """Whether running ``expr`` first registers something on the connection (Ibis's
    pre-execute hooks: in-memory tables and UDFs), which a kept statement would skip."""
    import ibis.expr.operations as ops

    return bool(expr.op().find((ops.InMemoryTable, ops.ScalarUDF, ops.AggUDF)))


def _compiled_sql(
    backend: BaseBackend, key: Hashable, build: Callable[[], ir.Table], flat: bool = False
) -> str:
    """The SQL of ``build()`` on ``backend``, kept under ``key`` (with ``flat``, its nested
    selects merged, see ``_flattened``). An expression that needs something registered on the
    connection first (an in-memory table, a UDF) is registered and compiled each time, never
    kept: its statement names what only that run registers."""

    def make() -> tuple[str, bool]:
        expr = build()
        if _needs_registration(expr):
            backend._run_pre_execute_hooks(expr)  # what Ibis's own execute does first
            return str(backend.compile(expr)), False
        sql = str(backend.compile(expr))
        return (_flattened(backend, expr, sql) if flat else sql), True

    sql: str = _kept(backend, key, make)
    return sql


def _flattened(backend: BaseBackend, expr: ir.Expr, sql: str) -> str:
    """``sql`` (DuckDB) with the selects Ibis nests one per step merged into their readers,
    as a person writes it: one SELECT over the tables and their joins where the steps allow
    it (sqlglot's qualify, projection pushdown and subquery merge, which keep a subquery
    whose aggregation, window, DISTINCT or LIMIT a merge would change).

    DuckDB parses and binds each nested select and every column ``* EXCLUDE`` carries
    through it: on a small store that costs about a fifth of an aggregation's statement.
    Kept only when the engine binds it to the same column names and types as ``sql``; the
    statement as compiled otherwise (and on any failure of the rewrite)."""
    import ibis.expr.operations as ops
    import sqlglot
    from sqlglot.optimizer.merge_subqueries import merge_subqueries
    from sqlglot.optimizer.pushdown_projections import pushdown_projections
    from sqlglot.optimizer.qualify import qualify

    try:
        schema: dict[str, object] = {}
        for table in expr.op().find(ops.PhysicalTable):
            if table.name in schema:
                continue
            schema[table.name] = {name: "UNKNOWN" for name in table.schema.names}
        tree = sqlglot.parse_one(sql, read="duckdb")
        tree = qualify(tree, schema=schema, dialect="duckdb", validate_qualify_columns=True)
        tree = merge_subqueries(pushdown_projections(tree))
        flat = tree.sql(dialect="duckdb")
        con: Any = backend.con  # the DuckDB connection
        if _described(con, flat) != _described(con, sql):
            return sql
    except Exception:  # a rewrite it cannot make: the statement as compiled
        return sql
    return flat


def _described(con: Any, sql: str) -> list[tuple[Any, ...]]:
    """The output column names and types DuckDB binds ``sql`` to."""
    return [tuple(r[:2]) for r in con.execute(f"DESCRIBE {sql}").fetchall()]


def to_arrow(backend: BaseBackend, key: Hashable, build: Callable[[], ir.Table]) -> pa.Table:
    """Like ``to_frame``, as an Arrow table (in the expression's schema on other engines)."""
    if backend.name != "duckdb":
        return build().to_pyarrow()
    con: Any = backend.con  # the DuckDB connection
    table: pa.Table = con.sql(_compiled_sql(backend, key, build)).to_arrow_table()
    return table


def _rows_of(backend: BaseBackend, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The column names and rows of one statement on a DuckDB backend.

    Run as a statement prepared once per connection (``PREPARE``, then ``EXECUTE`` by name):
    parsing, binding and planning are paid once, not per call; DuckDB binds it again itself
    when a table it reads changes shape, and reads the rows as they are at each ``EXECUTE``.
    Through ``execute`` either way: a relation (``con.sql``) binds a statement to learn its
    columns, then prepares it again to run it, which on a small store costs about a third of
    the query."""
    con: Any = backend.con  # the DuckDB connection
    prepared: OrderedDict[str, str] | None = getattr(backend, _PREPARED, None)
    if prepared is None:
        prepared = OrderedDict()
        setattr(backend, _PREPARED, prepared)
    name = prepared.get(sql)
    if name is None:
        name = f"cxm_statement_{next(_statement_names)}"
        try:
            con.execute(f"PREPARE {name} AS {sql}")
        except duckdb.Error:  # not a statement DuckDB prepares: run as is (or fail as it would)
            cursor = con.execute(sql)
            rows = cursor.fetchall()
            return [d[0] for d in cursor.description], rows
        prepared[sql] = name
        if len(prepared) > PREPARED_PER_CONNECTION:
            con.execute(f"DEALLOCATE {prepared.popitem(last=False)[1]}")
    else:
        prepared.move_to_end(sql)
    cursor = con.execute(f"EXECUTE {name}")
    rows = cursor.fetchall()
    return [d[0] for d in cursor.description], rows


# The statements prepared on a DuckDB connection, by their SQL, are kept on its backend
# object (the last ``PREPARED_PER_CONNECTION``).
_PREPARED = "_cxm_prepared"
PREPARED_PER_CONNECTION = 256
_statement_names = itertools.count()


def to_rows(
    backend: BaseBackend, key: Hashable, build: Callable[[], ir.Table], *, flat: bool = False
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Like ``to_frame``, but the column names and the rows as tuples of plain Python values
    (None for a missing value on DuckDB; what pandas holds, NaN or NaT included, elsewhere).

    For small results read by Python (a few hundred aggregated rows): building a DataFrame
    costs more than the rows' own use of it. With ``flat`` on DuckDB the statement kept is
    the flattened one (``_flattened``; the key must then always be asked with ``flat``)."""
    if backend.name != "duckdb":
        df = to_frame(backend, key, build)
        return [str(c) for c in df.columns], list(df.itertuples(index=False, name=None))
    return _rows_of(backend, _compiled_sql(backend, key, build, flat))

"""Bulk writes for every domain: Arrow on DuckDB, ``COPY`` on PostgreSQL.

DuckDB commits single-row statements slowly, so large writes register an Arrow table on the
raw connection and copy it with one ``INSERT ... SELECT`` / ``UPDATE ... FROM``. PostgreSQL
takes large inserts through ``COPY ... FROM STDIN`` (CSV written by Arrow); an insert that
skips key conflicts copies into a temporary table first and inserts from it with
``ON CONFLICT DO NOTHING``. Updates use ``executemany``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cxm.store import UTCDateTime, insert_ignore, is_duckdb

CHUNK = 5000
SMALL = 100


def _arrow_type(column: sa.Column[Any]) -> pa.DataType:
    if isinstance(column.type, UTCDateTime):
        return pa.timestamp("us")
    if isinstance(column.type, sa.Integer):
        return pa.int64()
    if isinstance(column.type, sa.Float):
        return pa.float64()
    if isinstance(column.type, sa.Boolean):
        return pa.bool_()
    return pa.string()


def _arrow_value(column: sa.Column[Any], value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column.type, UTCDateTime):
        assert isinstance(value, dt.datetime) and value.tzinfo is not None
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(column.type, sa.JSON):
        return json.dumps(value, default=str)
    return value


def _register(
    conn: Connection, table: sa.Table, cols: Sequence[str], rows: Sequence[dict[str, Any]]
) -> tuple[str, sa.TableClause]:
    arrays = {}
    for name in cols:
        column = table.c[name]
        values = [r.get(name) for r in rows]
        if isinstance(column.type, UTCDateTime):
            # Arrow converts aware datetimes to UTC itself; dropping the zone keeps the instant.
            aware = pa.array(values, type=pa.timestamp("us", tz="UTC"))
            arrays[name] = aware.cast(pa.int64()).cast(pa.timestamp("us"))
        elif isinstance(column.type, sa.JSON):
            arrays[name] = pa.array([_arrow_value(column, v) for v in values], pa.string())
        else:
            arrays[name] = pa.array(values, type=_arrow_type(column))
    view = f"_cxm_bulk_{secrets.token_hex(4)}"
    _attach(conn, view, pa.table(arrays))
    return view, sa.table(view, *[sa.column(c) for c in cols])


def _arrow_rows(table: sa.Table, cols: Sequence[str], rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Rows as an Arrow table typed after ``table`` (times naive UTC, JSON as text)."""
    arrays = {}
    for name in cols:
        column = table.c[name]
        values = [r.get(name) for r in rows]
        if isinstance(column.type, UTCDateTime):
            aware = pa.array(values, type=pa.timestamp("us", tz="UTC"))
            arrays[name] = aware.cast(pa.int64()).cast(pa.timestamp("us"))
        elif isinstance(column.type, sa.JSON):
            arrays[name] = pa.array([_arrow_value(column, v) for v in values], pa.string())
        else:
            arrays[name] = pa.array(values, type=_arrow_type(column))
    return pa.table(arrays)


def uses_copy(conn: Connection) -> bool:
    """Whether bulk inserts go through PostgreSQL's ``COPY`` (psycopg 3)."""
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


def copy_table(conn: Connection, table: sa.Table, data: pa.Table, *, ignore: bool = False) -> None:
    """``COPY`` an Arrow table (columns named after ``table``'s; times naive UTC, JSON as
    text) into ``table`` on PostgreSQL; ``ignore`` skips rows whose key is already held.

    Arrow writes CSV with every string quoted and nulls empty, which is exactly how
    PostgreSQL's CSV format tells an empty string from NULL.
    """
    if data.num_rows == 0:
        return
    quote = conn.dialect.identifier_preparer.quote
    cols = ", ".join(quote(c) for c in data.column_names)
    plain = []
    for field in data.schema:
        column = data.column(field.name)
        if pa.types.is_dictionary(field.type):
            column = column.cast(field.type.value_type)
        plain.append(column)
    data = pa.table(plain, names=data.column_names)
    raw = conn.connection.driver_connection
    target = quote(table.name)
    with raw.cursor() as cur:  # type: ignore[union-attr]
        into = target
        if ignore:
            into = f"_cxm_copy_{secrets.token_hex(4)}"
            cur.execute(f"CREATE TEMP TABLE {into} (LIKE {target} INCLUDING DEFAULTS)")
        with cur.copy(f"COPY {into} ({cols}) FROM STDIN WITH (FORMAT csv)") as copy:
            for batch in data.to_batches(max_chunksize=50_000):
                buf = io.BytesIO()
                pacsv.write_csv(batch, buf, pacsv.WriteOptions(include_header=False))
                copy.write(buf.getvalue())
        if ignore:
            cur.execute(
                f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {into} ON CONFLICT DO NOTHING"
            )
            cur.execute(f"DROP TABLE {into}")


def _attach(conn: Connection, view: str, data: pa.Table) -> None:
    """Register ``data`` as the view ``view`` on the DuckDB connection. A result the caller
    stopped reading (``.first()``) still holds the connection, and DuckDB registers nothing
    until that result has run to its end, so it is run to its end first."""
    raw = conn.connection.driver_connection
    raw.complete()  # type: ignore[union-attr]
    raw.register(view, data)  # type: ignore[union-attr]


def _unregister(conn: Connection, view: str) -> None:
    conn.connection.driver_connection.unregister(view)  # type: ignore[union-attr]


def insert_rows(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    *,
    ignore: bool = False,
    unique: Sequence[str] | None = None,
) -> None:
    """Insert ``rows`` (dicts keyed by column name); ``ignore`` skips rows whose key is
    already held: the primary key, or the unique columns ``unique`` when given."""
    if not rows:
        return
    cols = list(rows[0].keys())
    keys = list(unique) if unique else None
    if len(rows) <= SMALL:
        # One multi-row VALUES statement: cheaper than registering Arrow for a handful.
        stmt = insert_ignore(table, keys) if ignore else table.insert()
        conn.execute(stmt.values(list(rows)))
        return
    if is_duckdb(conn):
        view, source = _register(conn, table, cols, rows)
        try:
            stmt = insert_ignore(table, keys) if ignore else table.insert()
            conn.execute(stmt.from_select(cols, sa.select(*[source.c[c] for c in cols])))
        finally:
            _unregister(conn, view)
        return
    if uses_copy(conn):
        copy_table(conn, table, _arrow_rows(table, cols, rows), ignore=ignore)
        return
    stmt = insert_ignore(table, keys) if ignore else table.insert()
    for start in range(0, len(rows), CHUNK):
        conn.execute(stmt, list(rows[start : start + CHUNK]))


def update_rows(
    conn: Connection, table: sa.Table, key: str, rows: Sequence[dict[str, Any]]
) -> None:
    """Set columns by ``key``: each row holds the key and the new values."""
    if not rows:
        return
    cols = list(rows[0].keys())
    if is_duckdb(conn) and len(rows) <= SMALL:
        _update_from_values(conn, table, key, cols, rows)
        return
    if is_duckdb(conn):
        view, source = _register(conn, table, cols, rows)
        try:
            conn.execute(
                table.update()
                .where(table.c[key] == source.c[key])
                .values({c: source.c[c] for c in cols if c != key})
            )
        finally:
            _unregister(conn, view)
        return
    stmt = (
        table.update()
        .where(table.c[key] == sa.bindparam("_key"))
        .values({c: sa.bindparam(f"_v_{c}") for c in cols if c != key})
    )
    params = [{"_key": r[key], **{f"_v_{c}": r[c] for c in cols if c != key}} for r in rows]
    for start in range(0, len(params), CHUNK):
        conn.execute(stmt, params[start : start + CHUNK])


def _update_from_values(
    conn: Connection, table: sa.Table, key: str, cols: list[str], rows: Sequence[dict[str, Any]]
) -> None:
    """``UPDATE table SET ... FROM (VALUES (?, ...), ...) v WHERE table.key = v.key`` on
    DuckDB, each value cast to its column's type and bound by the column's own processor.

    For the few rows of a respondents' shared transaction (``cxm.surveys.writer``) this is
    0.7-1 ms cheaper than registering an Arrow table (2.6 against 3.6 ms for 3 rows with the
    commit, on a 100k-row keyed table), and the text is built here rather than by SQLAlchemy's
    ``values()``, whose compiled form is not cached across row counts."""
    # Always quoted: DuckDB reserves words PostgreSQL does not (``at``).
    quote = conn.dialect.identifier_preparer.quote_identifier
    processors = [table.c[c].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
                  for c in cols]  # fmt: skip
    cast = "(" + ", ".join(
        f"CAST(? AS {table.c[c].type.compile(dialect=conn.dialect)})" for c in cols
    ) + ")"  # fmt: skip
    name = conn.dialect.identifier_preparer.format_table(table)
    sets = ", ".join(f"{quote(c)} = v.{quote(c)}" for c in cols if c != key)
    params = tuple(
        value if process is None else process(value)
        for row in rows
        for value, process in zip((row.get(c) for c in cols), processors, strict=True)
    )
    conn.exec_driver_sql(
        f"UPDATE {name} SET {sets} FROM (VALUES {', '.join([cast] * len(rows))}) "
        f"AS v({', '.join(quote(c) for c in cols)}) WHERE {name}.{quote(key)} = v.{quote(key)}",
        params,
    )


def insert_table(
    conn: Connection, table: sa.Table, data: pa.Table, *, ignore: bool = False
) -> None:
    """Insert an Arrow table whose columns are named after ``table``'s.

    Times are naive UTC ``timestamp`` columns and JSON columns hold JSON text, so on DuckDB the
    table is copied as it is and PostgreSQL takes it through ``COPY`` (``copy_table``).
    """
    if data.num_rows == 0:
        return
    cols = data.column_names
    stmt = insert_ignore(table) if ignore else table.insert()
    if is_duckdb(conn):
        view = f"_cxm_bulk_{secrets.token_hex(4)}"
        _attach(conn, view, data)
        try:
            source = sa.table(view, *[sa.column(c) for c in cols])
            conn.execute(stmt.from_select(cols, sa.select(*[source.c[c] for c in cols])))
        finally:
            _unregister(conn, view)
        return
    if uses_copy(conn):
        copy_table(conn, table, data, ignore=ignore)
        return
    times = [c for c in cols if isinstance(table.c[c].type, UTCDateTime)]
    docs = [c for c in cols if isinstance(table.c[c].type, sa.JSON)]
    for start in range(0, data.num_rows, CHUNK):
        rows = data.slice(start, CHUNK).to_pylist()
        for row in rows:
            for c in times:
                if row[c] is not None:
                    row[c] = row[c].replace(tzinfo=dt.UTC)
            for c in docs:
                if row[c] is not None:
                    row[c] = json.loads(row[c])
        conn.execute(stmt, rows)


_PG_TYPES = {
    pa.string(): "text",
    pa.int64(): "bigint",
    pa.float64(): "double precision",
    pa.bool_(): "boolean",
    pa.timestamp("us"): "timestamp",
}


@contextmanager
def staged(conn: Connection, data: pa.Table) -> Iterator[sa.FromClause]:
    """``data`` as a table that statements on ``conn`` can join, for the length of the block.

    DuckDB registers the Arrow table itself. PostgreSQL reads it as ``unnest`` of one array
    parameter per column: one statement whatever the row count, and no temporary table (whose
    catalogue rows a busy ingest would churn). Columns are text, 64-bit integers, floats,
    booleans or naive UTC timestamps; raises ``ValueError`` for another type, and on a store
    other than DuckDB and PostgreSQL.
    """
    for field in data.schema:
        if field.type not in _PG_TYPES:
            raise ValueError(f"staged: column {field.name} has type {field.type}")
    name = f"_cxm_stage_{secrets.token_hex(4)}"
    if is_duckdb(conn):
        _attach(conn, name, data)
        try:
            yield sa.table(name, *[sa.column(c) for c in data.column_names])
        finally:
            _unregister(conn, name)
        return
    if conn.dialect.name != "postgresql":
        raise ValueError(f"staged: the {conn.dialect.name} store cannot stage a table")
    quote = conn.dialect.identifier_preparer.quote
    params = {f"_c{n}": data.column(n).to_pylist() for n in range(data.num_columns)}
    arrays = ", ".join(f"CAST(:_c{n} AS {_PG_TYPES[f.type]}[])" for n, f in enumerate(data.schema))
    names = ", ".join(quote(c) for c in data.column_names)
    yield (
        sa.text(f"SELECT * FROM unnest({arrays}) AS t({names})")
        .bindparams(**params)
        .columns(*[sa.column(c) for c in data.column_names])
        .subquery(name)
    )


def matching(conn: Connection, table: sa.Table, keys: pa.Table) -> pa.Table:
    """The rows of ``keys`` (columns named after ``table``'s) that ``table`` already holds."""
    cols = keys.column_names
    if keys.num_rows == 0:
        return keys
    if is_duckdb(conn):
        view = f"_cxm_keys_{secrets.token_hex(4)}"
        _attach(conn, view, keys)
        try:
            source = sa.table(view, *[sa.column(c) for c in cols])
            query = sa.select(*[source.c[c] for c in cols]).where(
                sa.exists().where(*[table.c[c] == source.c[c] for c in cols])
            )
            found = conn.execute(query).all()
        finally:
            _unregister(conn, view)
    else:
        found = []
        target = sa.tuple_(*[table.c[c] for c in cols]) if len(cols) > 1 else table.c[cols[0]]
        rows = keys.to_pylist()
        for start in range(0, len(rows), 2000):
            chunk = [tuple(r[c] for c in cols) for r in rows[start : start + 2000]]
            wanted = chunk if len(cols) > 1 else [c[0] for c in chunk]
            found += conn.execute(
                sa.select(*[table.c[c] for c in cols]).where(target.in_(wanted))
            ).all()
    return pa.table(
        {c: pa.array([r[n] for r in found], keys.schema.field(c).type) for n, c in enumerate(cols)}
    )


def lookup(
    conn: Connection, table: sa.Table, key: str, values: Sequence[str], columns: Sequence[str]
) -> list[sa.Row[Any]]:
    """The rows of ``table`` whose ``key`` is one of ``values`` (text keys), as ``columns``.

    DuckDB joins a registered Arrow table of the keys (one scan, however many keys: an
    ``IN`` list per thousand keys scans a large table once per thousand); PostgreSQL looks the
    keys up through its index, a thousand at a time.
    """
    if not values:
        return []
    wanted = [table.c[c] for c in columns]
    if is_duckdb(conn):
        view = f"_cxm_keys_{secrets.token_hex(4)}"
        keys = pa.table({key: pa.array(list(dict.fromkeys(values)), pa.string())})
        _attach(conn, view, keys)
        try:
            source = sa.table(view, sa.column(key))
            return list(
                conn.execute(
                    sa.select(*wanted).join_from(table, source, table.c[key] == source.c[key])
                )
            )
        finally:
            _unregister(conn, view)
    found: list[sa.Row[Any]] = []
    distinct = sorted(set(values))
    for start in range(0, len(distinct), 1000):
        found += conn.execute(
            sa.select(*wanted).where(table.c[key].in_(distinct[start : start + 1000]))
        ).all()
    return found

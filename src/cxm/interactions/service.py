"""Storing interactions: validation per event, idempotency by event id, resolution, facts.

``ingest`` is the one write path: the API (through group commit), the Segment endpoints, the
file importer and other domains' tests all hand it plain dicts.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cxm.customers import service as customers
from cxm.errors import Invalid
from cxm.interactions import limits
from cxm.interactions.tables import interactions
from cxm.org import service as org
from cxm.store import is_duckdb, utcnow
from cxm.store.bulk import insert_rows, insert_table, matching

TYPES = ("track", "identify", "page", "screen", "group", "alias")
FIELDS = {
    "event_id",
    "type",
    "name",
    "timestamp",
    "event_time",
    "sent_at",
    "user_id",
    "anonymous_id",
    "email",
    "phone",
    "external_ids",
    "touchpoint",
    "touchpoint_key",
    "channel",
    "properties",
    "context",
    "traits",
    "revenue",
}
REVENUE_KEYS = ("revenue", "amount", "value")
EARLIEST = dt.datetime(1990, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class ItemResult:
    """What happened to one submitted event."""

    index: int
    event_id: str | None
    status: str  # stored | duplicate | rejected
    error: str | None = None
    customer_id: str | None = None


class Rejected(ValueError):
    """One event's field is unusable; the message names the field."""


def parse_time(
    value: Any, field: str, latest: dt.datetime | None = None, *, checked: bool = True
) -> dt.datetime:
    """An ISO 8601 time (or a datetime) as aware UTC; a time without a zone is read as UTC.

    With ``checked`` the time must lie between 1990 and ``latest`` (default now + 2 days).
    """
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise Rejected(f"{field}: '{value}' is not an ISO 8601 time") from None
    else:
        raise Rejected(f"{field}: expected an ISO 8601 time string, got {type(value).__name__}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    try:
        parsed.astimezone(dt.UTC)
    except OverflowError:
        raise Rejected(f"{field}: {parsed.isoformat()} is outside the years 1 .. 9999") from None
    if checked and not EARLIEST <= parsed <= (latest or utcnow() + dt.timedelta(days=2)):
        raise Rejected(f"{field}: {parsed.isoformat()} is outside 1990 .. now")
    return parsed.astimezone(dt.UTC)


def _text(event: dict[str, Any], field: str, limit: int, checked: bool = True) -> str | None:
    value = event.get(field)
    if value is None:
        return None
    if type(value) is str:
        text = value.strip()
    elif isinstance(value, bool) or not isinstance(value, (str, int)):
        raise Rejected(f"{field}: expected a string, got {type(value).__name__}")
    else:
        text = str(value).strip()
    if checked:
        _storable(text, field)
    if len(text) > limit:
        raise Rejected(f"{field}: longer than {limit} characters")
    return text or None


def _storable(text: str, field: str) -> None:
    try:
        limits.check_text(text, field)
    except limits.Refused as exc:
        raise Rejected(str(exc)) from None


def _document(
    value: dict[str, Any] | None, field: str, checked: bool = True
) -> dict[str, Any] | None:
    if value is not None and checked:
        try:
            limits.check_document(value, field)
        except limits.Refused as exc:
            raise Rejected(str(exc)) from None
    return value


def _object(event: dict[str, Any], field: str) -> dict[str, Any] | None:
    value = event.get(field)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Rejected(f"{field}: expected a JSON object, got {type(value).__name__}")
    return value


def event_time_of(
    event: dict[str, Any], received_at: dt.datetime
) -> tuple[dt.datetime, dict[str, Any]]:
    """When the event happened, and what to keep in ``context`` about the device clock.

    With both ``timestamp`` and ``sent_at`` (times by the device's clock: when the event
    happened, when the device sent it), the device clock's error is ``sent_at - received_at``
    and the event time is ``timestamp - (sent_at - received_at)``, as Segment's HTTP API
    documents for ``sentAt``; the device values are kept as ``context.originalTimestamp`` and
    ``context.sentAt``. Without ``sent_at`` the timestamp is taken as it is; without either,
    the event happened when it was received. The result must lie between 1990 and two days
    after ``received_at``.
    """
    when = event.get("timestamp", event.get("event_time"))
    latest = received_at + dt.timedelta(days=2)
    sent = event.get("sent_at")
    if when is None:
        if sent is not None:
            parse_time(sent, "sent_at", checked=False)
        return received_at, {}
    if sent is None:
        return parse_time(when, "timestamp", latest), {}
    device_time = parse_time(when, "timestamp", checked=False)
    device_sent = parse_time(sent, "sent_at", checked=False)
    try:
        corrected = device_time - (device_sent - received_at)
    except OverflowError:
        raise Rejected(
            f"timestamp: {device_time.isoformat()} corrected by sent_at "
            f"{device_sent.isoformat()} falls outside 1990 .. now"
        ) from None
    if not EARLIEST <= corrected <= latest:
        raise Rejected(
            f"timestamp: {device_time.isoformat()} corrected by sent_at "
            f"{device_sent.isoformat()} is {corrected.isoformat()}, outside 1990 .. now"
        )
    keep = {"originalTimestamp": device_time.isoformat(), "sentAt": device_sent.isoformat()}
    return corrected, keep


def validate(
    event: Any, received_at: dt.datetime, region: str = "DE", checked: bool = True
) -> dict[str, Any]:
    """One submitted event as an ``interactions`` row (without ``customer_id``).

    ``checked=False`` skips the checks for NUL characters, lone surrogates and non-finite
    numbers in text and documents, for events parsed from a body that cannot hold any
    (``limits.storable_json``); every other check runs.
    """
    if not isinstance(event, dict):
        raise Rejected(f"event: expected a JSON object, got {type(event).__name__}")
    extra_ids = dict(_object(event, "external_ids") or {})
    for key in () if FIELDS.issuperset(event) else list(event):
        if key in FIELDS:
            continue
        if key.endswith("_id"):  # crm_id, order_id: external ids at the top level
            extra_ids[key] = event[key]
        else:
            raise Rejected(f"{key}: unknown field; known: {', '.join(sorted(FIELDS))}")
    kind = _text(event, "type", 16, checked) or "track"
    if kind not in TYPES:
        raise Rejected(f"type: '{kind}' is not one of {', '.join(TYPES)}")
    name = _text(event, "name", 200, checked)
    if kind == "track" and not name:
        raise Rejected("name: a track event needs a name (e.g. order_placed)")
    event_time, clock = event_time_of(event, received_at)
    properties = dict(_object(event, "properties") or {})
    traits = _object(event, "traits")
    if traits:
        properties["traits"] = {**(properties.get("traits") or {}), **traits}
    row: dict[str, Any] = {
        "event_id": _text(event, "event_id", 200, checked) or f"gen-{secrets.token_hex(16)}",
        "type": kind,
        "name": name,
        "event_time": event_time,
        "received_at": received_at,
        "touchpoint_key": _text(event, "touchpoint", 64, checked)
        or _text(event, "touchpoint_key", 64, checked),
        "channel": _text(event, "channel", 32, checked),
        "properties": _document(properties or None, "properties", checked),
        "context": _document(
            {**(_object(event, "context") or {}), **clock} or None, "context", checked
        ),
    }
    for field in ("user_id", "anonymous_id", "email", "phone"):
        raw = _text(event, field, 320, checked)
        value = customers.normalise(field, raw, region) if raw else None
        if raw and value is None:
            raise Rejected(f"{field}: '{raw}' is not a usable {field.replace('_', ' ')}")
        row[field] = value
    external: dict[str, str] = {}
    for key, raw in extra_ids.items():
        name_ = customers.normalise_kind(key) if key else key
        if raw is None:
            continue
        if not isinstance(raw, (str, int)) or isinstance(raw, bool):
            raise Rejected(f"{key}: expected a string id, got {type(raw).__name__}")
        if checked:
            _storable(str(raw), key)
        value = customers.normalise(name_, str(raw))
        if value:
            external[name_] = value
    row["external_ids"] = external or None
    revenue = event.get("revenue")
    if revenue is None:
        revenue = next((properties[k] for k in REVENUE_KEYS if k in properties), None)
    if isinstance(revenue, str):  # "12.50" as files and some SDKs send it
        revenue = number_of(revenue, "revenue")
    if revenue is not None:
        if isinstance(revenue, bool) or not isinstance(revenue, (int, float)):
            raise Rejected(f"revenue: expected a number, got {revenue!r}")
        try:
            revenue = float(revenue)
        except OverflowError:
            raise Rejected("revenue: the number is too large") from None
        if not math.isfinite(revenue):
            raise Rejected(f"revenue: expected a number, got {revenue!r}")
    row["revenue"] = revenue
    return row


_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def number_of(text: str, field: str) -> float | None:
    """A decimal number written as text (``1.5``, `` 12 ``, ``-3e2``); empty text is None.

    Only the plain decimal form is read (a dot for decimals, no thousands separators), so
    ``1,5``, ``NaN`` or ``inf`` are refused naming ``field`` rather than misread.
    """
    stripped = text.strip()
    if not stripped:
        return None
    if not _NUMBER.fullmatch(stripped):
        raise Rejected(f"{field}: '{text}' is not a number (write decimals with a dot, e.g. 1.5)")
    value = float(stripped)
    if not math.isfinite(value):
        raise Rejected(f"{field}: '{text}' is too large for a number")
    return value


def existing_ids(conn: Connection, event_ids: Sequence[str]) -> set[str]:
    """The event ids of ``event_ids`` the log already holds.

    On DuckDB one join against the ids registered as Arrow: its planner scans the table for an
    ``IN`` list of any length, so a list per 2,000 ids would scan it once per chunk.
    """
    found: set[str] = set()
    ids = list(event_ids)
    if is_duckdb(conn):
        if not ids:
            return found
        keys = pa.table({"event_id": pa.array(ids, pa.string())})
        return set(matching(conn, interactions, keys).column("event_id").to_pylist())
    if len(ids) > 5000:
        held = conn.execute(sa.select(sa.func.count()).select_from(interactions)).scalar_one()
        if held <= 4 * len(ids):  # a big batch against a small log: one scan
            wanted = set(ids)
            every = conn.execute(sa.select(interactions.c.event_id)).scalars()
            return {e for e in every if e in wanted}
    for start in range(0, len(ids), 2000):
        chunk = ids[start : start + 2000]
        found.update(
            conn.execute(
                sa.select(interactions.c.event_id).where(interactions.c.event_id.in_(chunk))
            ).scalars()
        )
    return found


_JSON = json.JSONEncoder(default=str)  # json.dumps(value, default=str), built once
_TEXT_COLUMNS = (
    "event_id",
    "type",
    "name",
    "customer_id",
    "user_id",
    "anonymous_id",
    "email",
    "phone",
    "touchpoint_key",
    "channel",
    "source",
)


def _as_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Stored rows (``validate``'s, with ``customer_id``, ``source`` and ``received_at``) as
    the Arrow table ``insert_table`` takes: built column by column, times naive UTC and
    documents as JSON text, as ``insert_rows`` writes them."""
    encode = _JSON.encode
    columns: dict[str, pa.Array] = {
        name: pa.array([r[name] for r in rows], pa.string()) for name in _TEXT_COLUMNS
    }
    for name in ("event_time", "received_at"):
        aware = pa.array([r[name] for r in rows], pa.timestamp("us", tz="UTC"))
        columns[name] = aware.cast(pa.int64()).cast(pa.timestamp("us"))
    columns["revenue"] = pa.array([r["revenue"] for r in rows], pa.float64())
    for name in ("external_ids", "properties", "context"):
        values = [r[name] for r in rows]
        columns[name] = pa.array([None if v is None else encode(v) for v in values], pa.string())
    return pa.table(columns)


def store(
    conn: Connection, rows: list[dict[str, Any]], received_at: dt.datetime, *, new: bool = False
) -> list[str | None]:
    """Resolve and store validated rows (all received at ``received_at``) whose event ids the
    log does not hold; with ``new`` the insert raises ``IntegrityError`` on one it holds
    (rather than skipping it), so the caller can roll back and look the ids up instead."""
    if not rows:
        return []
    for row in rows:
        row["received_at"] = received_at
    resolved = customers.resolve_batch(
        conn, [(r["event_id"], customers.event_idents(r)) for r in rows], received_at
    )
    for row, cid in zip(rows, resolved.customer_ids, strict=True):
        row["customer_id"] = cid
    touchpoints = {r["touchpoint_key"] for r in rows if r["touchpoint_key"]}
    if touchpoints:
        org.ensure_touchpoints(conn, touchpoints)
    if is_duckdb(conn) and len(rows) > 1:  # DuckDB binds a many-row VALUES slowly
        insert_table(conn, interactions, _as_table(rows), ignore=not new)
    else:
        insert_rows(conn, interactions, rows, ignore=not new)
    customers.set_traits(
        conn,
        [
            (r["customer_id"], name, value, r["event_time"])
            for r in rows
            if r["customer_id"] and r["type"] == "identify"
            for name, value in customers.trait_values(r).items()
        ],
    )
    customers.add_received(conn, rows)
    return resolved.customer_ids


def ingest(
    conn: Connection,
    events: list[Any],
    source: str,
    region: str = "DE",
    checked: bool = True,
    *,
    new: bool = False,
) -> list[ItemResult]:
    """Validate and store ``events``: per item stored, duplicate (same event id) or rejected.

    ``checked=False``: the events come from a body ``limits.storable_json`` passed (see
    ``validate``). ``new=True`` skips looking up which event ids the log holds: the insert
    raises ``sqlalchemy.exc.IntegrityError`` on the first one it holds, and the caller rolls
    the transaction back and calls again without ``new`` (``groupcommit``). On DuckDB the
    primary key's index answers that in time independent of the log's size, while the lookup
    scans the ``event_id`` column."""
    received_at = utcnow()
    results: list[ItemResult | None] = [None] * len(events)
    fresh: list[tuple[int, dict[str, Any]]] = []
    seen: set[str] = set()
    for n, event in enumerate(events):
        try:
            row = validate(event, received_at, region, checked)
        except (Rejected, Invalid) as exc:
            event_id = event.get("event_id") if isinstance(event, dict) else None
            results[n] = ItemResult(
                n,
                limits.shown(event_id) if isinstance(event_id, str) else None,
                "rejected",
                limits.shown(str(exc)),
            )
            continue
        if row["event_id"] in seen:
            results[n] = ItemResult(n, row["event_id"], "duplicate")
            continue
        seen.add(row["event_id"])
        row["source"] = source
        fresh.append((n, row))
    stored = set() if new else existing_ids(conn, [r["event_id"] for _, r in fresh])
    unseen = [(n, r) for n, r in fresh if r["event_id"] not in stored]
    for n, r in fresh:
        if r["event_id"] in stored:
            results[n] = ItemResult(n, r["event_id"], "duplicate")
    ids = store(conn, [r for _, r in unseen], received_at, new=new)
    for (n, r), cid in zip(unseen, ids, strict=True):
        results[n] = ItemResult(n, r["event_id"], "stored", customer_id=cid)
    return [r for r in results if r is not None]


# Columns of a prepared table (see ``store_table``), besides ``ext:<kind>`` identifier columns.
TABLE_COLUMNS = (
    "event_id",
    "type",
    "name",
    "event_time",
    "user_id",
    "anonymous_id",
    "email",
    "phone",
    "external_ids",
    "touchpoint_key",
    "channel",
    "revenue",
    "properties",
    "context",
)


@dataclass(frozen=True)
class TableResult:
    stored: int
    duplicates: int


def store_table(
    conn: Connection, rows: pa.Table, source: str, received_at: dt.datetime,
    owners: pa.Table | None = None,
) -> TableResult:  # fmt: skip
    """Store validated rows held as Arrow (the bulk twin of ``ingest`` after validation).

    ``rows`` has ``TABLE_COLUMNS`` (times naive UTC, JSON as text) plus one ``ext:<kind>``
    column per external id kind, in input order. The first row of each event id counts; later
    ones, and ids the log already holds, are duplicates. All rows share ``received_at``.
    ``owners`` (``event_id``, ``customer_id``), when given, holds the customer of every new
    event of ``rows``, already resolved and written (``resolve_table``; rows for other events
    may be there too, at the cost of matching them); otherwise they are resolved here.
    """
    if rows.num_rows == 0:
        return TableResult(0, 0)
    unique = _new_events(conn, rows)
    duplicates = rows.num_rows - unique.num_rows
    if unique.num_rows == 0:
        return TableResult(0, duplicates)
    if owners is None:
        owner = _resolve_new(conn, unique, received_at)
    else:
        found = pc.index_in(unique.column("event_id"), value_set=owners.column("event_id"))
        if found.null_count:
            raise ValueError(f"store_table: owners lack {found.null_count} new events of rows")
        owner = owners.column("customer_id").combine_chunks().take(found)
    points = pc.unique(unique.column("touchpoint_key").drop_null()).to_pylist()
    if points:
        org.ensure_touchpoints(conn, set(points))
    stamp = received_at.astimezone(dt.UTC).replace(tzinfo=None)
    data = unique.select(list(TABLE_COLUMNS))
    data = data.append_column("customer_id", owner)
    data = data.append_column("received_at", pa.array([stamp] * data.num_rows, pa.timestamp("us")))
    data = data.append_column("source", pa.array([source] * data.num_rows, pa.string()))
    # Every key is new: first of its id in the batch, and absent from the log (checked above).
    insert_table(conn, interactions, data)
    identify = data.filter(
        pc.and_(pc.equal(data.column("type"), "identify"), pc.is_valid(data.column("customer_id")))
    ).select(["customer_id", "event_time", "properties"])
    values = []
    for r in identify.to_pylist():
        props = json.loads(r["properties"]) if r["properties"] else None
        at = r["event_time"].replace(tzinfo=dt.UTC)
        for name, value in customers.trait_values({"properties": props}).items():
            values.append((r["customer_id"], name, value, at))
    customers.set_traits(conn, values)
    customers.add_facts(conn, customers.facts_of(data))
    return TableResult(unique.num_rows, duplicates)


def _new_events(conn: Connection, rows: pa.Table) -> pa.Table:
    """The first row of each event id in ``rows`` whose id the log does not hold yet."""
    codes = np.asarray(
        rows.column("event_id").combine_chunks().dictionary_encode().indices.to_numpy()
    )
    _, firsts = np.unique(codes, return_index=True)
    firsts.sort()
    unique = rows.take(pa.array(firsts))
    held = matching(conn, interactions, unique.select(["event_id"])).column("event_id")
    if len(held):
        unique = unique.filter(pc.invert(pc.is_in(unique.column("event_id"), held)))
    return unique


def _resolve_new(conn: Connection, unique: pa.Table, received_at: dt.datetime) -> pa.Array:
    """Resolve (and write) the customers of new events, one per row of ``unique``."""
    kinds = sorted(c.removeprefix("ext:") for c in unique.column_names if c.startswith("ext:"))
    idents = {k: unique.column(k).combine_chunks() for k in customers.CORE_KINDS}
    idents.update({k: unique.column(f"ext:{k}").combine_chunks() for k in kinds})
    event_ids = unique.column("event_id").combine_chunks()
    return customers.resolve_columns(conn, event_ids, idents, received_at)


def identity_columns(rows: pa.Table) -> list[str]:
    """The columns of a prepared table (``store_table``'s input) that resolving its customers
    reads: the event id, the core identifier kinds and the ``ext:<kind>`` columns."""
    return [
        c for c in rows.column_names
        if c == "event_id" or c in customers.CORE_KINDS or c.startswith("ext:")
    ]  # fmt: skip


def resolve_table(conn: Connection, rows: pa.Table, received_at: dt.datetime) -> pa.Table:
    """Resolve the customers of the new events among ``rows`` (``identity_columns`` of
    ``store_table``'s input, for a whole file, and any other columns, such as a row number)
    and write them. The result, one row per new event id at its first row in ``rows`` and in
    their order, holds ``event_id``, ``customer_id`` and the other columns; its rows for a
    batch's events are that batch's ``owners`` in ``store_table``.

    A file stored in several transactions then resolves as one: each later batch would
    otherwise resolve against the profiles the earlier ones stored (the slow path, walked with
    the stored profiles), 5-6x the CPU of the whole file at once (docs/scale.md, Import)."""
    unique = _new_events(conn, rows)
    owner = _resolve_new(conn, unique, received_at)
    ident = set(identity_columns(unique))
    other = [c for c in unique.column_names if c not in ident]
    return unique.select(["event_id", *other]).append_column("customer_id", owner)


def unowned_touchpoints(conn: Connection) -> list[str]:
    """Touchpoints seen in interactions that no department owns yet."""
    return sorted(k for k, owner in org.ownership(conn).items() if owner is None)

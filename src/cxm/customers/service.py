"""Customer profiles: identifier normalisation, identity resolution, traits, facts, lookup.

Resolution is deterministic: identifiers seen together in one event (or linked by ``alias``)
belong to one customer. Events are resolved in batches, in the order ``(received_at,
event_id)``; a customer's id derives from the event that created it, and when two profiles
join, the older one survives. ``rebuild`` replays the log batch by batch through the same
``Resolver``, so it reaches exactly what incremental resolution reached.

The interaction log is the source of truth for identity, so this module reads and re-points
``interactions.customer_id`` (merges re-point facts in the same transaction).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cxm.customers import traits as trait_types
from cxm.customers.tables import customer_identities, customer_merges, customer_traits, customers
from cxm.errors import Invalid
from cxm.interactions.facts import interactions
from cxm.store import as_utc, insert_ignore, is_duckdb, utcnow
from cxm.store.bulk import insert_rows, insert_table, lookup, staged, update_rows

if TYPE_CHECKING:
    from cxm.customers.components import SetResolution, Stored

Ident = tuple[str, str]  # (kind, normalised value)
CORE_KINDS = ("user_id", "email", "phone", "anonymous_id")
DEFAULT_CAP = 10
DEFAULT_CAPS = {"email": 5, "phone": 5, "user_id": 5}


# ---- normalisation ----


def normalise(kind: str, value: str, default_region: str = "DE") -> str | None:
    """The canonical form of an identifier, or None when it cannot identify anyone."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if kind == "email":
        text = text.lower()
        local, at, domain = text.partition("@")
        if not at or not local or "." not in domain or any(c.isspace() for c in text):
            return None
        return text[:320]
    if kind == "phone":
        try:
            number = phonenumbers.parse(text, default_region)
        except phonenumbers.NumberParseException:
            return None
        # Too short to reach anyone (an extension, a typo) is no identifier.
        if not phonenumbers.is_possible_number(number) or len(str(number.national_number)) < 6:
            return None
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return text[:200]


def normalise_kind(kind: str) -> str:
    """Identifier kinds are snake-case names (``crm_id``); anything else is refused."""
    name = kind.strip().lower()
    if not name or len(name) > 32 or not all(c.isalnum() or c == "_" for c in name):
        raise Invalid(f"identifier kind '{kind}' must be a short name of letters, digits and _")
    return name


def identity_caps() -> dict[str, int]:
    """Most identifiers of one kind a customer may hold (``CXM_IDENTITY_CAP_<KIND>``)."""
    caps = dict(DEFAULT_CAPS)
    for name, value in os.environ.items():
        if name.startswith("CXM_IDENTITY_CAP_") and value.strip().isdigit():
            caps[name.removeprefix("CXM_IDENTITY_CAP_").lower()] = max(1, int(value))
    return caps


def _aware(value: dt.datetime | None) -> dt.datetime:
    """A stored, non-null time as aware UTC."""
    out = as_utc(value)
    assert out is not None
    return out


def customer_id_for(event_id: str) -> str:
    """The id of the customer an event creates: stable, so a rebuild gives the same id."""
    return hashlib.sha256(event_id.encode()).hexdigest()[:32]


def event_idents(row: dict[str, Any]) -> list[Ident]:
    """The identifiers an interaction row carries, in a fixed order: ``CORE_KINDS`` then the
    ``external_ids`` kinds sorted, as ``(kind, normalised value)``.

    Only the row's identifier columns count. ``properties``, ``context`` and traits describe
    the event (an invitee's address, a group's email) and never identify its sender; the
    ingest edges (``interactions.segment``, the importer's mapping) decide which input fields
    fill the identifier columns.
    """
    found = [(k, row[k]) for k in CORE_KINDS if row.get(k)]
    extra = row.get("external_ids") or {}
    found += [(k, str(extra[k])) for k in sorted(extra) if extra[k]]
    return found


# ---- the resolver (pure, in memory) ----


@dataclass(frozen=True)
class Capped:
    """A link the cap held back: reported, not applied."""

    event_id: str
    kind: str
    value: str
    customer_id: str
    reason: str


@dataclass
class Resolver:
    """Union of identifiers into customers, one batch of events at a time."""

    caps: dict[str, int] = field(default_factory=identity_caps)
    owner: dict[Ident, str] = field(default_factory=dict)
    parent: dict[str, str] = field(default_factory=dict)
    rank: dict[str, tuple[dt.datetime, str]] = field(default_factory=dict)
    counts: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    # Outputs, collected until written.
    created: dict[str, dt.datetime] = field(default_factory=dict)
    new_idents: list[tuple[str, str, str, dt.datetime]] = field(default_factory=list)
    merges: list[tuple[str, str, str, str, str, dt.datetime]] = field(default_factory=list)
    capped: list[Capped] = field(default_factory=list)

    def root(self, customer_id: str) -> str:
        while customer_id in self.parent:
            customer_id = self.parent[customer_id]
        return customer_id

    def cap(self, kind: str) -> int:
        return self.caps.get(kind, DEFAULT_CAP)

    def resolve(self, event_id: str, idents: Sequence[Ident], at: dt.datetime) -> str | None:
        """The customer of one event (creating or merging profiles); None without identifiers."""
        if not idents:
            return None
        known: dict[str, Ident] = {}
        new: list[Ident] = []
        for ident in dict.fromkeys(idents):
            owner = self.owner.get(ident)
            if owner is None:
                new.append(ident)
            else:
                known.setdefault(self.root(owner), ident)
        if known:
            order = sorted(known, key=lambda c: self.rank[c])
            target = order[0]
            for loser in order[1:]:
                over = [
                    k
                    for k, n in self.counts[loser].items()
                    if self.counts[target][k] + n > self.cap(k)
                ]
                kind, value = known[loser]
                if over:
                    self.capped.append(Capped(event_id, kind, value, loser, f"cap on {over[0]}"))
                    continue
                self.parent[loser] = target
                self.counts[target].update(self.counts.pop(loser))
                self.merges.append((loser, target, kind, value, event_id, at))
        else:
            target = customer_id_for(event_id)
            self.rank[target] = (at, target)
            self.created[target] = at
        for kind, value in new:
            if self.counts[target][kind] >= self.cap(kind):
                self.capped.append(Capped(event_id, kind, value, target, f"cap on {kind}"))
                continue
            self.owner[(kind, value)] = target
            self.counts[target][kind] += 1
            self.new_idents.append((kind, value, target, at))
        return target

    def remap(self) -> dict[str, str]:
        """Every merged-away customer → its surviving customer."""
        return {loser: self.root(loser) for loser in self.parent}


def _seed(conn: Connection, resolver: Resolver, idents: set[Ident]) -> None:
    """Load what the store knows about ``idents`` (owners, their ranks and counts)."""
    pairs = sorted(idents)
    owners: set[str] = set()
    if is_duckdb(conn) and pairs:
        # One join against the batch's identifiers registered as Arrow, not a tuple IN list.
        view = f"_cxm_seed_{secrets.token_hex(4)}"
        wanted = pa.table(
            {"kind": [k for k, _ in pairs], "value": [v for _, v in pairs]},
            schema=pa.schema([("kind", pa.string()), ("value", pa.string())]),
        )
        conn.connection.driver_connection.register(view, wanted)  # type: ignore[union-attr]
        try:
            source = sa.table(view, sa.column("kind"), sa.column("value"))
            found = _raw_rows(
                conn,
                sa.select(
                    customer_identities.c.kind,
                    customer_identities.c.value,
                    customer_identities.c.customer_id,
                ).join(
                    source,
                    sa.and_(
                        customer_identities.c.kind == source.c.kind,
                        customer_identities.c.value == source.c.value,
                    ),
                ),
            )
        finally:
            conn.connection.driver_connection.unregister(view)  # type: ignore[union-attr]
        for kind, value, cid in found:
            resolver.owner[(kind, value)] = cid
            owners.add(cid)
        pairs = []
    held = (
        conn.execute(sa.select(sa.func.count()).select_from(customer_identities)).scalar_one()
        if pairs
        else 0
    )
    if len(pairs) > 5000 and held <= 4 * len(pairs):
        # A big batch against a small store: one scan beats thousands of lookups.
        everything = sa.select(
            customer_identities.c.kind,
            customer_identities.c.value,
            customer_identities.c.customer_id,
        )
        for kind, value, cid in conn.execute(everything):
            if (kind, value) in idents:
                resolver.owner[(kind, value)] = cid
                owners.add(cid)
        pairs = []
    for start in range(0, len(pairs), 2000):
        chunk = pairs[start : start + 2000]
        rows = conn.execute(
            sa.select(
                customer_identities.c.kind,
                customer_identities.c.value,
                customer_identities.c.customer_id,
            ).where(sa.tuple_(customer_identities.c.kind, customer_identities.c.value).in_(chunk))
        )
        for r in rows:
            resolver.owner[(r.kind, r.value)] = r.customer_id
            owners.add(r.customer_id)
    owner_list = sorted(owners)
    if is_duckdb(conn) and owner_list:
        _seed_owners(conn, resolver, owner_list)
        owner_list = []
    for start in range(0, len(owner_list), 2000):
        id_chunk = owner_list[start : start + 2000]
        for cid, created in conn.execute(
            sa.select(customers.c.id, customers.c.created_at).where(customers.c.id.in_(id_chunk))
        ):
            resolver.rank[cid] = (_aware(created), cid)
        counts = conn.execute(
            sa.select(
                customer_identities.c.customer_id, customer_identities.c.kind, sa.func.count()
            )
            .where(customer_identities.c.customer_id.in_(id_chunk))
            .group_by(customer_identities.c.customer_id, customer_identities.c.kind)
        )
        for cid, kind, n in counts:
            resolver.counts[cid][kind] = n


def _raw_rows(conn: Connection, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
    """A parameterless DuckDB query's rows as plain tuples, fetched by the driver itself
    (thousands of rows through SQLAlchemy's result rows cost more than the query)."""
    sql = str(query.compile(dialect=conn.dialect))
    raw = conn.connection.driver_connection
    return raw.execute(sql).fetchall()  # type: ignore[union-attr]


def _seed_owners(conn: Connection, resolver: Resolver, owner_list: list[str]) -> None:
    """``_seed``'s ranks and counts of ``owner_list`` on DuckDB: two joins against the ids
    registered as Arrow (an ``IN`` list of 2,000 bound ids costs DuckDB more per id than the
    join, and once per chunk)."""
    view = f"_cxm_owners_{secrets.token_hex(4)}"
    raw = conn.connection.driver_connection
    raw.register(view, pa.table({"id": pa.array(owner_list, pa.string())}))  # type: ignore[union-attr]
    try:
        source = sa.table(view, sa.column("id"))
        created = _raw_rows(
            conn,
            sa.select(customers.c.id, customers.c.created_at).join(
                source, customers.c.id == source.c.id
            ),
        )
        for cid, at in created:
            resolver.rank[cid] = (_aware(at), cid)
        counts = _raw_rows(
            conn,
            sa.select(
                customer_identities.c.customer_id, customer_identities.c.kind, sa.func.count()
            )
            .join(source, customer_identities.c.customer_id == source.c.id)
            .group_by(customer_identities.c.customer_id, customer_identities.c.kind),
        )
        for cid, kind, n in counts:
            resolver.counts[cid][kind] = n
    finally:
        raw.unregister(view)  # type: ignore[union-attr]


def _write_customers(conn: Connection, resolver: Resolver) -> None:
    remap = resolver.remap()
    # Profiles born and merged within this batch are written merged, with no facts of their
    # own; only profiles that existed before need their rows and facts re-pointed.
    blank = {"interaction_count": 0, "first_seen": None, "last_seen": None}
    rows = []
    for cid, at in resolver.created.items():
        facts = {"first_seen": at, "last_seen": at, "interaction_count": 0}
        rows.append({"id": cid, "created_at": at, **facts, "merged_into": None})
        if cid in remap:
            rows[-1].update(blank, merged_into=remap[cid])
    insert_rows(conn, customers, rows)
    insert_rows(
        conn,
        customer_identities,
        [
            {"kind": k, "value": v, "customer_id": remap.get(c, c), "first_seen": at}
            for k, v, c, at in resolver.new_idents
        ],
    )
    insert_rows(
        conn,
        customer_merges,
        [
            {
                "id": hashlib.sha256(f"{e}:{a}".encode()).hexdigest()[:32],
                "from_customer_id": a,
                "into_customer_id": b,
                "identifier_kind": k,
                "identifier_value": v,
                "event_id": e,
                "merged_at": at,
            }
            for a, b, k, v, e, at in resolver.merges
        ],
        ignore=True,
    )
    existing = {loser: root for loser, root in remap.items() if loser not in resolver.created}
    if existing:
        _apply_remap(conn, existing)


def _apply_remap(conn: Connection, remap: dict[str, str]) -> None:
    """Point everything that named a merged-away customer at the survivor."""
    losers = sorted(remap)
    # Traits: the survivor keeps the latest value of each trait across the merged profiles.
    for start in range(0, len(losers), 2000):
        chunk = losers[start : start + 2000]
        moved = (
            conn.execute(sa.select(customer_traits).where(customer_traits.c.customer_id.in_(chunk)))
            .mappings()
            .all()
        )
        conn.execute(customer_traits.delete().where(customer_traits.c.customer_id.in_(chunk)))
        set_traits(
            conn,
            [(remap[t["customer_id"]], t["name"], t["value"], _aware(t["set_at"])) for t in moved],
        )
    # Earlier merges that pointed at a loser now point at its survivor.
    pointed = conn.execute(
        sa.select(customers.c.id, customers.c.merged_into).where(
            customers.c.merged_into.in_(losers)
        )
    ).all()
    # A merged-away profile keeps no facts of its own: they move to the survivor (count added,
    # first / last seen widened: what a count of the re-pointed log gives), so the events stored
    # next move the survivor's facts as they move anyone's (``add_facts``).
    held = lookup(
        conn, customers, "id", losers, ["id", "interaction_count", "first_seen", "last_seen"]
    )
    counted = [r for r in held if r.interaction_count]
    add_facts(
        conn,
        _summed(
            pa.array([remap[r.id] for r in counted], pa.string()),
            pa.array([r.interaction_count for r in counted], pa.int64()),
            _naive([r.first_seen for r in counted]),
            _naive([r.last_seen for r in counted]),
        ),
    )
    blank = {"interaction_count": 0, "first_seen": None, "last_seen": None}
    rows = [{"id": loser, "merged_into": root, **blank} for loser, root in remap.items()]
    rows += [{"id": r.id, "merged_into": remap[r.merged_into], **blank} for r in pointed]
    update_rows(conn, customers, "id", rows)
    follow_merges(conn, remap)


# Tables whose customer rows the merge itself rewrites (traits keep the latest value of each).
_SELF = {"customers", "customer_traits", "customer_merges"}
_keyed: dict[tuple[str, str], list[tuple[sa.Table, bool]]] = {}


def customer_keyed_tables(conn: Connection) -> list[tuple[sa.Table, bool]]:
    """Every table of the store with a ``customer_id`` column, and whether it is in the key.

    Read from the database itself (not from the tables this process happens to have
    imported), so a table that any domain adds in a migration follows merges and erasure
    without being named here. Cached per store and schema version.
    """
    version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() or ""
    cache_key = (conn.engine.url.render_as_string(hide_password=True), str(version))
    if cache_key not in _keyed:
        # information_schema, which both stores answer (DuckDB has no pg_catalog inspector).
        rows = conn.execute(
            sa.text(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
            )
        ).all()
        columns: dict[str, list[str]] = defaultdict(list)
        for name, column in rows:
            columns[name].append(column)
        constraints = conn.execute(
            sa.text(
                "SELECT tc.table_name, tc.constraint_name, tc.constraint_type, kcu.column_name "
                "FROM information_schema.table_constraints tc "
                "JOIN information_schema.key_column_usage kcu "
                "ON tc.constraint_name = kcu.constraint_name AND tc.table_name = kcu.table_name "
                "AND tc.table_schema = kcu.table_schema "
                "WHERE tc.table_schema = current_schema() "
                "AND tc.constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
            )
        ).all()
        keys: dict[tuple[str, str], list[str]] = defaultdict(list)
        primary: dict[str, list[str]] = defaultdict(list)
        for name, constraint, kind, column in constraints:
            keys[(name, constraint)].append(column)
            if kind == "PRIMARY KEY":
                primary[name].append(column)
        found = []
        for name, cols in sorted(columns.items()):
            if name in _SELF or "customer_id" not in cols:
                continue
            keyed = any(t == name and "customer_id" in c for (t, _), c in keys.items())
            table = sa.Table(name, sa.MetaData(), *(sa.Column(c) for c in cols))
            if primary[name]:
                table.append_constraint(sa.PrimaryKeyConstraint(*primary[name]))
            found.append((table, keyed))
        _keyed[cache_key] = found
    return _keyed[cache_key]


# Above this many losers, DuckDB follows merges with one joined statement per table.
JOINED_MERGES = 2000


def follow_merges(conn: Connection, remap: dict[str, str]) -> None:
    """Re-point every customer-keyed row of ``remap``'s losers at their survivors.

    Responses, invitations, cases, unsubscribes, suppressions, privacy requests, the log and
    any table added later: one customer after a merge, whichever domain owns the fact. Where
    ``customer_id`` is part of a table's key (one unsubscribe per customer, say), the survivor's
    own row wins and a loser's row moves only when the survivor has none.
    """
    losers = sorted(remap)
    if is_duckdb(conn) and len(losers) > JOINED_MERGES:
        _follow_merges_joined(conn, losers, remap)
        return
    for table, keyed in customer_keyed_tables(conn):
        cid = table.c.customer_id
        for start in range(0, len(losers), 2000):
            chunk = losers[start : start + 2000]
            # One statement per loser group keeps this portable (no UPDATE ... FROM VALUES).
            mapping = sa.case({k: remap[k] for k in chunk}, value=cid)
            if not keyed:
                conn.execute(table.update().where(cid.in_(chunk)).values(customer_id=mapping))
                continue
            columns = [c.name for c in table.columns]
            moved = sa.select(
                *(mapping.label(c) if c == "customer_id" else table.c[c] for c in columns)
            ).where(cid.in_(chunk))
            conn.execute(insert_ignore(table).from_select(columns, moved))
            conn.execute(table.delete().where(cid.in_(chunk)))


def _follow_merges_joined(conn: Connection, losers: list[str], remap: dict[str, str]) -> None:
    """``follow_merges`` on DuckDB for many losers: the remap as one registered Arrow table,
    joined by one statement per table (a batch that links thousands of stored profiles
    compiled and ran a 2,000-way ``CASE`` per table per chunk: minutes of CPU)."""
    view = f"_cxm_remap_{secrets.token_hex(4)}"
    data = pa.table(
        {
            "loser": pa.array(losers, pa.string()),
            "root": pa.array([remap[k] for k in losers], pa.string()),
        }
    )
    raw = conn.connection.driver_connection
    raw.register(view, data)  # type: ignore[union-attr]
    try:
        m = sa.table(view, sa.column("loser"), sa.column("root"))
        for table, keyed in customer_keyed_tables(conn):
            cid = table.c.customer_id
            columns = [c.name for c in table.columns]
            moved = sa.select(
                *(m.c.root.label(c) if c == "customer_id" else table.c[c] for c in columns)
            ).select_from(table.join(m, cid == m.c.loser))
            if keyed:
                conn.execute(insert_ignore(table).from_select(columns, moved))
                conn.execute(table.delete().where(cid.in_(sa.select(m.c.loser))))
                continue
            # The moved rows copied aside, deleted and inserted back re-pointed: DuckDB runs an
            # UPDATE of the indexed customer_id through its index row by row (35,000 log rows
            # of 50,000: 5.4 s of CPU, 32 s of wall time on a loaded machine; this way 0.3 s,
            # and the commit keeps the index in about 4 s).
            aside = f"_cxm_moved_{secrets.token_hex(4)}"
            conn.exec_driver_sql(
                f"CREATE TEMP TABLE {aside} AS {moved.compile(dialect=conn.dialect)}"
            )
            try:
                conn.execute(table.delete().where(cid.in_(sa.select(m.c.loser))))
                copied = sa.table(aside, *(sa.column(c) for c in columns))
                conn.execute(table.insert().from_select(columns, sa.select(*copied.c)))
            finally:
                conn.exec_driver_sql(f"DROP TABLE {aside}")
    finally:
        raw.unregister(view)  # type: ignore[union-attr]


# ---- traits and facts ----


def set_traits(
    conn: Connection, values: Iterable[tuple[str, str, str | None, dt.datetime]]
) -> None:
    """Last write wins per trait: keep each ``(customer, name)``'s newest value."""
    latest: dict[tuple[str, str], tuple[dt.datetime, str | None]] = {}
    for cid, name, value, at in values:
        key = (cid, name[:64])
        if key not in latest or (at, value or "") >= (latest[key][0], latest[key][1] or ""):
            latest[key] = (at, value)
    if not latest:
        return
    by_name: dict[str, list[str | None]] = {}
    for (_, name), (_, value) in latest.items():
        by_name.setdefault(name, []).append(value)
    trait_types.record(conn, by_name)
    ids = sorted({c for c, _ in latest})
    current: dict[tuple[str, str], dt.datetime] = {}
    for start in range(0, len(ids), 2000):
        for r in conn.execute(
            sa.select(
                customer_traits.c.customer_id, customer_traits.c.name, customer_traits.c.set_at
            ).where(customer_traits.c.customer_id.in_(ids[start : start + 2000]))
        ):
            current[(r.customer_id, r.name)] = _aware(r.set_at)
    fresh, newer = [], []
    for (cid, name), (at, value) in latest.items():
        row = {"customer_id": cid, "name": name, "value": value, "set_at": at}
        if (cid, name) not in current:
            fresh.append(row)
        elif at >= current[(cid, name)]:
            newer.append(row)
    # Newer values replace the stored ones: delete and re-insert in bulk, not one UPDATE per
    # trait (a re-import of a large file changes hundreds of thousands of them).
    pair = sa.tuple_(customer_traits.c.customer_id, customer_traits.c.name)
    for start in range(0, len(newer), 2000):
        chunk = newer[start : start + 2000]
        conn.execute(
            customer_traits.delete().where(pair.in_([(r["customer_id"], r["name"]) for r in chunk]))
        )
    insert_rows(conn, customer_traits, fresh + newer)


def trait_values(event: dict[str, Any]) -> dict[str, str]:
    """Traits an identify event sets (``properties.traits``), as text."""
    raw = (event.get("properties") or {}).get("traits") or {}
    if not isinstance(raw, dict):
        return {}
    out = {}
    for name, value in raw.items():
        if value is None:
            continue
        out[str(name)] = value if isinstance(value, str) else json.dumps(value, default=str)
    return out


def refresh_facts(conn: Connection, customer_filter: Any | None = None) -> None:
    """Recompute first/last seen and interaction count from the log for the chosen customers."""
    i = interactions.alias("i")
    match = i.c.customer_id == customers.c.id
    stmt = customers.update().values(
        interaction_count=sa.select(sa.func.count()).where(match).scalar_subquery(),
        first_seen=sa.func.coalesce(
            sa.select(sa.func.min(i.c.event_time)).where(match).scalar_subquery(),
            customers.c.first_seen,
        ),
        last_seen=sa.func.coalesce(
            sa.select(sa.func.max(i.c.event_time)).where(match).scalar_subquery(),
            customers.c.last_seen,
        ),
    )
    if customer_filter is not None:
        stmt = stmt.where(customer_filter)
    conn.execute(stmt.where(customers.c.merged_into.is_(None)))


def add_received(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """``add_facts`` for just-stored ``rows`` (dicts with ``customer_id`` and aware
    ``event_time``)."""
    owned = [r for r in rows if r["customer_id"] is not None]
    times = _naive([r["event_time"] for r in owned])
    ids = pa.array([r["customer_id"] for r in owned], pa.string())
    add_facts(conn, _summed(ids, pa.array([1] * len(owned), pa.int64()), times, times))


def _naive(aware: list[dt.datetime]) -> pa.Array:
    """Aware times as naive UTC Arrow timestamps."""
    return pa.array(aware, pa.timestamp("us", tz="UTC")).cast(pa.int64()).cast(pa.timestamp("us"))


def _summed(cid: pa.Array, n: pa.Array, first: pa.Array, last: pa.Array) -> pa.Table:
    """``add_facts``' table from parts (several per customer): counts summed, the earliest
    first and the latest last time."""
    grouped = (
        pa.table({"cid": cid, "n": n, "first_at": first, "last_at": last})
        .group_by("cid")
        .aggregate([("n", "sum"), ("first_at", "min"), ("last_at", "max")])
    )
    return pa.table(
        {
            "cid": grouped.column("cid").cast(pa.string()),
            "n": grouped.column("n_sum").cast(pa.int64()),
            "first_at": grouped.column("first_at_min").cast(pa.timestamp("us")),
            "last_at": grouped.column("last_at_max").cast(pa.timestamp("us")),
        }
    )


def facts_of(rows: pa.Table) -> pa.Table:
    """Per customer of stored rows (Arrow, ``customer_id`` and naive UTC ``event_time``):
    ``cid``, ``n`` (events), ``first_at`` and ``last_at`` (their earliest and latest event
    time), as ``add_facts`` takes them; rows without a customer are left out."""
    owned = rows.filter(pc.is_valid(rows.column("customer_id")))
    times = owned.column("event_time")
    ones = pa.array(np.ones(owned.num_rows, np.int64))
    return _summed(owned.column("customer_id"), ones, times, times)


def add_facts(conn: Connection, facts: pa.Table) -> None:
    """Move customers' facts by events just stored for them (or moved to them by a merge):
    ``facts`` (``facts_of``) gives per customer ``n`` events, the earliest ``first_at`` and
    the latest ``last_at`` (naive UTC).

    The count grows by ``n`` and first / last seen widen to those times; a profile with no
    events yet (count 0, first / last seen its creation) takes them. The cost follows the
    events, not the log: recounting the log for the touched customers (``refresh_facts``)
    grew with every batch of an import, whose batches share one receipt time and touch ever
    more of them. Merges move the loser's facts to the survivor (``_apply_remap``), so the
    facts stay those of the log (``tests/interactions/test_ingest_facts.py``,
    ``test_import_batches.py``).
    """
    if facts.num_rows == 0:
        return
    with staged(conn, facts) as v:
        c = customers.c
        fresh = c.interaction_count == 0
        conn.execute(
            # Joined on the id alone: a filter on customers (merged_into IS NULL) made DuckDB
            # hash the profiles and probe with ``facts``, handing the update its rows in the
            # facts' order, and an update in random row order cost 14x one in table order
            # (3.9 s against 0.28 s for 658,000 of 3M profiles). Every caller passes
            # surviving profiles: events and merged facts go to the survivor.
            customers.update()
            .where(c.id == v.c.cid)
            .values(
                interaction_count=c.interaction_count + v.c.n,
                first_seen=sa.case(
                    (fresh, v.c.first_at), else_=sa.func.least(c.first_seen, v.c.first_at)
                ),
                last_seen=sa.case(
                    (fresh, v.c.last_at), else_=sa.func.greatest(c.last_seen, v.c.last_at)
                ),
            )
        )


# ---- resolving batches ----


@dataclass
class BatchResult:
    customer_ids: list[str | None]
    capped: list[Capped]
    merges: int


def resolve_batch(
    conn: Connection, events: Sequence[tuple[str, Sequence[Ident]]], received_at: dt.datetime
) -> BatchResult:
    """Resolve one batch of new events (all received at ``received_at``) against the store.

    ``events`` are ``(event_id, identifiers)``, resolved in event id order (the order a rebuild
    uses). Writes customers, identities and merges; the caller stores the events themselves.
    """
    resolver = Resolver()
    _seed(conn, resolver, {i for _, idents in events for i in idents})
    order = sorted(range(len(events)), key=lambda n: events[n][0])
    out: list[str | None] = [None] * len(events)
    for n in order:
        event_id, idents = events[n]
        out[n] = resolver.resolve(event_id, idents, received_at)
    _write_customers(conn, resolver)
    remap = resolver.remap()
    return BatchResult(
        [remap.get(c, c) if c else None for c in out], resolver.capped, len(resolver.merges)
    )


def _link(identifiers: dict[str, str]) -> tuple[str, list[Ident]]:
    """The normalised identifiers of one resolve request and the id of its link event."""
    idents: list[Ident] = []
    for kind, value in identifiers.items():
        name = normalise_kind(kind)
        norm = normalise(name, value) if value is not None else None
        if norm:
            idents.append((name, norm))
    if not idents:
        raise Invalid(
            f"none of the identifiers {sorted(identifiers)} is usable: give an email, phone, "
            "user_id, anonymous_id or an external id with a non-empty value"
        )
    idents.sort()
    digest = hashlib.sha256(json.dumps(idents).encode()).hexdigest()[:40]
    return f"resolve:{digest}", idents


def resolve(
    conn: Connection, identifiers: dict[str, str], seen_at: dt.datetime, event_id: str | None = None
) -> str:
    """The customer for ``identifiers`` (``{"email": ..., "crm_id": ...}``), created if new.

    The link is written to the interaction log as an ``identify`` event (so a rebuild sees it);
    its id derives from the identifiers, so resolving the same set twice adds nothing.
    """
    return resolve_many(conn, [(identifiers, seen_at)], event_id)[0]


def resolve_many(
    conn: Connection,
    requests: Sequence[tuple[dict[str, str], dt.datetime]],
    event_id: str | None = None,
) -> list[str]:
    """``resolve`` for many identifier sets at once: one lookup, one identity pass, one insert.

    Importers call this per file rather than ``resolve`` per row (the per-row form costs
    several statements a row).
    """
    links = [_link(identifiers) for identifiers, _ in requests]
    found: dict[str, str] = {}
    link_ids = sorted({link_id for link_id, _ in links})
    hits = lookup(conn, interactions, "event_id", link_ids, ["event_id", "customer_id"])
    found.update({r.event_id: r.customer_id for r in hits})
    fresh: dict[str, tuple[list[Ident], dt.datetime]] = {}
    for (link_id, idents), (_, seen_at) in zip(links, requests, strict=True):
        if link_id not in found:
            fresh.setdefault(link_id, (idents, seen_at))
    if fresh:
        now = utcnow()
        batch = [(link_id, idents) for link_id, (idents, _) in fresh.items()]
        result = resolve_batch(conn, batch, now)
        rows = []
        for (link_id, (idents, seen_at)), customer_id in zip(
            fresh.items(), result.customer_ids, strict=True
        ):
            assert customer_id is not None
            found[link_id] = customer_id
            core = dict(i for i in idents if i[0] in CORE_KINDS)
            rows.append({
                "event_id": link_id, "type": "identify", "name": None, "event_time": seen_at,
                "received_at": now, "customer_id": customer_id,
                "user_id": core.get("user_id"), "anonymous_id": core.get("anonymous_id"),
                "email": core.get("email"), "phone": core.get("phone"),
                "external_ids": {k: v for k, v in idents if k not in CORE_KINDS} or None,
                "touchpoint_key": None, "channel": None, "revenue": None,
                "properties": {"linked_by": event_id} if event_id else None, "context": None,
                "source": "resolve",
            })  # fmt: skip
        insert_rows(conn, interactions, rows, ignore=True)
        refresh_facts(conn, customers.c.id.in_(sorted(set(result.customer_ids) - {None})))
    ids = sorted(set(found.values()))
    merged = lookup(conn, customers, "id", ids, ["id", "merged_into"])
    current = {r.id: r.merged_into or r.id for r in merged}
    return [current.get(found[link_id], found[link_id]) for link_id, _ in links]


# ---- lookup ----


def current_id(conn: Connection, customer_id: str) -> str:
    """Follow ``merged_into`` to the surviving profile (merges keep it one hop deep)."""
    merged = conn.execute(
        sa.select(customers.c.merged_into).where(customers.c.id == customer_id)
    ).scalar()
    return merged or customer_id


def parse_identifier(identifier: str, default_region: str = "DE") -> Ident | None:
    """``kind:value`` or a bare email / phone as an identity key; None for a bare other value."""
    text = identifier.strip()
    kind, sep, value = text.partition(":")
    if sep and kind and all(c.isalnum() or c == "_" for c in kind) and not kind.isdigit():
        name = normalise_kind(kind)
        norm = normalise(name, value, default_region)
        return (name, norm) if norm else None
    if "@" in text:
        email = normalise("email", text)
        return ("email", email) if email else None
    if text.startswith("+") or text.replace(" ", "").replace("-", "").isdigit():
        phone = normalise("phone", text, default_region)
        return ("phone", phone) if phone else None
    return None


def reachable(conn: Connection, kind: str) -> list[str]:
    """Current customers (not merged away, not erased) with at least one identifier of
    ``kind`` (``email``, ``phone``), sorted by id."""
    query = (
        sa.select(customers.c.id)
        .distinct()
        .join(customer_identities, customer_identities.c.customer_id == customers.c.id)
        .where(
            customer_identities.c.kind == kind,
            customers.c.merged_into.is_(None),
            customers.c.erased_at.is_(None),
        )
        .order_by(customers.c.id)
    )
    return [str(i) for i in conn.execute(query).scalars()]


def trait_of(conn: Connection, name: str, ids: Iterable[str]) -> dict[str, str]:
    """Customer id -> the current value of trait ``name``, for the customers in ``ids``."""
    wanted = set(ids)
    rows = conn.execute(
        sa.select(customer_traits.c.customer_id, customer_traits.c.value).where(
            customer_traits.c.name == name, customer_traits.c.value.is_not(None)
        )
    )
    return {str(c): str(v) for c, v in rows if c in wanted}


def first_identifier(conn: Connection, kind: str) -> str | None:
    """The lowest identifier value of ``kind`` held by a current customer, or None."""
    return conn.execute(
        sa.select(sa.func.min(customer_identities.c.value))
        .join(customers, customers.c.id == customer_identities.c.customer_id)
        .where(
            customer_identities.c.kind == kind,
            customers.c.merged_into.is_(None),
            customers.c.erased_at.is_(None),
        )
    ).scalar()


def display_name(conn: Connection, customer_id: str) -> str:
    """How a person reads the customer: the ``name`` trait, else first and last name, else
    their email, else the id."""
    values = dict(traits(conn, customer_id))
    full = " ".join(v for v in (values.get("first_name"), values.get("last_name")) if v)
    if values.get("name") or full:
        return str(values.get("name") or full)
    emails = identifiers(conn, customer_id).get("email")
    return emails[0] if emails else customer_id


def find(conn: Connection, identifier: str) -> str | None:
    """The current customer id for an identifier (``email:ana@example.com``, ``crm_id:C1``,
    a bare email or phone, or a customer id), or None."""
    key = parse_identifier(identifier)
    if key is not None:
        owner = conn.execute(
            sa.select(customer_identities.c.customer_id).where(
                customer_identities.c.kind == key[0], customer_identities.c.value == key[1]
            )
        ).scalar()
        return current_id(conn, owner) if owner else None
    row = conn.execute(
        sa.select(customers.c.id, customers.c.merged_into).where(
            customers.c.id == identifier.strip()
        )
    ).first()
    if row is None:
        return None
    return row.merged_into or row.id


def identifiers(conn: Connection, customer_id: str) -> dict[str, list[str]]:
    """kind → values of a customer's identifiers."""
    out: dict[str, list[str]] = defaultdict(list)
    rows = conn.execute(
        sa.select(customer_identities.c.kind, customer_identities.c.value)
        .where(customer_identities.c.customer_id == customer_id)
        .order_by(customer_identities.c.kind, customer_identities.c.value)
    )
    for kind, value in rows:
        out[kind].append(value)
    return dict(out)


def traits(conn: Connection, customer_id: str) -> dict[str, str]:
    rows = conn.execute(
        sa.select(customer_traits.c.name, customer_traits.c.value)
        .where(customer_traits.c.customer_id == customer_id)
        .order_by(customer_traits.c.name)
    )
    return {name: value for name, value in rows}


def trait_times(conn: Connection, customer_id: str) -> dict[str, dt.datetime]:
    rows = conn.execute(
        sa.select(customer_traits.c.name, customer_traits.c.set_at).where(
            customer_traits.c.customer_id == customer_id
        )
    )
    return {name: _aware(at) for name, at in rows}


def get(conn: Connection, customer_id: str) -> dict[str, Any] | None:
    """The customer row (facts included), or None."""
    row = conn.execute(sa.select(customers).where(customers.c.id == customer_id)).mappings().first()
    return dict(row) if row else None


def display_names(conn: Connection, customer_ids: Sequence[str]) -> dict[str, str]:
    """``{customer id: name}`` from each customer's ``name`` trait (else ``email``), for the
    ids that have one; ids without either are left out (callers show a short id)."""
    ids = sorted({i for i in customer_ids if i})
    if not ids:
        return {}
    found: dict[str, dict[str, str]] = {}
    query = sa.select(
        customer_traits.c.customer_id, customer_traits.c.name, customer_traits.c.value
    ).where(customer_traits.c.name.in_(("name", "email")))
    for start in range(0, len(ids), 500):
        chunk = query.where(customer_traits.c.customer_id.in_(ids[start : start + 500]))
        for cid, trait, value in conn.execute(chunk):
            if value:
                found.setdefault(cid, {})[trait] = value
    return {cid: t.get("name") or t["email"] for cid, t in found.items()}


def merged_ids(conn: Connection, customer_id: str) -> list[str]:
    """The customer and every profile merged into it."""
    rows = conn.execute(sa.select(customers.c.id).where(customers.c.merged_into == customer_id))
    return [customer_id, *sorted(rows.scalars())]


def merges(conn: Connection, customer_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(customer_merges)
        .where(customer_merges.c.into_customer_id.in_(merged_ids(conn, customer_id)))
        .order_by(customer_merges.c.merged_at, customer_merges.c.id)
    ).mappings()
    return [dict(r) for r in rows]


# Columns the customer list sorts by (default: most recently seen first).
CUSTOMER_SORTS = ("last_seen", "first_seen", "interaction_count")


def list_customers(
    conn: Connection,
    limit: int = 50,
    offset: int = 0,
    sort: str | None = None,
    descending: bool = True,
) -> list[dict[str, Any]]:
    """Current (not merged, not erased) profiles, most recently seen first, or by ``sort``
    (one of ``CUSTOMER_SORTS``). Raises Invalid for another column."""
    order = [customers.c.last_seen.desc(), customers.c.id]
    if sort:
        if sort not in CUSTOMER_SORTS:
            raise Invalid(f"sort: use one of {', '.join(CUSTOMER_SORTS)}, not '{sort}'")
        column = customers.c[sort]
        order = [column.desc() if descending else column.asc(), customers.c.id]
    rows = conn.execute(
        sa.select(customers)
        .where(customers.c.merged_into.is_(None), customers.c.erased_at.is_(None))
        .order_by(*order)
        .limit(limit)
        .offset(offset)
    ).mappings()
    return [dict(r) for r in rows]


def count_customers(conn: Connection) -> int:
    """How many current profiles ``list_customers`` pages through."""
    query = sa.select(sa.func.count()).where(
        customers.c.merged_into.is_(None), customers.c.erased_at.is_(None)
    )
    return int(conn.execute(query.select_from(customers)).scalar_one())


# ---- rebuild ----


@dataclass
class RebuildSummary:
    events: int
    customers: int
    merges: int
    capped: int


def rebuild(conn: Connection) -> RebuildSummary:
    """Recompute every profile from the log, in the order ``(received_at, event_id)``.

    The events go through ``components.resolve_sets``, which reaches what ``Resolver`` reaches
    replaying them one by one (components over a cap are replayed exactly so).

    Profiles of erased customers stay erased; their anonymised events keep their customer id.
    """
    erased = sa.select(customers.c.id).where(customers.c.erased_at.is_not(None))
    live = sa.or_(interactions.c.customer_id.is_(None), interactions.c.customer_id.not_in(erased))
    cols = [
        interactions.c.event_id,
        interactions.c.received_at,
        interactions.c.type,
        interactions.c.event_time,
        interactions.c.properties,
        interactions.c.external_ids,
        *[interactions.c[k] for k in CORE_KINDS],
    ]
    query = sa.select(*cols).where(live)
    ordered = query.order_by(interactions.c.received_at, interactions.c.event_id)
    rows = [dict(r) for r in conn.execute(ordered).mappings()]
    conn.execute(customer_traits.delete().where(customer_traits.c.customer_id.not_in(erased)))
    conn.execute(customer_identities.delete())
    conn.execute(customer_merges.delete())
    conn.execute(customers.delete().where(customers.c.erased_at.is_(None)))
    from cxm.customers.components import resolve_sets

    extra = sorted({k for r in rows for k, v in (r["external_ids"] or {}).items() if v})
    columns = {
        k: pa.array([str(r[k]) if r[k] else None for r in rows], pa.string()) for k in CORE_KINDS
    }
    for kind in extra:
        values = [(r["external_ids"] or {}).get(kind) for r in rows]
        columns[kind] = pa.array([str(v) if v else None for v in values], pa.string())
    result = resolve_sets(
        pa.array([r["event_id"] for r in rows], pa.string()),
        columns,
        pa.array([_aware(r["received_at"]) for r in rows], pa.timestamp("us", tz="UTC")),
        identity_caps(),
    )
    _write_sets(conn, result)
    final = result.customer_ids.cast(pa.string()).to_pylist()
    made = result.created.num_rows - result.merged_into.num_rows
    merges = result.merge_table.num_rows
    update_rows(
        conn,
        interactions,
        "event_id",
        [{"event_id": r["event_id"], "customer_id": c} for r, c in zip(rows, final, strict=True)],
    )
    set_traits(
        conn,
        [
            (c, name, value, _aware(r["event_time"]))
            for r, c in zip(rows, final, strict=True)
            if c and r["type"] == "identify"
            for name, value in trait_values(r).items()
        ],
    )
    refresh_facts(conn)
    return RebuildSummary(len(rows), made, merges, len(result.capped))


# ---- resolving a large batch (file import) ----


def _stored(conn: Connection, keys: pa.Table) -> Stored:
    """What the store holds of a batch's identifiers ``keys`` (kind, value): their owners, and
    those owners' ranks and counts per kind (``_seed``'s state, as arrays).

    On DuckDB the identifiers are one registered Arrow table joined to the store's, and the
    owners' facts one grouped join; elsewhere both go by chunks of keys.
    """
    from cxm.customers.components import Stored

    plain = pa.table(
        {
            "i": pa.array(np.arange(keys.num_rows, dtype=np.int64)),
            "kind": keys.column("kind").cast(pa.string()),
            "value": keys.column("value").cast(pa.string()),
        }
    )
    ci, c = customer_identities, customers
    if is_duckdb(conn):
        raw = conn.connection.driver_connection
        view = f"_cxm_ids_{secrets.token_hex(4)}"
        raw.register(view, plain)  # type: ignore[union-attr]
        try:
            source = sa.table(view, sa.column("i"), sa.column("kind"), sa.column("value"))
            hits = _arrow(
                conn,
                sa.select(source.c.i, ci.c.customer_id).join(
                    source, sa.and_(ci.c.kind == source.c.kind, ci.c.value == source.c.value)
                ),
            )
        finally:
            raw.unregister(view)  # type: ignore[union-attr]
        rows = np.asarray(hits.column("i").to_numpy(zero_copy_only=False), dtype=np.int64)
        ids = pc.unique(hits.column("customer_id").combine_chunks())
        owners = np.asarray(pc.index_in(hits.column("customer_id"), value_set=ids).to_numpy())
        view = f"_cxm_owners_{secrets.token_hex(4)}"
        raw.register(view, pa.table({"id": ids}))  # type: ignore[union-attr]
        try:
            source = sa.table(view, sa.column("id"))
            facts = _arrow(
                conn,
                sa.select(
                    c.c.id,
                    sa.func.epoch_us(c.c.created_at).label("micros"),
                    ci.c.kind,
                    sa.func.count().label("n"),
                )
                .select_from(source)
                .join(c, c.c.id == source.c.id)
                .join(ci, ci.c.customer_id == source.c.id)
                .group_by(c.c.id, c.c.created_at, ci.c.kind),
            )
        finally:
            raw.unregister(view)  # type: ignore[union-attr]
        at = pc.index_in(facts.column("id"), value_set=ids).to_numpy(zero_copy_only=False)
        fact_owner = np.asarray(at, dtype=np.int64)
        fact_micros = np.asarray(facts.column("micros").to_numpy(zero_copy_only=False))
        fact_kind = facts.column("kind").to_pylist()
        fact_n = np.asarray(facts.column("n").to_numpy(zero_copy_only=False), dtype=np.int64)
    else:
        pairs = list(zip(plain["kind"].to_pylist(), plain["value"].to_pylist(), strict=True))
        position = {p: n for n, p in enumerate(pairs)}
        found: list[tuple[int, str]] = []
        for start in range(0, len(pairs), 2000):
            chunk = pairs[start : start + 2000]
            for kind, value, cid in conn.execute(
                sa.select(ci.c.kind, ci.c.value, ci.c.customer_id).where(
                    sa.tuple_(ci.c.kind, ci.c.value).in_(chunk)
                )
            ):
                found.append((position[(kind, value)], cid))
        rows = np.array([r for r, _ in found], dtype=np.int64)
        id_list = sorted({cid for _, cid in found})
        number = {cid: n for n, cid in enumerate(id_list)}
        ids = pa.array(id_list, pa.string())
        owners = np.array([number[cid] for _, cid in found], dtype=np.int64)
        got: list[tuple[str, int, str, int]] = []
        for start in range(0, len(id_list), 2000):
            some = id_list[start : start + 2000]
            for cid, created, kind, n in conn.execute(
                sa.select(c.c.id, c.c.created_at, ci.c.kind, sa.func.count())
                .join(ci, ci.c.customer_id == c.c.id)
                .where(c.c.id.in_(some))
                .group_by(c.c.id, c.c.created_at, ci.c.kind)
            ):
                got.append((cid, _epoch_us(created), kind, n))
        fact_owner = np.array([number[g[0]] for g in got], dtype=np.int64)
        fact_micros = np.array([g[1] for g in got], dtype=np.int64)
        fact_kind = [g[2] for g in got]
        fact_n = np.array([g[3] for g in got], dtype=np.int64)
    owner = np.full(keys.num_rows, -1, dtype=np.int64)
    owner[rows] = owners
    micros = np.zeros(len(ids), dtype=np.int64)
    micros[fact_owner] = fact_micros
    counts: dict[str, np.ndarray] = {}
    for kind in sorted(set(fact_kind)):
        mine = np.array([k == kind for k in fact_kind], dtype=bool)
        column = np.zeros(len(ids), dtype=np.int64)
        column[fact_owner[mine]] = fact_n[mine]
        counts[kind] = column
    return Stored(owner, ids.cast(pa.string()), micros, counts)


def _arrow(conn: Connection, query: sa.Select[Any]) -> pa.Table:
    """A parameterless DuckDB query's result as Arrow, fetched by the driver itself."""
    sql = str(query.compile(dialect=conn.dialect))
    raw = conn.connection.driver_connection
    return raw.sql(sql).to_arrow_table()  # type: ignore[union-attr]


def _epoch_us(value: dt.datetime) -> int:
    return (_aware(value) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def _write_sets(conn: Connection, result: SetResolution) -> None:
    """Write what ``resolve_sets`` decided: profiles, identifiers, merges, replayed parts."""
    naive = pa.timestamp("us")
    created = result.created
    if created.num_rows:
        # Each created profile's survivor when it merged away, null for survivors.
        ids = created.column("id").combine_chunks().cast(pa.string())
        losers = result.merged_into.column("id").combine_chunks().cast(pa.string())
        where = pc.index_in(ids, value_set=losers)
        merged = result.merged_into.column("merged_into").combine_chunks().cast(pa.string())
        merged = merged.take(where)
        alive = pc.is_null(merged)
        seen = pc.if_else(
            alive, created.column("created_at"), pa.scalar(None, created["created_at"].type)
        )
        insert_table(
            conn,
            customers,
            pa.table(
                {
                    "id": ids,
                    "created_at": created.column("created_at").cast(naive),
                    "first_seen": seen.cast(naive),
                    "last_seen": seen.cast(naive),
                    "interaction_count": pa.array(np.zeros(created.num_rows, dtype=np.int64)),
                    "merged_into": merged,
                }
            ),
        )
    found = result.identities
    if found.num_rows:
        insert_table(
            conn,
            customer_identities,
            pa.table(
                {
                    "kind": found.column("kind").cast(pa.string()),
                    "value": found.column("value"),
                    "customer_id": found.column("customer_id").cast(pa.string()),
                    "first_seen": found.column("first_seen").cast(naive),
                }
            ),
        )
    merges = result.merge_table
    if merges.num_rows:
        from cxm.customers.components import customer_ids_for

        events = merges.column("event_id").combine_chunks()
        losers = merges.column("from_id").combine_chunks()
        aware = merges.column("at").combine_chunks()
        insert_table(
            conn,
            customer_merges,
            pa.table(
                {
                    # The id ``_write_customers`` gives: sha256 of "event:loser", 32 hex.
                    "id": customer_ids_for(pc.binary_join_element_wise(events, losers, ":")),
                    "from_customer_id": losers,
                    "into_customer_id": merges.column("into_id").combine_chunks(),
                    "identifier_kind": merges.column("kind").combine_chunks(),
                    "identifier_value": merges.column("value").combine_chunks(),
                    "event_id": events,
                    "merged_at": aware.cast(pa.int64()).cast(naive),
                }
            ),
            ignore=True,
        )
    moved = result.stored_merged
    if moved.num_rows:
        losers = moved.column("id").to_pylist()
        _apply_remap(conn, dict(zip(losers, moved.column("merged_into").to_pylist(), strict=True)))


def resolve_columns(
    conn: Connection,
    event_ids: pa.Array,
    idents: dict[str, pa.Array],
    received_at: dt.datetime,
) -> pa.Array:
    """``resolve_batch`` for a large batch held as columns; the customer id of each event.

    ``idents`` maps each identifier kind to the events' normalised values (null where absent),
    core kinds first in ``CORE_KINDS`` order, then external kinds sorted (``event_idents``'
    order). Events resolve in event id order through ``components.resolve_sets``: connected
    components of the identifiers, one customer per component within the caps, and the
    components that exceed a cap or touch a stored identifier walked on integer codes with the
    stored profiles they touch (``_stored``), so the outcome equals ``resolve_batch``'s.
    """
    from cxm.customers.components import resolve_sets

    n = len(event_ids)
    order = pc.sort_indices(event_ids)
    ordered_ids = event_ids.take(order)
    ordered = {k: col.take(order) for k, col in idents.items()}
    stamp = received_at.astimezone(dt.UTC)
    at = pa.array(np.full(n, int(stamp.timestamp() * 1_000_000), dtype=np.int64)).cast(
        pa.timestamp("us", tz="UTC")
    )

    result = resolve_sets(
        ordered_ids, ordered, at, identity_caps(), lambda keys: _stored(conn, keys)
    )
    _write_sets(conn, result)
    # Back to input order.
    back = np.empty(n, dtype=np.int64)
    back[np.asarray(order)] = np.arange(n)
    return result.customer_ids.cast(pa.string()).take(pa.array(back))

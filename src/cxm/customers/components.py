"""Set-based identity resolution: the ``Resolver``'s outcome, computed on integer codes.

``Resolver.resolve`` walks events one at a time through dictionaries. For a file of a million
identifiers that costs seconds of Python. ``resolve_sets`` reaches exactly the same customers
(the same creating events, survivors, merge records and capped links) by working on columns:

1. identifiers are integer-coded kind by kind (Arrow dictionary encoding);
2. the connected components of the identifier graph (identifiers seen in one event are joined)
   come from ``scipy.sparse.csgraph.connected_components``;
3. a component whose identifiers of some kind outnumber that kind's cap, or that touches an
   identifier the store already owns, is walked event by event on integer codes
   (``replay.replay``, the only place a cap can bite), the stored profiles it touches among
   its customers (their ranks and counts read from the store in bulk: ``Stored``), so a later
   batch of a large file walks as the first did;
4. every other component ends as one customer: the creating event (none of its identifiers seen
   before) with the lowest rank ``(at, customer id)``. Python walks only the events whose known
   identifiers belong to two or more profiles created earlier, to write the merge records in
   the order ``Resolver`` writes them.

Inputs are in resolution order (``Resolver``'s: the caller sorts), one column per identifier
kind in ``event_idents`` order (core kinds, then external kinds sorted), null where absent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from cxm.customers.replay import Replayed, replay
from cxm.customers.service import DEFAULT_CAP, Capped

# (loser, survivor, identifier kind, identifier value, event id, at): ``Resolver.merges``.
Merge = tuple[str, str, str, str, str, dt.datetime]
# The same records as columns (``at``: timestamps in UTC), for bulk writes.
MERGE_SCHEMA = pa.schema(
    [
        ("from_id", pa.string()),
        ("into_id", pa.string()),
        ("kind", pa.string()),
        ("value", pa.string()),
        ("event_id", pa.string()),
        ("at", pa.timestamp("us", tz="UTC")),
    ]
)


def _merge_table(
    losers: pa.Array,
    into: pa.Array,
    kinds: pa.Array,
    values: pa.Array,
    event_ids: pa.Array,
    at: pa.Array,
) -> pa.Table:
    columns = [losers, into, kinds, values, event_ids, at]
    return pa.table(
        [c.cast(f.type) for c, f in zip(columns, MERGE_SCHEMA, strict=True)], schema=MERGE_SCHEMA
    )


def _no_merged() -> pa.Table:
    return pa.table({"id": pa.array([], pa.string()), "merged_into": pa.array([], pa.string())})


@dataclass
class Stored:
    """What the store already holds of a batch's identifiers.

    ``owner``: per identifier (the rows of the ``(kind, value)`` table given to the caller),
    the index into ``ids`` of the stored customer that owns it, -1 where none does.
    ``ids``: the stored customers owning any of them (surviving profiles), with ``micros``,
    their ``created_at`` as UTC microseconds (the rank ``Resolver`` gives a stored profile), and
    ``counts``: per identifier kind, each one's number of stored identifiers of that kind (every
    kind they hold, not only the batch's: a merge must respect every cap).
    """

    owner: np.ndarray
    ids: pa.Array
    micros: np.ndarray
    counts: dict[str, np.ndarray]


@dataclass
class SetResolution:
    """What ``resolve_sets`` decided.

    ``customer_ids``: per event (input order), the surviving customer, null without identifiers
    (dictionary-encoded when no component was replayed: one string per customer, not per event;
    ``.cast(pa.string())`` gives plain strings).
    ``created`` (id, created_at), ``identities`` (kind, value, customer_id, first_seen: the
    surviving owner) and ``merged_into`` (id, merged_into) are Arrow tables for bulk writes;
    ``merges`` and ``capped`` are ``Resolver``'s records (``merge_table``: the merges as
    columns, ``MERGE_SCHEMA``; the lists are built on first read). The components walked on integer
    codes (over a cap, or touching the store) are in all of the above; ``replayed_events``
    counts their events. ``stored_merged`` (id, merged_into): the stored profiles this batch
    merged away, each with its survivor (stored or created here), for the caller to re-point
    what names them.
    """

    customer_ids: pa.Array
    created: pa.Table
    identities: pa.Table
    merged_into: pa.Table
    merge_table: pa.Table = field(default_factory=MERGE_SCHEMA.empty_table)
    replayed_events: int = 0
    stored_merged: pa.Table = field(default_factory=_no_merged)
    # The walked components' capped links, named on first read (an import never reads them).
    _capped_walk: Callable[[], list[Capped]] | None = None
    _capped: list[Capped] = field(default_factory=list)

    _merges: list[Merge] | None = None

    @property
    def merges(self) -> list[Merge]:
        """``Resolver.merges``, as tuples."""
        if self._merges is None:
            t = self.merge_table
            columns = [t.column(f.name).to_pylist() for f in MERGE_SCHEMA]
            self._merges = list(zip(*columns, strict=True))
        return self._merges

    @property
    def capped(self) -> list[Capped]:
        """``Resolver.capped``: the walked components' links."""
        if self._capped_walk is not None:
            self._capped[:0] = self._capped_walk()
            self._capped_walk = None
        return self._capped


def customer_ids_for(event_ids: pa.Array) -> pa.Array:
    """``customer_id_for`` of each event id, computed by the engine (SHA-256, first 32 hex)."""
    frame = pa.table({"e": event_ids.cast(pa.string())})
    # A private in-memory database: safe from any thread, nothing shared.
    with duckdb.connect() as engine:
        engine.register("frame", frame)
        out = engine.sql("SELECT left(sha256(e), 32) AS h FROM frame").fetch_arrow_table()
    return out.column("h").combine_chunks()


def _ranks(ids: pa.Array, micros: np.ndarray) -> np.ndarray:
    """The rank of each profile by ``(at, customer id)``, given its customer id and ``at``."""
    # Every id is 32 ASCII hex characters: read them as bytes and sort in numpy.
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32)[
        ids.offset : ids.offset + len(ids) + 1
    ]
    start = int(offsets[0])
    text = bytes(ids.buffers()[2])[start : start + 32 * len(ids)]
    # Hex digits as bytes, read as two big-endian 64-bit halves: they order as the text does.
    halves = np.frombuffer(bytes.fromhex(text.decode("ascii")), dtype=">u8").reshape(-1, 2).T
    order = np.lexsort((halves[1], halves[0], micros))
    rank = np.empty(len(ids), dtype=np.int64)
    rank[order] = np.arange(len(ids))
    return rank


def _micros(at: pa.Array) -> np.ndarray:
    stamps = pc.cast(at, pa.timestamp("us", tz="UTC")).cast(pa.int64())
    return np.asarray(stamps.to_numpy(zero_copy_only=False), dtype=np.int64)


def resolve_sets(
    event_ids: pa.Array,
    idents: dict[str, pa.Array],
    at: pa.Array,
    caps: dict[str, int],
    stored: Callable[[pa.Table], Stored] | None = None,
) -> SetResolution:
    """Resolve events, in the given order, to customers; the outcome of ``Resolver.resolve``
    called on each event in turn with ``Resolver(caps=caps)``.

    ``event_ids``: n strings in resolution order. ``idents``: kind → n normalised values (null
    where the event has none of that kind), in ``event_idents`` kind order. ``at``: n aware
    timestamps (the ``at`` passed to ``resolve``). ``stored``: given the identifiers as a table
    ``(kind, value)``, what the store holds of them (``Stored``): the outcome is then that of a
    ``Resolver`` seeded from the store (``service._seed``), and the components touching a
    stored identifier are walked on integer codes with the stored profiles among the walk's
    customers.
    Cost: O(identifiers) in numpy and scipy, plus Python on integers for each event of a
    component over a cap or touching the store, and for merges.
    """
    n = len(event_ids)
    kinds = list(idents)
    edge_event, edge_ident, ident_kind, values = [], [], [], []
    offset = 0
    for k, column in enumerate(kinds):
        col = idents[column]
        if col.null_count == len(col):
            continue
        encoded = pc.dictionary_encode(col, null_encoding="mask")
        codes = encoded.indices
        present = np.flatnonzero(np.asarray(codes.is_valid().to_numpy(zero_copy_only=False)))
        edge_event.append(present)
        idx = np.asarray(codes.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
        edge_ident.append(idx[present] + offset)
        ident_kind.append(np.full(len(encoded.dictionary), k, dtype=np.int64))
        values.append(encoded.dictionary.cast(pa.string()))
        offset += len(encoded.dictionary)
    m = offset
    micros = _micros(at)
    stamp_type = pa.timestamp("us", tz="UTC")
    empty = SetResolution(
        pa.nulls(n, pa.string()),
        pa.table({"id": pa.array([], pa.string()), "created_at": pa.array([], stamp_type)}),
        pa.table(
            {
                "kind": pa.array([], pa.string()),
                "value": pa.array([], pa.string()),
                "customer_id": pa.array([], pa.string()),
                "first_seen": pa.array([], stamp_type),
            }
        ),
        pa.table({"id": pa.array([], pa.string()), "merged_into": pa.array([], pa.string())}),
    )
    if m == 0:
        return empty
    # Edges (event, identifier) ordered by event, then kind: each event's identifiers in order.
    ev = np.concatenate(edge_event)
    idn = np.concatenate(edge_ident)
    sort = np.argsort(ev, kind="stable")
    ev, idn = ev[sort], idn[sort]
    kind_of = np.concatenate(ident_kind)
    value_of = pa.chunked_array(values).combine_chunks()
    names = pa.array(kinds, pa.string())
    kind_column = pa.DictionaryArray.from_arrays(pa.array(kind_of.astype(np.int32)), names)
    keys = pa.table({"kind": kind_column, "value": value_of})
    # Each event's edges start where its event first appears in ``ev``.
    starts = np.flatnonzero(np.r_[True, ev[1:] != ev[:-1]])
    lead = np.repeat(idn[starts], np.diff(np.r_[starts, len(ev)]))
    # Identifier components: every identifier joined to its event's first identifier.
    graph = coo_matrix((np.ones(len(idn), dtype=np.int8), (lead, idn)), shape=(m, m)).tocsr()
    comps, label = connected_components(graph, directed=False)
    # Where each identifier first appears, and which events create a profile.
    first = np.full(m, n, dtype=np.int64)
    np.minimum.at(first, idn, ev)
    new_edge = first[idn] == ev
    has_ident = np.zeros(n, dtype=bool)
    has_ident[ev] = True
    known_events = np.zeros(n, dtype=bool)
    known_events[ev[~new_edge]] = True
    creating = has_ident & ~known_events
    # Components that ``Resolver`` must replay: over a cap, or touching a stored identifier.
    limit = np.array([caps.get(k, DEFAULT_CAP) for k in kinds], dtype=np.int64)
    per_kind = np.bincount(label * len(kinds) + kind_of, minlength=comps * len(kinds))
    over: np.ndarray = np.asarray(
        (per_kind.reshape(comps, len(kinds)) > limit[None, :]).any(axis=1)
    )
    touched = np.zeros(comps, dtype=bool)
    held = stored(keys) if stored is not None else None
    if held is not None and not len(held.ids):
        held = None
    if held is not None:
        touched[label[held.owner >= 0]] = True
    hard = over | touched
    event_label = np.full(n, -1, dtype=np.int64)
    event_label[ev[starts]] = label[idn[starts]]
    easy_event = has_ident & ~hard[np.maximum(event_label, 0)]
    # Each identifier's creating event, through a static forest: a creating event's
    # identifiers hang from it; a new identifier of any other event hangs from that event's
    # first known identifier, whose profile the event joins.
    first_known = np.full(n, -1, dtype=np.int64)
    known_pos = np.flatnonzero(~new_edge)
    # Reverse assignment so the first known edge of each event wins.
    first_known[ev[known_pos[::-1]]] = idn[known_pos[::-1]]
    ptr = np.arange(m, dtype=np.int64)
    base = np.full(m, -1, dtype=np.int64)
    new_ev, new_id = ev[new_edge], idn[new_edge]
    made = creating[new_ev]
    base[new_id[made]] = new_ev[made]
    ptr[new_id[~made]] = first_known[new_ev[~made]]
    while True:
        nxt = ptr[ptr]
        if np.array_equal(nxt, ptr):
            break
        ptr = nxt
    base = base[ptr]
    # Rank of every creating event's profile: (at, customer id), as one integer.
    creators = np.flatnonzero(creating)
    # The customer id each event would make: for the creating events, and for every event of
    # a component walked below (over a cap, touching nothing stored), in one pass.
    walked_events = np.flatnonzero(has_ident & hard[np.maximum(event_label, 0)])
    named = np.zeros(n, dtype=bool)
    named[creators] = True
    named[walked_events] = True
    named_at = np.cumsum(named) - 1  # position among the named events
    named_ids = customer_ids_for(event_ids.take(pa.array(np.flatnonzero(named))))
    ids_of_creators = named_ids.take(pa.array(named_at[creators]))
    ranked = _ranks(ids_of_creators, micros[creators])
    rank_of = np.empty(n, dtype=np.int64)
    rank_of[creators] = ranked
    # The survivor of each easy component: its creating event of lowest rank.
    best = np.full(comps, np.iinfo(np.int64).max, dtype=np.int64)
    easy_creators = creators[easy_event[creators]]
    np.minimum.at(best, event_label[easy_creators], rank_of[easy_creators])
    by_rank = np.empty(len(creators), dtype=np.int64)
    by_rank[rank_of[creators]] = creators
    # Merges: events whose known identifiers hang from two or more creating events.
    known_edges = ~new_edge & easy_event[ev]
    lo = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    hi = np.full(n, -1, dtype=np.int64)
    np.minimum.at(lo, ev[known_edges], base[idn[known_edges]])
    np.maximum.at(hi, ev[known_edges], base[idn[known_edges]])
    joining = np.flatnonzero((hi >= 0) & (lo != hi))
    merge_tables = [MERGE_SCHEMA.empty_table()]
    kind_names = pa.array(kinds, pa.string())
    at_ts = pc.cast(at, stamp_type)
    creator_index = np.full(n, -1, dtype=np.int64)
    creator_index[creators] = np.arange(len(creators))
    if len(joining):
        parent: dict[int, int] = {}

        edge_start = np.searchsorted(ev, joining)
        edge_stop = np.searchsorted(ev, joining, side="right")
        # Only the joining events' known edges, as Python lists (no numpy scalars in the loop).
        span = np.zeros(len(ev) + 1, dtype=np.int64)
        np.add.at(span, edge_start, 1)
        np.add.at(span, edge_stop, -1)
        inside = (np.cumsum(span[:-1]) > 0) & ~new_edge
        edge_of = np.flatnonzero(inside)
        owner_of = ev[edge_of].tolist()
        hang_of = base[idn[edge_of]].tolist()
        ident_of = idn[edge_of].tolist()
        ranks = rank_of.tolist()
        pending: list[tuple[int, int, int, int]] = []  # loser, target, identifier, event
        j, total = 0, len(edge_of)
        while j < total:
            e = owner_of[j]
            seen: dict[int, int] = {}
            while j < total and owner_of[j] == e:
                c = root = hang_of[j]
                while root in parent:
                    root = parent[root]
                while c != root:  # path compression
                    parent[c], c = root, parent[c]
                seen.setdefault(root, ident_of[j])
                j += 1
            if len(seen) < 2:
                continue
            order = sorted(seen, key=ranks.__getitem__)
            target = order[0]
            for loser in order[1:]:
                parent[loser] = target
                pending.append((loser, target, seen[loser], e))
        if pending:
            records = np.array(pending, dtype=np.int64).reshape(len(pending), 4)
            where = pa.array(records[:, 3])
            merge_tables.append(
                _merge_table(
                    ids_of_creators.take(pa.array(creator_index[records[:, 0]])),
                    ids_of_creators.take(pa.array(creator_index[records[:, 1]])),
                    kind_names.take(pa.array(kind_of[records[:, 2]])),
                    value_of.take(pa.array(records[:, 2])),
                    event_ids.take(where),
                    at_ts.take(where),
                )
            )
    # Components over a cap or touching the store: walked event by event on integer codes.
    fresh = creating
    if held is not None:
        # An event holding a stored identifier joins that profile: it creates nothing.
        stored_edge = held.owner[idn] >= 0
        fresh = creating.copy()
        fresh[ev[stored_edge]] = False
    walked = _replay_capped(
        walked_events,
        named_ids.take(pa.array(named_at[walked_events])),
        event_ids,
        micros,
        ev,
        idn,
        kind_of,
        [int(c) for c in limit],
        fresh,
        held,
        kinds,
        caps,
    )
    # Outputs for the easy components and the walked ones, on one dictionary of customer ids.
    survivor_event = np.full(comps, -1, dtype=np.int64)
    has_best = best < len(creators)
    survivor_event[has_best] = by_rank[best[has_best]]
    cid_by_creator = pa.array(ids_of_creators)
    names = cid_by_creator
    base_w = len(creators)
    if walked is not None:
        names = pa.concat_arrays([cid_by_creator.cast(pa.string()), walked.ids])
    easy_events = np.flatnonzero(easy_event)
    out_index = np.full(n, -1, dtype=np.int64)
    out_index[easy_events] = creator_index[survivor_event[event_label[easy_events]]]
    created_ids = [
        cid_by_creator
        if len(easy_creators) == len(creators)
        else cid_by_creator.take(pa.array(creator_index[easy_creators]))
    ]
    created_at = [at_ts.take(pa.array(easy_creators))]
    losers = easy_creators[survivor_event[event_label[easy_creators]] != easy_creators]
    loser_ids = [cid_by_creator.take(pa.array(creator_index[losers]))]
    into_ids = [cid_by_creator.take(pa.array(creator_index[survivor_event[event_label[losers]]]))]
    easy_idents = np.flatnonzero(~hard[label])
    whole = len(easy_idents) == m
    ident_index = [creator_index[survivor_event[label[easy_idents]]]]
    ident_rows = [easy_idents]
    ident_first = [at_ts.take(pa.array(first[easy_idents]))]
    capped_walk: Callable[[], list[Capped]] | None = None
    stored_merged = _no_merged()
    if walked is not None:
        w = walked.walk
        out_index[walked.events] = base_w + w.final[w.target]
        created_ids.append(walked.ids.take(pa.array(w.created)))
        created_at.append(at_ts.take(pa.array(walked.events[w.created])))
        gone = w.created[w.final[w.created] != w.created]
        loser_ids.append(walked.ids.take(pa.array(gone)))
        into_ids.append(walked.ids.take(pa.array(w.final[gone])))
        codes, by, when_ = w.owned
        ident_index.append(base_w + w.final[by])
        ident_rows.append(codes)
        ident_first.append(at_ts.take(pa.array(walked.events[when_])))
        merge_tables.append(walked.merges(kind_names, kind_of, value_of, at_ts))
        capped_walk = partial(walked.capped, kinds, kind_of, value_of)
        whole = False
        h = len(walked.events)
        local = np.arange(h, len(w.final), dtype=np.int64)
        moved = local[w.final[local] != local]
        stored_merged = pa.table(
            {
                "id": walked.ids.take(pa.array(moved)),
                "merged_into": walked.ids.take(pa.array(w.final[moved])),
            }
        )
    created = pa.table(
        {"id": pa.chunked_array(created_ids), "created_at": pa.chunked_array(created_at)}
    )
    merged_into = pa.table(
        {"id": pa.chunked_array(loser_ids), "merged_into": pa.chunked_array(into_ids)}
    )
    rows = np.concatenate(ident_rows)
    identities = pa.table(
        {
            "kind": kind_column if whole else kind_column.take(pa.array(rows)),
            "value": value_of if whole else value_of.take(pa.array(rows)),
            "customer_id": pa.DictionaryArray.from_arrays(
                pa.array(np.concatenate(ident_index).astype(np.int32)), names
            ),
            "first_seen": pa.chunked_array(ident_first),
        }
    )
    result = SetResolution(
        pa.nulls(n, pa.string()),
        created,
        identities,
        merged_into,
        pa.concat_tables(merge_tables),
        _capped_walk=capped_walk,
    )
    if walked is not None:
        result.replayed_events = len(walked.events)
        result.stored_merged = stored_merged
    # The survivors once, and an index per event: no string is copied per event.
    index = pa.array(out_index.astype(np.int32), mask=out_index < 0)
    customer_ids: pa.Array = pa.DictionaryArray.from_arrays(index, names)
    result.customer_ids = customer_ids
    return result


@dataclass
class _Walked:
    """``replay``'s outcome for the capped components, with the strings it needs."""

    events: np.ndarray  # input positions of the walked events, ascending
    ids: pa.Array  # the customer id each walked event would create
    walk: Replayed
    event_ids: pa.Array  # every input event's id

    def merges(
        self, kind_names: pa.Array, kind_of: np.ndarray, value_of: pa.Array, at_ts: pa.Array
    ) -> pa.Table:
        """The walk's merge records as a ``MERGE_SCHEMA`` table."""
        loser, target, ident, event = self.walk.merges
        where = pa.array(self.events[event])
        return _merge_table(
            self.ids.take(pa.array(loser)),
            self.ids.take(pa.array(target)),
            kind_names.take(pa.array(kind_of[ident])),
            value_of.take(pa.array(ident)),
            self.event_ids.take(where),
            at_ts.take(where),
        )

    def capped(self, kinds: list[str], kind_of: np.ndarray, value_of: pa.Array) -> list[Capped]:
        event, ident, customer, over = self.walk.capped
        if not len(event):
            return []
        event_ids = self.event_ids.take(pa.array(self.events[event])).to_pylist()
        values = value_of.take(pa.array(ident)).to_pylist()
        owners = self.ids.take(pa.array(customer)).to_pylist()
        return [
            Capped(event_ids[i], kinds[k], values[i], owners[i], f"cap on {kinds[o]}")
            for i, (k, o) in enumerate(zip(kind_of[ident].tolist(), over.tolist(), strict=True))
        ]


def _replay_capped(
    events: np.ndarray,
    ids: pa.Array,
    event_ids: pa.Array,
    micros: np.ndarray,
    ev: np.ndarray,
    idn: np.ndarray,
    kind_of: np.ndarray,
    caps: list[int],
    fresh: np.ndarray,
    held: Stored | None = None,
    kinds: list[str] | None = None,
    all_caps: dict[str, int] | None = None,
) -> _Walked | None:
    """Walk the events of components over a cap or touching the store (``events``, ascending;
    ``ids``: the customer id each would make) through ``replay``, with the stored profiles of
    ``held`` (owners of some identifier codes, with their ranks and counts) after the events
    among the walk's customers."""
    if not len(events):
        return None
    keep = np.zeros(len(micros), dtype=bool)
    keep[events] = True
    chosen = keep[ev]
    walked_ev, walked_idn = ev[chosen], idn[chosen]
    starts = np.r_[np.searchsorted(walked_ev, events), len(walked_ev)]
    if held is None:
        rank = _ranks(ids, micros[events])
        walk = replay(starts, walked_idn, kind_of, rank, caps, fresh[events])
        return _Walked(events, ids.cast(pa.string()), walk, event_ids)
    # The stored profiles' kinds beyond the batch's count towards their caps too.
    names = list(kinds or [])
    names += sorted(k for k in held.counts if k not in names)
    every_cap = [*caps, *(int((all_caps or {}).get(k, DEFAULT_CAP)) for k in names[len(caps) :])]
    h, s = len(events), len(held.ids)
    everyone = pa.concat_arrays([ids.cast(pa.string()), held.ids.cast(pa.string())])
    rank = _ranks_of(everyone, np.concatenate([micros[events], held.micros]))
    counts = np.zeros((s, len(names)), dtype=np.int64)
    for k, name in enumerate(names):
        if name in held.counts:
            counts[:, k] = held.counts[name]
    owner = np.where(held.owner >= 0, h + held.owner, -1)
    walk = replay(starts, walked_idn, kind_of, rank, every_cap, fresh[events], owner, counts)
    return _Walked(events, everyone, walk, event_ids)


def _ranks_of(ids: pa.Array, micros: np.ndarray) -> np.ndarray:
    """``_ranks`` for ids of any form (stored profiles' ids are not read as hex)."""
    order = pc.sort_indices(
        pa.table({"at": pa.array(micros, pa.int64()), "id": ids}),
        sort_keys=[("at", "ascending"), ("id", "ascending")],
    )
    rank = np.empty(len(ids), dtype=np.int64)
    rank[np.asarray(order)] = np.arange(len(ids))
    return rank

"""Set-based resolution reaches exactly what ``Resolver`` reaches, event by event."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from cxm.customers.components import Stored, customer_ids_for, resolve_sets
from cxm.customers.service import Capped, Ident, Resolver, customer_id_for

KINDS = ("user_id", "email", "anonymous_id", "crm_id")
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

events_strategy = st.lists(
    st.tuples(
        st.lists(
            st.tuples(st.sampled_from(KINDS), st.integers(0, 7)),
            min_size=0,
            max_size=4,
        ),
        st.integers(0, 3),
    ),
    min_size=1,
    max_size=40,
)
caps_strategy = st.fixed_dictionaries({k: st.integers(1, 6) for k in KINDS[:3]})


def _columns(
    events: list[list[Ident]],
) -> tuple[pa.Array, dict[str, pa.Array]]:
    ids = pa.array([f"ev{n:04d}" for n in range(len(events))])
    columns = {}
    for kind in KINDS:
        columns[kind] = pa.array([dict(e).get(kind) for e in events], pa.string())
    return ids, columns


def _normal(raw: list[tuple[str, int]]) -> list[Ident]:
    """One value per kind, in ``event_idents`` order (the columns' order)."""
    by_kind = {k: f"{k[0]}{v}" for k, v in raw}
    return [(k, by_kind[k]) for k in KINDS if k in by_kind]


@settings(max_examples=300, deadline=None)
@given(events_strategy, caps_strategy)
def test_set_resolution_equals_the_resolver(
    drawn: list[tuple[list[tuple[str, int]], int]], caps: dict[str, int]
) -> None:
    events = [_normal(raw) for raw, _ in drawn]
    times = [T0 + dt.timedelta(minutes=m) for _, m in drawn]
    ids, columns = _columns(events)
    old = Resolver(caps=dict(caps))
    assigned = [old.resolve(ids[n].as_py(), e, times[n]) for n, e in enumerate(events)]
    remap = old.remap()
    expected = [remap.get(c, c) if c else None for c in assigned]

    new = resolve_sets(ids, columns, pa.array(times), dict(caps))
    assert new.customer_ids.to_pylist() == expected

    created = dict(
        zip(
            new.created.column("id").to_pylist(),
            new.created.column("created_at").to_pylist(),
            strict=True,
        )
    )
    idents = {(r["kind"], r["value"]): r["customer_id"] for r in new.identities.to_pylist()}
    merged = dict(
        zip(
            new.merged_into.column("id").to_pylist(),
            new.merged_into.column("merged_into").to_pylist(),
            strict=True,
        )
    )
    merges = set(new.merges)
    capped = set(new.capped)
    assert created == old.created
    assert merged == remap
    assert idents == {(k, v): remap.get(c, c) for k, v, c, _ in old.new_idents}
    assert merges == set(old.merges)
    assert capped == set(old.capped)


def test_customer_ids_match_the_python_digest() -> None:
    ids = [f"event-{n}" for n in range(50)] + ["ünïcode"]
    assert customer_ids_for(pa.array(ids)).to_pylist() == [customer_id_for(i) for i in ids]


def test_events_without_identifiers_get_no_customer() -> None:
    ids = pa.array(["a", "b", "c"])
    columns = {"email": pa.array([None, "x@example.com", None], pa.string())}
    out = resolve_sets(ids, columns, pa.array([T0] * 3), {})
    assert out.customer_ids.to_pylist() == [None, customer_id_for("b"), None]
    assert np.array_equal(
        out.created.column("id").to_numpy(zero_copy_only=False), [customer_id_for("b")]
    )


def test_a_file_linked_through_shared_devices_matches_the_resolver_past_the_caps() -> None:
    # People and devices interleave so nearly the whole file is one component over the caps:
    # it is walked on integer codes, and must still end exactly where ``Resolver`` ends.
    n = 3000
    events = []
    for i in range(n):
        person = i % (n // 4 + 1)
        found = [("user_id", f"p{person}")] if i % 3 else []
        found += [("email", f"p{person}@example.com")] if i % 2 else []
        found.append(("anonymous_id", f"a{i % (n // 3 + 1)}"))
        events.append(found)
    times = [T0 + dt.timedelta(seconds=i // 7) for i in range(n)]
    ids = pa.array([f"ev{i:05d}" for i in range(n)])
    columns = {k: pa.array([dict(e).get(k) for e in events], pa.string()) for k in KINDS}
    caps = {"user_id": 5, "email": 5, "anonymous_id": 10}
    old = Resolver(caps=dict(caps))
    assigned = [old.resolve(ids[i].as_py(), e, times[i]) for i, e in enumerate(events)]
    remap = old.remap()

    new = resolve_sets(ids, columns, pa.array(times), dict(caps))

    assert new.replayed_events > n // 2
    assert old.capped and old.merges  # the caps bite and profiles merge
    assert new.customer_ids.cast(pa.string()).to_pylist() == [remap.get(c, c) for c in assigned]
    assert set(new.capped) == set(old.capped)
    assert set(new.merges) == set(old.merges)
    assert dict(zip(*new.merged_into.to_pydict().values(), strict=True)) == remap
    idents = {(r["kind"], r["value"]): r["customer_id"] for r in new.identities.to_pylist()}
    assert idents == {(k, v): remap.get(c, c) for k, v, c, _ in old.new_idents}


def _stored_from(old: Resolver) -> tuple[dict[Ident, str], Callable[[pa.Table], Stored]]:
    """What a store written by ``old`` holds: each identifier's surviving owner, and the
    ``Stored`` view of a batch's identifiers (``service._stored``'s answer)."""
    owner = {ident: old.root(c) for ident, c in old.owner.items()}
    roots = sorted(set(owner.values()))
    number = {c: n for n, c in enumerate(roots)}
    micros = [
        (old.rank[c][0] - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
        for c in roots
    ]
    counts = {k: np.array([old.counts[c][k] for c in roots], dtype=np.int64) for k in KINDS}

    def stored(keys: pa.Table) -> Stored:
        pairs = zip(
            keys.column("kind").cast(pa.string()).to_pylist(),
            keys.column("value").to_pylist(),
            strict=True,
        )
        held = [number[owner[p]] if p in owner else -1 for p in pairs]
        return Stored(
            np.array(held, dtype=np.int64),
            pa.array(roots, pa.string()),
            np.array(micros, dtype=np.int64),
            counts,
        )

    return owner, stored


@settings(max_examples=300, deadline=None)
@given(events_strategy, events_strategy, caps_strategy)
def test_resolution_against_stored_profiles_equals_the_resolver(
    first: list[tuple[list[tuple[str, int]], int]],
    second: list[tuple[list[tuple[str, int]], int]],
    caps: dict[str, int],
) -> None:
    # A first batch resolved and stored, then a second batch resolved against the store on
    # integer codes: the same outcome as one ``Resolver`` going on with the second batch.
    old = Resolver(caps=dict(caps))
    for n, (raw, minute) in enumerate(first):
        old.resolve(f"a{n:04d}", _normal(raw), T0 + dt.timedelta(minutes=minute))
    before = old.remap()
    marks = len(old.merges), len(old.new_idents), len(old.capped)
    made_before = set(old.created)
    _, stored = _stored_from(old)
    events = [_normal(raw) for raw, _ in second]
    times = [T0 + dt.timedelta(minutes=m) for _, m in second]
    ids = pa.array([f"b{n:04d}" for n in range(len(events))])
    assigned = [old.resolve(ids[n].as_py(), e, times[n]) for n, e in enumerate(events)]
    remap = old.remap()
    _, columns = _columns(events)

    new = resolve_sets(ids, columns, pa.array(times), dict(caps), stored)

    assert new.customer_ids.cast(pa.string()).to_pylist() == [
        remap.get(c, c) if c else None for c in assigned
    ]
    created = dict(zip(*new.created.to_pydict().values(), strict=True))
    assert created == {c: at for c, at in old.created.items() if c not in made_before}
    merged = dict(zip(*new.merged_into.to_pydict().values(), strict=True))
    merged.update(zip(*new.stored_merged.to_pydict().values(), strict=True))
    assert merged == {c: r for c, r in remap.items() if c not in before}
    idents = {(r["kind"], r["value"]): r["customer_id"] for r in new.identities.to_pylist()}
    expected = {(k, v): remap.get(c, c) for k, v, c, _ in old.new_idents[marks[1] :]}
    assert idents == expected
    assert set(new.merges) == set(old.merges[marks[0] :])

    # The cap named for a stored loser follows the kinds' order, not the order it gained them.
    def links(found: list[Capped]) -> set[tuple[str, str, str, str]]:
        return {(c.event_id, c.kind, c.value, c.customer_id) for c in found}

    assert links(new.capped) == links(old.capped[marks[2] :])


def test_warm_loads_the_compiled_walk_before_a_resolution_needs_it() -> None:
    from cxm.customers import replay

    replay.warm()
    assert replay._walk.signatures  # compiled (or loaded from the cache) for int64 arrays

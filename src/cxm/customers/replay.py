"""``Resolver``'s walk over integer codes: the exact replay of components a cap splits.

Where a cap bites, the outcome depends on the order of events, so the components that exceed
a cap are walked event by event. ``Resolver`` does that on strings, tuples and ``Counter``
objects; ``replay`` takes the same decisions on integers (identifier codes, customers numbered
by their creating event, ranks precomputed as one integer each), held in numpy arrays and
walked by a function compiled with Numba (``_walk``), and returns its records as arrays that the
caller turns into strings once per record, not per step.

The decisions are ``Resolver.resolve``'s, step for step: an event's identifiers already owned
name their profiles' roots; the oldest root (lowest rank) is the target and each other root
joins it unless, for a kind the loser holds, the two together would exceed that kind's cap
(the first such kind in the order the loser first gained its kinds names the cap); with no
owned identifier the event creates a profile; each new identifier goes to the target unless
the target already holds its kind's cap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np


@dataclass
class Replayed:
    """The replay's records, each as arrays over positions in ``events`` (``local`` numbers).

    ``target``: per event, the customer it joined at the time (local number of the creating
    event); ``final``: per local number (the events, then any stored profiles), the surviving
    customer in the end (itself for a survivor; meaningful for the creating events and the
    stored profiles).
    ``created``: local numbers of the events that created a profile, in order.
    ``owned``: identifiers given a profile: code, owning customer at the time, event.
    ``merges``: loser, target (both at the time), identifier code, event.
    ``capped``: event, identifier code, customer (at the time), code of the kind whose cap held.
    """

    target: np.ndarray
    final: np.ndarray
    created: np.ndarray
    owned: tuple[np.ndarray, np.ndarray, np.ndarray]
    merges: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    capped: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def replay(
    starts: np.ndarray,
    idents: np.ndarray,
    kind_of: np.ndarray,
    rank: np.ndarray,
    caps: list[int],
    fresh: np.ndarray,
    stored_owner: np.ndarray | None = None,
    stored_counts: np.ndarray | None = None,
) -> Replayed:
    """Walk ``h`` events in order as ``Resolver.resolve`` would, on integer codes.

    ``starts``: h + 1 offsets into ``idents``; event ``j``'s identifier codes are
    ``idents[starts[j]:starts[j + 1]]``, distinct, in kind-code order (``event_idents``
    order). ``kind_of``: the kind code of every identifier code. ``rank``: per event, the rank
    of the profile it would create (``(at, customer id)`` order, distinct). ``caps``: the cap of
    each kind code. ``fresh``: per event, whether none of its identifiers appeared in an earlier
    event: such an event creates a profile holding all of them whatever came before, so it is
    applied up front, in numpy, and skipped by the walk.
    ``stored_owner`` and ``stored_counts``: profiles that exist before the walk (stored ones),
    numbered ``h`` to ``h + s - 1`` after the events: per identifier code, the number of its
    stored owner (-1 for none), and each stored profile's count of every kind (an ``s x
    len(caps)`` array); ``rank`` then has ``h + s`` entries, the stored profiles' last.
    Cost: O(identifiers of the other events + merges x kinds) compiled steps (``_walk``:
    union-find with path halving, as in Tarjan and van Leeuwen 1984). The first call in a
    process loads the compiled walk from Numba's cache beside this file (under a second), or
    compiles it (a few seconds) when the cache is missing or older than the source.
    """
    h = len(starts) - 1
    s = 0 if stored_counts is None else len(stored_counts)
    width = len(caps)
    m = len(kind_of)
    sizes = np.diff(starts)
    event_of_edge = np.repeat(np.arange(h, dtype=np.int64), sizes)
    fresh_edge = fresh[event_of_edge]
    owner = (
        np.full(m, -1, dtype=np.int64)
        if stored_owner is None
        else np.array(stored_owner, dtype=np.int64)  # a copy: the walk updates it
    )
    owner[idents[fresh_edge]] = event_of_edge[fresh_edge]
    # Customer j's count of kind k at j * width + k.
    counts = np.zeros((h + s) * width, dtype=np.int64)
    counts[event_of_edge[fresh_edge] * width + kind_of[idents[fresh_edge]]] = 1
    if s:
        counts[h * width :] = np.asarray(stored_counts, dtype=np.int64).ravel()
    parent, target_of, created, owned, merges, capped = _walk(
        np.flatnonzero(~fresh).astype(np.int64),
        np.ascontiguousarray(starts, dtype=np.int64),
        np.ascontiguousarray(idents, dtype=np.int64),
        np.ascontiguousarray(kind_of, dtype=np.int64),
        np.ascontiguousarray(rank, dtype=np.int64),
        np.array(caps, dtype=np.int64).reshape(width),
        owner,
        counts,
        int(sizes.max()) if h else 0,
    )
    # Every customer's final root, by pointer jumping over the whole forest at once.
    up = parent
    while True:
        nxt = up[up]
        if np.array_equal(nxt, up):
            break
        up = nxt
    fresh_events = np.flatnonzero(fresh)
    return Replayed(
        target_of,
        up,
        np.sort(np.concatenate([fresh_events, created])),
        (
            np.concatenate([idents[fresh_edge], owned[0]]),
            np.concatenate([event_of_edge[fresh_edge], owned[1]]),
            np.concatenate([event_of_edge[fresh_edge], owned[2]]),
        ),
        (merges[0], merges[1], merges[2], merges[3]),
        (capped[0], capped[1], capped[2], capped[3]),
    )


@numba.njit(cache=True, nogil=True)
def _kinds(c, width, counts, order, ordered, out):  # type: ignore[no-untyped-def]
    """Customer ``c``'s kinds in the order it first gained them, into ``out``; returns how
    many. Kept explicitly (``order``, ``ordered[c]`` of them) once that differs from the
    ascending order of kind codes with a count (a profile's kinds at creation)."""
    n = ordered[c]
    if n >= 0:
        for i in range(n):
            out[i] = order[c * width + i]
        return n
    n = 0
    for k in range(width):
        if counts[c * width + k]:
            out[n] = k
            n += 1
    return n


@numba.njit(cache=True, nogil=True)
def _walk(  # type: ignore[no-untyped-def]
    walked, starts, idents, kind_of, ranks, caps, owner, counts, widest
):
    """``replay``'s walk over the events ``walked`` (ascending), updating ``owner`` and
    ``counts`` in place; returns the union-find parents, each event's target, the created
    events, and the records (owned: 3 rows; merges and capped: 4 rows), as ``Replayed``
    describes them."""
    n = len(ranks)
    width = len(caps)
    h = len(starts) - 1
    edges = len(idents)
    parent = np.arange(n)
    order = np.empty(n * width, np.int64)
    ordered = np.full(n, -1, np.int64)
    target_of = np.arange(h)
    created = np.empty(h, np.int64)
    owned = np.empty((3, edges), np.int64)
    merges = np.empty((4, edges), np.int64)
    capped = np.empty((4, edges), np.int64)
    n_created = n_owned = n_merges = n_capped = 0
    known = np.empty(widest, np.int64)  # the roots the event's owned identifiers name
    via = np.empty(widest, np.int64)  # the first identifier naming each
    new = np.empty(widest, np.int64)
    theirs = np.empty(width, np.int64)
    mine = np.empty(width, np.int64)
    for j in walked:
        n_known = n_new = 0
        for e in range(starts[j], starts[j + 1]):
            x = idents[e]
            o = owner[x]
            if o < 0:
                new[n_new] = x
                n_new += 1
                continue
            while parent[o] != o:
                up = parent[parent[o]]
                parent[o] = up
                o = up
            seen = False
            for q in range(n_known):
                if known[q] == o:
                    seen = True
                    break
            if not seen:
                known[n_known] = o
                via[n_known] = x
                n_known += 1
        if n_known == 0:
            target = j
            created[n_created] = j
            n_created += 1
        else:
            # Oldest root first (ranks are distinct): an insertion sort of a few roots.
            for a in range(1, n_known):
                root, first = known[a], via[a]
                b = a - 1
                while b >= 0 and ranks[known[b]] > ranks[root]:
                    known[b + 1] = known[b]
                    via[b + 1] = via[b]
                    b -= 1
                known[b + 1] = root
                via[b + 1] = first
            target = known[0]
            at = target * width
            for q in range(1, n_known):
                loser = known[q]
                lo = loser * width
                n_theirs = _kinds(loser, width, counts, order, ordered, theirs)
                over = -1
                for i in range(n_theirs):
                    k = theirs[i]
                    if counts[at + k] + counts[lo + k] > caps[k]:
                        over = k
                        break
                if over >= 0:
                    capped[0, n_capped] = j
                    capped[1, n_capped] = via[q]
                    capped[2, n_capped] = loser
                    capped[3, n_capped] = over
                    n_capped += 1
                    continue
                parent[loser] = target
                n_mine = -1
                for i in range(n_theirs):
                    k = theirs[i]
                    if not counts[at + k]:
                        if n_mine < 0:
                            n_mine = _kinds(target, width, counts, order, ordered, mine)
                        mine[n_mine] = k
                        n_mine += 1
                if n_mine >= 0:
                    for i in range(n_mine):
                        order[at + i] = mine[i]
                    ordered[target] = n_mine
                for i in range(n_theirs):
                    k = theirs[i]
                    counts[at + k] += counts[lo + k]
                ordered[loser] = -1
                merges[0, n_merges] = loser
                merges[1, n_merges] = target
                merges[2, n_merges] = via[q]
                merges[3, n_merges] = j
                n_merges += 1
        at = target * width
        for i in range(n_new):
            x = new[i]
            k = kind_of[x]
            held = counts[at + k]
            if held >= caps[k]:
                capped[0, n_capped] = j
                capped[1, n_capped] = x
                capped[2, n_capped] = target
                capped[3, n_capped] = k
                n_capped += 1
                continue
            if not held and target != j:
                n_mine = _kinds(target, width, counts, order, ordered, mine)
                for c in range(n_mine):
                    order[at + c] = mine[c]
                order[at + n_mine] = k
                ordered[target] = n_mine + 1
            owner[x] = target
            counts[at + k] = held + 1
            owned[0, n_owned] = x
            owned[1, n_owned] = target
            owned[2, n_owned] = j
            n_owned += 1
        target_of[j] = target
    return (
        parent,
        target_of,
        created[:n_created].copy(),
        owned[:, :n_owned].copy(),
        merges[:, :n_merges].copy(),
        capped[:, :n_capped].copy(),
    )


def warm() -> None:
    """Load the compiled walk now (from Numba's cache, or compile it: about two seconds), so
    that the first resolution needing it does not wait: a server calls this as it starts."""
    replay(
        np.array([0, 1, 2]),
        np.array([0, 0]),
        np.array([0]),
        np.array([0, 1]),
        [1],
        np.array([True, False]),
    )

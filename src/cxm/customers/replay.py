"""``Resolver``'s walk over integer codes: the exact replay of components a cap splits.

Where a cap bites, the outcome depends on the order of events, so the components that exceed
a cap are walked event by event. ``Resolver`` does that on strings, tuples and ``Counter``
objects; ``replay`` takes the same decisions on integers (identifier codes, customers numbered
by their creating event, ranks precomputed as one integer each), held in flat lists, and returns
its records as numpy arrays that the caller turns into strings once per record, not per step.

The decisions are ``Resolver.resolve``'s, step for step: an event's identifiers already owned
name their profiles' roots; the oldest root (lowest rank) is the target and each other root
joins it unless, for a kind the loser holds, the two together would exceed that kind's cap
(the first such kind in the order the loser first gained its kinds names the cap); with no
owned identifier the event creates a profile; each new identifier goes to the target unless
the target already holds its kind's cap.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def _ints(values: list[int]) -> np.ndarray:
    return np.array(values, dtype=np.int64)


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
    Cost: O(identifiers of the other events + merges x kinds) steps of Python on integers.
    """
    h = len(starts) - 1
    s = 0 if stored_counts is None else len(stored_counts)
    width = len(caps)
    m = len(kind_of)
    sizes = np.diff(starts)
    event_of_edge = np.repeat(np.arange(h, dtype=np.int64), sizes)
    fresh_edge = fresh[event_of_edge]
    owner_np = np.full(m, -1, dtype=np.int64) if stored_owner is None else stored_owner.copy()
    owner_np[idents[fresh_edge]] = event_of_edge[fresh_edge]
    counts_np = np.zeros((h + s) * width, dtype=np.int64)
    counts_np[event_of_edge[fresh_edge] * width + kind_of[idents[fresh_edge]]] = 1
    if s:
        counts_np[h * width :] = np.asarray(stored_counts, dtype=np.int64).ravel()
    owner = owner_np.tolist()
    counts = counts_np.tolist()  # customer j's count of kind k at j * width + k
    kinds = kind_of.tolist()
    edge_list = idents.tolist()
    ranks = rank.tolist()
    bounds = starts.tolist()
    parent = list(range(h + s))
    # Kinds in the order a profile first gained them, kept once that differs from the
    # ascending order of kind codes (a profile's kinds at creation).
    order: dict[int, list[int]] = {}
    target_of = list(range(h))
    created: list[int] = []
    own_ident: list[int] = []
    own_by: list[int] = []
    own_event: list[int] = []
    merges: list[tuple[int, int, int, int]] = []
    capped: list[tuple[int, int, int, int]] = []
    every = range(width)
    for j in np.flatnonzero(~fresh).tolist():
        known: dict[int, int] = {}
        new: list[int] = []
        for x in edge_list[bounds[j] : bounds[j + 1]]:
            o = owner[x]
            if o < 0:
                new.append(x)
                continue
            while parent[o] != o:
                parent[o] = o = parent[parent[o]]
            if o not in known:
                known[o] = x
        if not known:
            target = j
            created.append(j)
        elif len(known) == 1:
            (target,) = known
        else:
            if len(known) == 2:  # the usual merge: two roots, no sort needed
                a, b = known
                ranked = [a, b] if ranks[a] < ranks[b] else [b, a]
            else:
                ranked = sorted(known, key=ranks.__getitem__)
            target = ranked[0]
            at = target * width
            for loser in ranked[1:]:
                lo = loser * width
                theirs = order.get(loser) or [k for k in every if counts[lo + k]]
                over = -1
                for k in theirs:
                    if counts[at + k] + counts[lo + k] > caps[k]:
                        over = k
                        break
                if over >= 0:
                    capped.append((j, known[loser], loser, over))
                    continue
                parent[loser] = target
                gained = [k for k in theirs if not counts[at + k]]
                if gained:
                    mine = order.get(target) or [k for k in every if counts[at + k]]
                    order[target] = mine + gained
                for k in theirs:
                    counts[at + k] += counts[lo + k]
                order.pop(loser, None)
                merges.append((loser, target, known[loser], j))
        at = target * width
        for x in new:
            k = kinds[x]
            held = counts[at + k]
            if held >= caps[k]:
                capped.append((j, x, target, k))
                continue
            if not held and target != j:
                order[target] = (order.get(target) or [c for c in every if counts[at + c]]) + [k]
            owner[x] = target
            counts[at + k] = held + 1
            own_ident.append(x)
            own_by.append(target)
            own_event.append(j)
        target_of[j] = target
    # Every customer's final root, by pointer jumping over the whole forest at once.
    up = np.array(parent, dtype=np.int64)
    while True:
        nxt = up[up]
        if np.array_equal(nxt, up):
            break
        up = nxt

    def columns(rows: list[tuple[int, int, int, int]]) -> tuple[np.ndarray, ...]:
        table = np.array(rows, dtype=np.int64).reshape(len(rows), 4)
        return tuple(table[:, i] for i in range(4))

    m0, m1, m2, m3 = columns(merges)
    c0, c1, c2, c3 = columns(capped)
    fresh_events = np.flatnonzero(fresh)
    return Replayed(
        np.array(target_of, dtype=np.int64),
        up,
        np.sort(np.concatenate([fresh_events, _ints(created)])),
        (
            np.concatenate([idents[fresh_edge], _ints(own_ident)]),
            np.concatenate([event_of_edge[fresh_edge], _ints(own_by)]),
            np.concatenate([event_of_edge[fresh_edge], _ints(own_event)]),
        ),
        (m0, m1, m2, m3),
        (c0, c1, c2, c3),
    )

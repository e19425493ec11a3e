"""Customer facts kept by ingest match the log, and duplicates found by the key are answered."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.customers.tables import customers
from cxm.interactions.groupcommit import GroupCommitter
from cxm.interactions.service import ingest
from cxm.interactions.tables import interactions
from cxm.store import as_utc, utcnow


def _facts(engine: Engine) -> dict[str, tuple[int, Any, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                customers.c.id,
                customers.c.interaction_count,
                customers.c.first_seen,
                customers.c.last_seen,
            ).where(customers.c.merged_into.is_(None))
        ).all()
    return {r.id: (r.interaction_count, as_utc(r.first_seen), as_utc(r.last_seen)) for r in rows}


def _from_log(engine: Engine) -> dict[str, tuple[int, Any, Any]]:
    """The same facts counted from the log in Python (an independent computation)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(interactions.c.customer_id, interactions.c.event_time)).all()
    out: dict[str, tuple[int, Any, Any]] = {}
    for cid, at in rows:
        if cid is None:
            continue
        at = as_utc(at)
        n, first, last = out.get(cid, (0, at, at))
        out[cid] = (n + 1, min(first, at), max(last, at))
    return out


def _iso(t: dt.datetime) -> str:
    return t.isoformat()


def test_facts_after_batches_with_merges_and_future_times_match_the_log(engine: Engine) -> None:
    now = utcnow()
    past, later = now - dt.timedelta(days=30), now + dt.timedelta(hours=20)
    batches: list[list[dict[str, Any]]] = [
        [  # new profiles, one with an event time after its arrival
            {"event_id": "a1", "name": "visit", "user_id": "u1", "timestamp": _iso(past)},
            {"event_id": "a2", "name": "visit", "user_id": "u1", "timestamp": _iso(later)},
            {"event_id": "b1", "name": "visit", "email": "b@example.com"},
            {"event_id": "c1", "name": "visit", "anonymous_id": "anon-c"},
            {"event_id": "n1", "name": "visit"},  # no identifier: no customer
        ],
        [  # returning profiles, and a link that merges two stored profiles
            {"event_id": "a3", "name": "buy", "user_id": "u1", "timestamp": _iso(past)},
            {
                "event_id": "bc",
                "type": "identify",
                "email": "b@example.com",
                "anonymous_id": "anon-c",
                "traits": {"plan": "pro"},
            },
            {"event_id": "d1", "name": "visit", "user_id": "u4", "timestamp": _iso(later)},
        ],
        [  # a new profile merged into a stored one within the same batch
            {"event_id": "e1", "name": "visit", "anonymous_id": "anon-e"},
            {"event_id": "e2", "type": "identify", "anonymous_id": "anon-e", "user_id": "u4"},
            {"event_id": "a1", "name": "visit", "user_id": "u1"},  # a duplicate
        ],
    ]
    for events in batches:
        with engine.begin() as conn:
            ingest(conn, events, "api")
    facts, counted = _facts(engine), _from_log(engine)
    assert facts == counted
    assert sorted(n for n, _, _ in facts.values()) == [3, 3, 3]


def test_group_commit_answers_stored_ids_as_duplicates_and_writes_the_rest(
    engine: Engine,
) -> None:
    committer = GroupCommitter(engine)
    first = committer.submit([{"event_id": "x1", "name": "visit", "user_id": "u1"}], "api")
    assert [r.status for r in first.result(60)] == ["stored"]
    again = committer.submit(
        [
            {"event_id": "x2", "name": "visit", "user_id": "u2"},
            {"event_id": "x1", "name": "visit", "user_id": "u9"},
            {"event_id": "x3", "name": "visit", "user_id": "u1"},
        ],
        "api",
    )
    assert [r.status for r in again.result(60)] == ["stored", "duplicate", "stored"]
    with engine.connect() as conn:
        held = conn.execute(
            sa.select(interactions.c.event_id, interactions.c.user_id).order_by("event_id")
        ).all()
    assert [tuple(r) for r in held] == [("x1", "u1"), ("x2", "u2"), ("x3", "u1")]
    # The refused first attempt left nothing behind: no profile for u9, facts match the log.
    assert _facts(engine) == _from_log(engine)
    assert len(_facts(engine)) == 2

"""The dashboards' rollup gives the plain query's figures, through every kind of write."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ibis.backends import BaseBackend
from sqlalchemy.engine import Engine

from cxm.metrics import compute, rollup
from cxm.metrics.definitions import Metric, load
from cxm.org.tables import touchpoints
from cxm.store.analytics import analytics
from cxm.surveys.tables import responses
from tests.metrics import factories as f

DAY0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
UTC = dt.UTC
# (metric, by, start, end, filters): company-wide questions the dashboards ask.
QUESTIONS: list[tuple[str, list[str], dt.datetime | None, dt.datetime | None, dict[str, str]]] = [
    ("nps", ["department", "month"], None, None, {}),
    ("csat", ["touchpoint", "week"], None, None, {}),
    ("ces", ["survey", "day"], None, None, {}),
    ("csat_mean", [], dt.datetime(2025, 1, 10, tzinfo=UTC), dt.datetime(2025, 2, 20, tzinfo=UTC),
     {}),
    ("ces_agree", ["channel", "team", "quarter"], None, dt.datetime(2025, 3, 1, tzinfo=UTC),
     {"department": "service"}),
]  # fmt: skip
_ids = itertools.count()


def _metrics() -> dict[str, Metric]:
    """The shipped definitions with a minimum sample of one, so small stores have numbers."""
    return {k: dataclasses.replace(m, min_sample=1) for k, m in load().items()}


METRICS = _metrics()


def _both(backend: BaseBackend, q: tuple[Any, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    name, by, start, end, filters = q
    assert rollup.applies(backend, METRICS[name], by, start, end, filters)
    kw: dict[str, Any] = {"by": by, "start": start, "end": end, "filters": filters,
                          "metrics": METRICS}  # fmt: skip
    fast = compute(backend, name, **kw)
    with rollup.plain():
        slow = compute(backend, name, **kw)
    return fast, slow


def _assert_equal(backend: BaseBackend) -> None:
    for q in QUESTIONS:
        fast, slow = _both(backend, q)
        pd.testing.assert_frame_equal(fast, slow, check_exact=False, rtol=1e-9, atol=1e-9)


answer = st.fixed_dictionaries({
    "day": st.integers(0, 75),
    "second": st.integers(0, 86399),
    "touchpoint": st.sampled_from(["delivery", "support_chat", "support_phone", None, "gone"]),
    "survey": st.sampled_from(["relationship", "transactional"]),
    "channel": st.sampled_from(["web", "chat", None]),
    "kind": st.sampled_from(["customer", "customer", "employee"]),
    "completed": st.booleans(),
    "nps": st.one_of(st.none(), st.integers(0, 10)),
    "csat": st.one_of(st.none(), st.integers(1, 5)),
    "ces": st.one_of(st.none(), st.integers(1, 7)),
})  # fmt: skip
write = st.one_of(
    st.tuples(st.just("new"), st.lists(answer, min_size=1, max_size=8)),
    st.tuples(st.just("late"), st.lists(answer, min_size=1, max_size=8)),
    st.tuples(st.just("reanswer"), st.integers(0, 10_000), answer),
    st.tuples(st.just("complete"), st.integers(0, 10_000)),
    st.tuples(st.just("delete"), st.integers(0, 10_000)),
)


def _row(a: dict[str, Any], when: dt.datetime) -> dict[str, Any]:
    return {
        "id": f"r{next(_ids)}", "survey_key": a["survey"], "survey_version": 1,
        "respondent_kind": a["kind"], "touchpoint_key": a["touchpoint"], "channel": a["channel"],
        "started_at": when, "submitted_at": when if a["completed"] else None,
        "completed": a["completed"], "nps": a["nps"], "csat": a["csat"], "ces": a["ces"],
        "source": "web",
    }  # fmt: skip


def _at(a: dict[str, Any]) -> dt.datetime:
    return DAY0 + dt.timedelta(days=a["day"], seconds=a["second"])


class _Store:
    """Writes as cxm does: new answers now, late imports in the past, a re-answered or
    completed response with a new submission time, and (by other means) deletions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.now = DAY0 + dt.timedelta(days=80)

    def tick(self) -> dt.datetime:
        self.now += dt.timedelta(hours=7)
        return self.now

    def ids(self, conn: sa.Connection) -> list[str]:
        return list(conn.execute(sa.select(responses.c.id).order_by(responses.c.id)).scalars())

    def apply(self, step: tuple[Any, ...]) -> None:
        kind = step[0]
        with self.engine.begin() as conn:
            if kind in ("new", "late"):
                rows = [_row(a, self.tick() if kind == "new" else _at(a)) for a in step[1]]
                conn.execute(responses.insert(), rows)
                return
            ids = self.ids(conn)
            if not ids:
                return
            rid = ids[step[1] % len(ids)]
            where = responses.c.id == rid
            if kind == "reanswer":
                a = step[2]
                conn.execute(responses.update().where(where).values(
                    nps=a["nps"], csat=a["csat"], ces=a["ces"], completed=True,
                    submitted_at=self.tick()))  # fmt: skip
            elif kind == "complete":
                conn.execute(responses.update().where(where, ~responses.c.completed).values(
                    completed=True, submitted_at=self.tick()))  # fmt: skip
            else:
                conn.execute(responses.delete().where(where))


@pytest.fixture
def store(
    duckdb_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Engine, BaseBackend]]:
    # The rollup serves stores of any size here (by default, only large ones).
    monkeypatch.setattr(rollup, "MIN_RESPONSES", 0)
    with duckdb_engine.begin() as conn:
        f.org(conn)
    backend = analytics(duckdb_engine)
    yield duckdb_engine, backend
    backend.disconnect()


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=st.lists(answer, max_size=40), steps=st.lists(write, min_size=1, max_size=4))
def test_rollup_figures_equal_the_plain_query_through_every_kind_of_write(
    store: tuple[Engine, BaseBackend], first: list[dict[str, Any]],
    steps: list[tuple[Any, ...]],
) -> None:  # fmt: skip
    engine, backend = store
    with engine.begin() as conn:
        conn.execute(responses.delete())
        if first:
            conn.execute(responses.insert(), [_row(a, _at(a)) for a in first])
    # Emptying the store and filling it again is an edit by other means (it may keep the
    # count and the latest submission): the rollup is rebuilt, as it documents.
    rollup.rebuild(backend)
    writer = _Store(engine)
    _assert_equal(backend)
    for step in steps:
        writer.apply(step)
        _assert_equal(backend)


def test_a_touchpoint_moved_to_another_department_moves_its_history(
    store: tuple[Engine, BaseBackend],
) -> None:
    engine, backend = store
    with engine.begin() as conn:
        f.nps_responses(conn, "delivery", [10, 10, 3], when=dt.datetime(2025, 3, 1, tzinfo=UTC))
    q = ("nps", ["department"], None, None, {})
    fast, _ = _both(backend, q)
    assert fast.set_index("department").loc["operations", "n"] == 3
    with engine.begin() as conn:
        conn.execute(touchpoints.update().where(touchpoints.c.key == "delivery")
                     .values(department_key="service"))  # fmt: skip
    fast, slow = _both(backend, q)
    pd.testing.assert_frame_equal(fast, slow)
    assert fast.set_index("department").loc["service", "n"] == 3


def test_an_edit_made_outside_cxm_is_seen_after_a_rebuild(
    store: tuple[Engine, BaseBackend],
) -> None:
    engine, backend = store
    when = dt.datetime(2025, 3, 1, tzinfo=UTC)
    with engine.begin() as conn:
        f.nps_responses(conn, "delivery", [10, 10, 3], when=when)
        f.nps_responses(conn, "delivery", [9], when=when + dt.timedelta(days=3))
    q = ("nps", ["department"], None, None, {})
    _both(backend, q)
    with engine.begin() as conn:  # a score rewritten in place, not through a new answer
        first = conn.execute(sa.select(sa.func.min(responses.c.id))).scalar()
        conn.execute(responses.update().where(responses.c.id == first).values(nps=0))
    rollup.rebuild(backend)
    fast, slow = _both(backend, q)
    pd.testing.assert_frame_equal(fast, slow)


@pytest.mark.parametrize(
    ("name", "by", "start", "filters"),
    [
        ("nps", ["trait:plan"], None, {}),  # a customer's trait
        ("nps", ["month"], dt.datetime(2025, 3, 1, 12, tzinfo=UTC), {}),  # part of a day
        ("nps", ["month"], None, {"segment": "business"}),  # filtered by a trait
        ("response_rate", ["month"], None, {}),  # invitations, not responses
        ("completion_rate", ["month"], None, {}),  # timed by the start of a response
    ],
)
def test_questions_the_rollup_cannot_answer_go_to_the_plain_query(
    store: tuple[Engine, BaseBackend], name: str, by: list[str], start: dt.datetime | None,
    filters: dict[str, str],
) -> None:  # fmt: skip
    _, backend = store
    assert not rollup.applies(backend, METRICS[name], by, start, None, filters)


def test_a_one_off_reader_uses_the_rollup_only_once_the_process_holds_it(
    store: tuple[Engine, BaseBackend],
) -> None:
    engine, backend = store
    with engine.begin() as conn:
        f.nps_responses(conn, "delivery", [10, 3], when=dt.datetime(2025, 3, 1, tzinfo=UTC))
    nps, by = METRICS["nps"], ["department"]
    with rollup.held_only():
        assert not rollup.applies(backend, nps, by, None, None, {})
    compute(engine, "nps", by, metrics=METRICS)  # a connection of its own: builds nothing
    with rollup.held_only():
        assert not rollup.applies(backend, nps, by, None, None, {})
    compute(backend, "nps", by, metrics=METRICS)  # a kept connection builds it
    with rollup.held_only():
        assert rollup.applies(backend, nps, by, None, None, {})
    fast = compute(engine, "nps", by, metrics=METRICS)
    with rollup.plain():
        slow = compute(engine, "nps", by, metrics=METRICS)
    pd.testing.assert_frame_equal(fast, slow)


def test_a_small_store_is_answered_by_the_plain_query(duckdb_engine: Engine) -> None:
    with duckdb_engine.begin() as conn:
        f.org(conn)
        f.nps_responses(conn, "delivery", [10, 3], when=dt.datetime(2025, 3, 1, tzinfo=UTC))
    backend = analytics(duckdb_engine)
    try:
        assert rollup.MIN_RESPONSES > 2
        assert not rollup.applies(backend, METRICS["nps"], ["department"], None, None, {})
    finally:
        backend.disconnect()

"""The month rollup (DuckDB) gives the same journeys as reading the whole log, whatever happens.

Each check compares the rollup's answer with the plain query over the log (the one PostgreSQL
runs) for date ranges that cut months, fit inside one, align with months or cover it all;
then again after new rows arrive, a merge re-points the log, an erasure deletes rows and
an admin changes who owns a touchpoint.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.customers.tables import customer_traits, customers
from cxm.interactions.tables import interactions
from cxm.journeys import analytics as ja
from cxm.org import service as org
from cxm.org.tables import touchpoints
from cxm.store import analytics
from cxm.surveys.tables import responses
from cxm.yamldoc import parse

ORG = """\
departments:
  - {key: d1, name: One}
  - {key: d2, name: Two}
  - {key: d3, name: Three}
touchpoints:
  - {key: t_a, name: A, channel: web, stage: use, owner: {department: d1}}
  - {key: t_b, name: B, channel: web, stage: use, owner: {department: d2}}
  - {key: t_c, name: C, channel: web, stage: use, owner: {department: d3}}
"""
U = dt.UTC
T0 = dt.datetime(2026, 1, 1, tzinfo=U)
RECEIVED = dt.datetime(2026, 7, 1, tzinfo=U)
RANGES = [
    (None, None),
    (dt.datetime(2026, 2, 10, tzinfo=U), dt.datetime(2026, 5, 20, tzinfo=U)),  # cuts months
    (dt.datetime(2026, 3, 3, tzinfo=U), dt.datetime(2026, 3, 19, tzinfo=U)),  # inside one
    (dt.datetime(2026, 2, 1, tzinfo=U), dt.datetime(2026, 4, 1, tzinfo=U)),  # whole months
    (dt.datetime(2026, 4, 15, tzinfo=U), None),
    (None, dt.datetime(2026, 3, 1, 12, tzinfo=U)),
]


def _events(rng: random.Random, n: int, start: int, received: dt.datetime) -> list[dict[str, Any]]:
    rows = []
    for i in range(start, start + n):
        at = T0 + dt.timedelta(minutes=rng.randrange(0, 180 * 24 * 60))
        rows.append({
            "event_id": f"e{i}", "type": "track", "name": "visit", "event_time": at,
            "received_at": received, "customer_id": f"c{rng.randrange(25)}",
            "touchpoint_key": rng.choice(["t_a", "t_b", "t_c", "t_x", None]), "source": "api",
        })  # fmt: skip
    return rows


@pytest.fixture
def store(duckdb_engine: Engine) -> Engine:
    rng = random.Random(11)
    with duckdb_engine.begin() as conn:
        org.seed_defaults(conn)
        org.apply_org(conn, parse(ORG))
        conn.execute(touchpoints.insert().values(key="t_x", name="X", channel="web",
                                                 stage="use", created_at=T0))  # fmt: skip
        conn.execute(customers.insert(), [
            {"id": f"c{i}", "created_at": T0, "first_seen": T0, "last_seen": T0,
             "interaction_count": 0} for i in range(25)
        ])  # fmt: skip
        conn.execute(customer_traits.insert(), [
            {"customer_id": f"c{i}", "name": "segment", "value": "gold" if i % 3 else "silver",
             "set_at": T0} for i in range(25)
        ])  # fmt: skip
        conn.execute(interactions.insert(), _events(rng, 600, 0, RECEIVED))
        rows = []
        for i in range(120):
            at = T0 + dt.timedelta(minutes=rng.randrange(0, 180 * 24 * 60))
            score = rng.randrange(11)
            category = "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"
            rows.append({
                "id": f"r{i}", "survey_key": "nps", "survey_version": 1,
                "respondent_kind": "customer", "customer_id": f"c{rng.randrange(30)}",
                "completed": True, "started_at": at, "submitted_at": at, "nps": score,
                "nps_category": category, "source": "import",
            })  # fmt: skip
        conn.execute(responses.insert(), rows)
    ja._rollups.clear()
    return duckdb_engine


def _both(engine: Engine) -> None:
    """The rollup's journeys equal the plain query's for every range and department."""
    con = analytics(engine)
    try:
        tp = con.table("touchpoints")
        owned = tp.filter(tp.department_key.notnull()).select("key", "department_key")
        owners = {r["key"]: r["department_key"] for r in owned.to_pyarrow().to_pylist()}
        departments = sorted(set(owners.values()))
        for (start, end), segment in itertools.product(RANGES, (None, "silver")):
            lo, hi = ja._naive(start), ja._naive(end)
            plain = ja._journey_map(
                ja._grouped(con, owners, departments, lo, hi, segment).to_pandas(), departments
            )
            rolled = ja._journey_map(
                ja._rollup_frame(con, owners, departments, lo, hi, segment), departments
            )
            where = (lo, hi, segment)
            assert sorted(map(repr, rolled.groups)) == sorted(map(repr, plain.groups)), where
            for d in departments:
                assert rolled.department(d) == plain.department(d), (d, *where)
    finally:
        con.disconnect()


def test_rollup_matches_the_log_through_changes(store: Engine) -> None:
    _both(store)
    built = ja._rollups[next(iter(ja._rollups))]
    assert 0 < built.months.num_rows < 600  # a row per customer and month, not per event
    # New rows after the rollup was built are read from the log (the rollup is kept).
    with store.begin() as conn:
        later = RECEIVED + dt.timedelta(hours=1)
        conn.execute(interactions.insert(), _events(random.Random(5), 40, 1000, later))
    _both(store)
    assert ja._rollups[next(iter(ja._rollups))] is built
    # A merge re-points c5's log to c6; the rollup's c5 rows are read as c6.
    with store.begin() as conn:
        conn.execute(customers.update().where(customers.c.id == "c5").values(merged_into="c6"))
        conn.execute(interactions.update().where(interactions.c.customer_id == "c5")
                     .values(customer_id="c6"))  # fmt: skip
    _both(store)
    # An erasure deletes c7's rows: the rollup no longer matches the log and is built again.
    with store.begin() as conn:
        conn.execute(interactions.delete().where(interactions.c.customer_id == "c7"))
    _both(store)
    rebuilt = ja._rollups[next(iter(ja._rollups))]
    assert rebuilt is not built
    assert "c7" not in set(rebuilt.months.column("cid").to_pylist())
    # An admin gives t_x to d3: the masks change, so the rollup is built again.
    with store.begin() as conn:
        conn.execute(sa.update(touchpoints).where(touchpoints.c.key == "t_x")
                     .values(department_key="d3"))  # fmt: skip
    _both(store)
    assert ja._rollups[next(iter(ja._rollups))] is not rebuilt


def test_journey_map_uses_the_rollup_on_duckdb(store: Engine) -> None:
    result = ja.journey_map(store)
    assert ja._rollups  # built on first use
    silver = ja.journey_map(store, segment="silver")  # c0, c3, ... c24: 9 of 25 customers
    assert 0 < silver.department("d1").customers < result.department("d1").customers <= 25

"""Employee and partner pulse answers are separate populations: no customer figure includes
them.

The worst case is built on purpose: the employees' and partner contacts' answers carry a
customer id and a
touchpoint (as a mis-mapped import could), and they are extreme (all zeros), so any reader that
forgets the population shows it in its numbers.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from cxm.customers.tables import customers
from cxm.insights import service as insights
from cxm.insights.analytics import answer_signals
from cxm.interactions.tables import interactions
from cxm.journeys.analytics import journey_map
from cxm.metrics import service as metrics
from cxm.org import schemas
from cxm.org import service as org
from cxm.store.analytics import reading
from cxm.surveys.facts import responses_table

T = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)


@pytest.fixture
def mixed(seeded: Engine) -> Engine:
    with seeded.begin() as conn:
        team = org.list_teams(conn, "service")[0].key
        org.create_touchpoint(conn, schemas.TouchpointCreate(
            key="delivery", name="Delivery", channel="delivery", stage="receive",
            department_key="service", team_key=team))  # fmt: skip
        conn.execute(customers.insert(), [{"id": c, "created_at": T, "first_seen": T,
                                           "last_seen": T, "interaction_count": 1}
                                          for c in ("c1", "c2")])  # fmt: skip
        conn.execute(interactions.insert(), [
            {"event_id": f"e{c}", "type": "track", "name": "delivery_late",
             "event_time": T - dt.timedelta(days=2), "received_at": T, "customer_id": c,
             "touchpoint_key": "delivery", "source": "api"} for c in ("c1", "c2")
        ])  # fmt: skip
        rows = [("r1", "customer", 10, 5), ("r2", "customer", 9, 4),
                ("p1", "employee", 0, 1), ("p2", "employee", 0, 1),
                ("p3", "employee", 0, 1), ("q1", "partner", 0, 1),
                ("q2", "partner", 0, 1)]  # fmt: skip
        for rid, kind, nps, csat in rows:
            conn.execute(responses_table.insert().values(
                id=rid, survey_key={"employee": "pulse", "partner": "partner_pulse"}.get(
                    kind, "relationship"),
                survey_version=1, respondent_kind=kind, customer_id="c1" if rid != "r2" else "c2",
                employee_id="E1" if kind == "employee" else None, touchpoint_key="delivery",
                channel="email", started_at=T, submitted_at=T, completed=True, nps=nps,
                nps_category="promoter" if nps >= 9 else "detractor", csat=csat, source="web",
            ))  # fmt: skip
    return seeded


def test_customer_metrics_exclude_employee_and_partner_pulse_answers(mixed: Engine) -> None:
    # Too few answers for a value (the minimum sample), but the count tells who was read.
    nps = metrics.compute(mixed, "nps", ["touchpoint"])
    assert nps["n"].tolist() == [2]
    csat = metrics.compute(mixed, "csat_mean", ["department"])
    assert csat["n"].tolist() == [2]


def test_enps_reads_only_pulse_answers(mixed: Engine) -> None:
    enps = metrics.compute(mixed, "enps").iloc[0]
    assert enps["n"] == 3


def test_journey_map_counts_only_customer_answers(mixed: Engine) -> None:
    groups = journey_map(mixed).groups
    answers = sum(sum(by_category.values()) for _, _, by_category in groups)
    assert answers == 2


def test_insights_attribution_reads_only_customer_answers(mixed: Engine, tmp_path: Path) -> None:
    signals = list(insights.signals(tmp_path).values())
    with reading(mixed) as con:
        ids = set(answer_signals(con, signals).to_pandas()["response_id"])
    assert ids == {"r1", "r2"}

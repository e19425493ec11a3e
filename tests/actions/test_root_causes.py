"""What each root cause costs: churn and revenue of its customers against everyone else's."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.engine import Engine

from cxm.actions import analytics, service
from cxm.interactions.tables import interactions
from cxm.org.scope import Scope
from cxm.yamldoc import parse
from tests.actions.conftest import (
    DETRACTOR_RULES,
    T0,
    add_customer,
    add_response,
    setup_org,
)

LEAD = Scope("cx_lead")


def _event(n: int, customer_id: str, name: str, revenue: float | None = None) -> dict[str, object]:
    at = T0 - dt.timedelta(days=n)
    return {"event_id": f"e{n}", "type": "track", "name": name, "event_time": at,
            "received_at": at, "customer_id": customer_id, "revenue": revenue,
            "source": "api"}  # fmt: skip


def test_cost_compares_affected_customers_with_everyone_else(engine: Engine) -> None:
    with engine.begin() as conn:
        setup_org(conn)
        service.apply_rules(conn, parse(DETRACTOR_RULES))
        a, b, c, d, e = (add_customer(conn, f"{x}@example.com") for x in "abcde")
        conn.execute(interactions.insert(), [
            _event(1, a, "payment_received", 10.0), _event(2, a, "subscription_cancelled"),
            _event(3, b, "payment_received", 5.0), _event(4, b, "payment_received", 5.0),
            _event(5, c, "payment_received", 20.0), _event(6, c, "subscription_cancelled"),
            _event(7, d, "payment_received", 30.0), _event(8, d, "subscription_cancelled"),
            _event(9, e, "payment_received", 2.0),
        ])  # fmt: skip
        for who in (a, b, c):
            add_response(conn, who, "delivery", nps=2)
        service.run_rules(conn)
        for case in service.list_cases(conn, LEAD):
            cause = "damaged_item" if case["customer_id"] == c else "late_delivery"
            service.set_root_causes(conn, LEAD, "lead@example.com", case["id"], [cause])
    rows = analytics.root_cause_cost(engine, LEAD)
    assert [r["root_cause"] for r in rows] == ["late_delivery", "damaged_item"]
    late, damaged = rows
    # late delivery: a (10, churned) and b (5 + 5)
    assert (late["customers"], late["churn_rate"]) == (2, 50.0)
    assert (late["revenue"], late["revenue_per_customer"]) == (20.0, 10.0)
    assert (damaged["customers"], damaged["churn_rate"], damaged["revenue"]) == (1, 100.0, 20.0)
    # everyone else: d (30, churned) and e (2)
    for row in rows:
        assert (row["others_churn_rate"], row["others_revenue_per_customer"]) == (50.0, 16.0)


def test_no_coded_cases_cost_nothing(engine: Engine) -> None:
    with engine.begin() as conn:
        setup_org(conn)
    assert analytics.root_cause_cost(engine, LEAD) == []

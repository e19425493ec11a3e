"""A closed-loop rule opens a case for each customer whose stored churn risk crosses its
threshold: once per customer, routed like any rule, titled with the reasons."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from cxm.actions import service
from cxm.actions.schemas import RuleIn
from cxm.actions.tables import cases
from cxm.insights import facts
from cxm.yamldoc import parse
from tests.actions.conftest import add_customer, setup_org

RULES = """\
rules:
  - key: churn_risk
    name: At risk of churning
    when: {churn_risk: {min: 0.4}}
    priority: p2
    sla: {first_response: 1d, resolution: 5d}
    route: {department: service}
"""


def _prediction(customer_id: str, risk: float) -> dict[str, object]:
    now = dt.datetime(2026, 10, 31, tzinfo=dt.UTC)
    reasons = [{"feature": "late_delivery", "label": "Late delivery", "value": 1,
                "contribution": 0.5}]  # fmt: skip
    return {"customer_id": customer_id, "churn_risk": risk, "predicted_nps": 6.0,
            "reasons": reasons, "nps_reasons": [], "model_version": "m", "feature_set": "fs",
            "seed": 7, "as_of": now, "scored_at": now}  # fmt: skip


def test_a_risk_above_the_threshold_opens_one_case_per_customer(engine: Engine) -> None:
    with engine.begin() as conn:
        setup_org(conn)
        risky, calm = add_customer(conn), add_customer(conn)
        facts.replace_predictions(conn, [_prediction(risky, 0.62), _prediction(calm, 0.1)])
        service.apply_rules(conn, parse(RULES))
    with engine.begin() as conn:
        opened = service.run_rules(conn)
    assert opened == {"churn_risk": 1}
    with engine.begin() as conn:  # a new scoring keeps the customer at risk: no second case
        facts.replace_predictions(conn, [_prediction(risky, 0.7), _prediction(calm, 0.45)])
        again = service.run_rules(conn)
    assert again == {"churn_risk": 1}  # only the customer who newly crossed it
    with engine.connect() as conn:
        rows = conn.execute(sa.select(cases).order_by(cases.c.opened_at)).mappings().all()
    assert [r["customer_id"] for r in rows] == [risky, calm]
    assert rows[0]["title"] == "At risk of churning: churn risk 62% (Late delivery)"
    assert {r["department_key"] for r in rows} == {"service"}
    assert {r["source_kind"] for r in rows} == {"prediction"}


def test_a_risk_rule_needs_a_threshold_between_0_and_1() -> None:
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        RuleIn.model_validate({"key": "r", "name": "R", "when": {"churn_risk": {"min": 40}},
                               "priority": "p2"})  # fmt: skip

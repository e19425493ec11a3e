"""Case titles show names, not keys, rendered from each case's rule and fact when read."""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.actions import notify, service
from cxm.actions.tables import cases
from cxm.metrics.facts import metric_alerts
from cxm.org.scope import Scope
from cxm.surveys import service as surveys
from cxm.yamldoc import parse
from tests.actions.conftest import DETRACTOR_RULES, T0, add_customer, add_response, setup_org

ALL = Scope("cx_lead")
ALERT_RULES = """\
rules:
  - key: drop
    name: Metric drop
    when: {metric_alert: {max_p: 0.05}}
    priority: p2
    sla: {first_response: 4h, resolution: 2d}
"""


def test_a_case_opened_with_keys_in_its_title_reads_with_names(engine: Engine) -> None:
    with engine.begin() as conn:
        setup_org(conn)
        surveys.apply_templates(conn)
        service.apply_rules(conn, parse(DETRACTOR_RULES))
        rid = add_response(conn, add_customer(conn, "ann@example.com"), "returns", nps=6)
        service.run_rules(conn, now=T0)
        # A case as older versions stored it: the survey's key in the title.
        conn.execute(cases.update().values(title="Detractor: relationship_nps (NPS 6)"))
        (case_id,) = conn.execute(sa.select(cases.c.id)).scalars()
    with engine.connect() as conn:
        listed = service.list_cases(conn, ALL)
        shown = service.get_case(conn, ALL, case_id)
        emailed = notify.case_json(conn, case_id)
    expected = "Detractor: Relationship NPS (NPS 6 of 10)"
    assert [c["title"] for c in listed] == [expected]
    assert shown["title"] == expected and shown["source_id"] == rid
    assert emailed is not None and emailed["title"] == expected


def test_a_metric_alert_case_names_the_metric_and_the_slice(engine: Engine) -> None:
    with engine.begin() as conn:
        setup_org(conn)
        service.apply_rules(conn, parse(ALERT_RULES))
        conn.execute(
            metric_alerts.insert().values(
                id=secrets.token_hex(8), metric="csat", grain="month",
                slice="department=supply_chain,touchpoint=delivery", period="2026-11-01",
                previous_period="2026-10-01", value=71.5, previous_value=80.25, p_value=0.001,
                p_adjusted=0.004, method="two-proportion z", status="open", created_at=T0,
            )
        )  # fmt: skip
        service.run_rules(conn, now=T0)
        stored = conn.execute(sa.select(cases.c.title)).scalar_one()
        # Rename the department: the title follows, because it is rendered when read.
        conn.execute(
            sa.text("update departments set name = 'Logistics' where key = 'supply_chain'")
        )
    with engine.connect() as conn:
        (case,) = service.list_cases(conn, ALL)
    assert stored == (
        "Metric drop: CSAT fell from 80.2 to 71.5 (Supply Chain & Delivery, Home delivery, p=0.004)"
    )
    assert case["title"] == (
        "Metric drop: CSAT fell from 80.2 to 71.5 (Logistics, Home delivery, p=0.004)"
    )
    assert case["department_key"] == "supply_chain"

"""Rules open one case per rule per event, routed to the team that owns the touchpoint."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.actions import service
from cxm.actions.tables import case_events, cases
from cxm.errors import Invalid
from cxm.org.scope import Scope
from cxm.yamldoc import parse
from tests.actions.conftest import (
    DETRACTOR_RULES,
    T0,
    add_agent,
    add_customer,
    add_response,
    setup_org,
)

ALL = Scope("cx_lead")


def test_detractor_opens_a_case_in_the_owning_team_once(engine: Engine) -> None:
    with engine.begin() as conn:
        setup_org(conn)
        service.apply_rules(conn, parse(DETRACTOR_RULES))
        cid = add_customer(conn, "ann@example.com")
        rid = add_response(conn, cid, "returns", nps=2)
        add_response(conn, cid, "delivery", nps=9)  # a promoter opens nothing
        assert service.run_rules(conn, now=T0) == {"detractor": 1}
    with engine.begin() as conn:
        assert service.run_rules(conn, now=T0) == {"detractor": 0}  # a re-run is idempotent
        (case,) = service.list_cases(conn, ALL)
    assert case["source_id"] == rid
    assert (case["team_key"], case["department_key"]) == ("returns_team", "supply_chain")
    assert case["status"] == "new" and case["priority"] == "p2"
    # Opened Monday 10:00 with 4 business hours to respond: due 14:00 the same day.
    assert case["first_response_due"] == T0.replace(hour=14)


def test_touchpoint_without_team_goes_to_default_team_and_unknown_to_cx_lead_queue(
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        setup_org(conn)
        service.apply_rules(conn, parse(DETRACTOR_RULES))
        add_response(conn, None, "delivery", nps=0)
        add_response(conn, None, "kiosk_nobody_owns", nps=1)
        service.run_rules(conn, now=T0)
        teams = {c["touchpoint_key"]: c["team_key"] for c in service.list_cases(conn, ALL)}
    assert teams == {"delivery": "delivery_team", "kiosk_nobody_owns": None}


def test_least_loaded_spreads_cases_over_the_team_agents(engine: Engine) -> None:
    with engine.begin() as conn:
        setup_org(conn)
        a = add_agent(conn, "a@example.com", "service_team")
        b = add_agent(conn, "b@example.com", "service_team")
        service.apply_rules(conn, parse(DETRACTOR_RULES))
        for _ in range(4):
            add_response(conn, None, "support_chat", nps=3)
        service.run_rules(conn, now=T0)
        owners = [c["assignee_id"] for c in service.list_cases(conn, ALL)]
        assigned = conn.execute(
            sa.select(sa.func.count()).where(case_events.c.kind == "assigned")
        ).scalar_one()
    assert sorted(owners) == sorted([a, a, b, b])
    assert assigned == 4


def test_interaction_pattern_opens_on_the_third_contact_only(engine: Engine) -> None:
    import datetime as dt

    from cxm.interactions.tables import interactions

    rules = """\
rules:
  - key: repeat
    name: Repeat contact
    when: {interaction: {event: support_contact, count: 3, within_days: 14}}
"""
    with engine.begin() as conn:
        setup_org(conn)
        service.apply_rules(conn, parse(rules))
        cid = add_customer(conn)
        for day in (0, 3, 6, 30):
            at = T0 + dt.timedelta(days=day)
            conn.execute(
                interactions.insert().values(
                    event_id=f"e{day}",
                    type="track",
                    name="support_contact",
                    event_time=at,
                    received_at=at,
                    customer_id=cid,
                    touchpoint_key="support_chat",
                    source="api",
                )
            )
        assert service.run_rules(conn, now=T0) == {"repeat": 1}
        assert service.run_rules(conn, now=T0) == {"repeat": 0}
        (case,) = service.list_cases(conn, ALL)
    assert case["source_id"] == "e6" and case["team_key"] == "service_team"


def test_rules_file_errors_name_the_line(engine: Engine) -> None:
    bad = "rules:\n  - key: x\n    name: X\n    when: {response: {nps_max: 12}}\n"
    with engine.begin() as conn, pytest.raises(Invalid, match="line 4"):
        service.apply_rules(conn, parse(bad, "rules.yaml"))


def test_default_rules_apply(engine: Engine) -> None:
    with engine.begin() as conn:
        setup_org(conn)
        keys = service.apply_default_rules(conn)
        assert "detractor" in keys
        assert conn.execute(sa.select(sa.func.count()).select_from(cases)).scalar_one() == 0
        assert service.run_rules(conn)["detractor"] == 0

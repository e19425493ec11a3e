"""A follow-up held back by the customer's quiet hours says until when, not "waiting"."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from cxm.actions import service
from cxm.config import load_settings
from cxm.org.scope import Scope
from cxm.store import jobs, utcnow
from cxm.surveys import distribution
from cxm.surveys import service as surveys
from cxm.yamldoc import parse
from tests.actions.conftest import DETRACTOR_RULES, add_customer, add_response, setup_org

LEAD = Scope("cx_lead")


def test_a_follow_up_in_quiet_hours_says_when_it_will_be_sent(
    engine: Engine, tmp_path: Path
) -> None:
    now = utcnow()
    start, end = now.hour, (now.hour + 2) % 24  # quiet from this hour, for two hours
    with engine.begin() as conn:
        setup_org(conn)
        surveys.set_contact_rule(conn, surveys.ContactRule("all", 0, start, end))
        service.apply_rules(conn, parse(DETRACTOR_RULES))
        cid = add_customer(conn, "ann@example.com", {"timezone": "UTC"})
        add_response(conn, cid, "delivery", nps=3, at=now)
        service.run_rules(conn)
        (case,) = service.list_cases(conn, LEAD)
        service.set_status(conn, LEAD, "lead@example.com", case["id"], "closed")
    settings = load_settings(data_dir=tmp_path, database_url=str(engine.url))
    jobs.run_due(engine, distribution.handlers(settings))
    with engine.connect() as conn:
        state = service.followup_state(conn, service.get_case(conn, LEAD, case["id"]))
    assert state is not None and state.startswith("requested: held for the customer's quiet")
    assert f"{end:02d}:00 UTC" in state

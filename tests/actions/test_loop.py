"""Notifications, SLA checks through the jobs table, follow-up, the API with role scopes."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.actions import analytics, service
from cxm.actions.schemas import InitiativeIn, WebhookIn
from cxm.actions.tables import cases, webhook_deliveries
from cxm.config import load_settings
from cxm.org import auth
from cxm.org.scope import Scope
from cxm.store import create_engine, jobs, utcnow
from cxm.surveys import distribution
from cxm.yamldoc import parse
from tests.actions.conftest import (
    DETRACTOR_RULES,
    T0,
    Inbox,
    Receiver,
    add_agent,
    add_customer,
    add_response,
    setup_org,
)
from tests.conftest import make_key

ALL = Scope("cx_lead")
SECRET = "a-webhook-secret-of-some-length"


def _handlers(port: int) -> dict[str, jobs.Handler]:
    settings = load_settings(smtp_port=port, base_url="http://cxm.test")
    return service.handlers(settings) | distribution.handlers(settings)


def test_webhook_arrives_signed_and_a_failed_delivery_is_retried(
    engine: Engine, receiver: Receiver
) -> None:
    receiver.fail_first = 1
    with engine.begin() as conn:
        setup_org(conn)
        service.apply_rules(conn, parse(DETRACTOR_RULES))
        service.add_webhook(
            conn, WebhookIn(url=receiver.url, secret=SECRET, events=["case_opened"])
        )
        add_response(conn, None, "delivery", nps=1)
        service.run_rules(conn)
    handlers = service.handlers(load_settings())
    jobs.run_due(engine, {k: v for k, v in handlers.items() if k == "actions.webhook"})
    assert len(receiver.received) == 1  # answered 500
    later = utcnow() + dt.timedelta(minutes=5)
    jobs.run_due(engine, {k: v for k, v in handlers.items() if k == "actions.webhook"}, now=later)
    assert len(receiver.received) == 2
    headers, body = receiver.received[-1]
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-cxm-signature"] == f"sha256={expected}"
    payload = json.loads(body)
    assert payload["event"] == "case_opened" and payload["attempt"] == 2
    assert payload["case"]["team_key"] == "delivery_team"
    with engine.connect() as conn:
        log = conn.execute(
            sa.select(webhook_deliveries.c.status, webhook_deliveries.c.status_code).order_by(
                webhook_deliveries.c.attempt
            )
        ).all()
    assert [tuple(r) for r in log] == [("failed", 500), ("delivered", 200)]


def test_a_restart_loses_no_pending_sla_check_and_a_breach_escalates_to_the_lead(
    tmp_path: Path, smtp: tuple[int, Inbox]
) -> None:
    port, inbox = smtp
    url = f"duckdb:///{tmp_path / 'cxm.duckdb'}"
    from cxm.store import upgrade

    first = create_engine(url)
    upgrade(first)
    with first.begin() as conn:
        setup_org(conn)
        service.apply_rules(conn, parse(DETRACTOR_RULES))
        add_response(conn, None, "delivery", nps=1)
        service.run_rules(conn, now=T0)
        case_id = conn.execute(sa.select(cases.c.id)).scalar_one()
        assert jobs.pending_count(conn, "actions.sla") == 4
    first.dispose()  # the server stops

    second = create_engine(url)  # ... and starts again
    handlers = _handlers(port)
    jobs.run_due(second, handlers, now=max(utcnow(), T0) + dt.timedelta(days=30), limit=100)
    jobs.run_due(second, handlers, now=max(utcnow(), T0) + dt.timedelta(days=30), limit=100)
    with second.connect() as conn:
        case = service.get_case(conn, ALL, case_id)
    assert case["sla_state"] == "breached" and case["escalated_at"] is not None
    assert any(
        "lead@delivery.example" in m["to"] and "SLA breached" in m["data"] for m in inbox.messages
    )
    second.dispose()


def test_closing_sends_the_followup_survey_and_its_answer_attaches(
    engine: Engine, smtp: tuple[int, Inbox]
) -> None:
    port, inbox = smtp
    with engine.begin() as conn:
        setup_org(conn)
        service.apply_rules(conn, parse(DETRACTOR_RULES))
        cid = add_customer(conn, "ann@example.com")
        add_response(conn, cid, "delivery", nps=3)
        service.run_rules(conn, now=T0)
        case_id = conn.execute(sa.select(cases.c.id)).scalar_one()
        service.add_note(conn, ALL, "lead@example.com", case_id, "Called Ann, refund sent.")
        service.set_status(conn, ALL, "lead@example.com", case_id, "closed")
    jobs.run_due(engine, _handlers(port), limit=100)
    jobs.run_due(engine, _handlers(port), limit=100)
    mails = [m for m in inbox.messages if "ann@example.com" in m["to"]]
    assert len(mails) == 1 and "Did we resolve your issue?" in mails[0]["data"]
    with engine.begin() as conn:
        add_response(
            conn, cid, "delivery", nps=9, survey="case_followup", trigger=f"case:{case_id}"
        )
        assert service.run_rules(conn) == {"detractor": 0}
        case = service.get_case(conn, ALL, case_id)
    assert case["followup_status"] == "answered"
    loop = analytics.closed_loop(engine, ALL)
    assert loop["recovery_rate"] == 100.0 and loop["loop_closure_rate"] == 100.0
    assert loop["cases_opened"] == 1


def test_agents_see_only_their_teams_cases_over_the_api(
    app_client: TestClient, seeded: Engine
) -> None:
    with seeded.begin() as conn:
        setup_org(conn)
        add_agent(conn, "dee@example.com", "delivery_team")
        add_agent(conn, "sam@example.com", "service_team")
        service.apply_rules(conn, parse(DETRACTOR_RULES))
        add_response(conn, None, "delivery", nps=1)
        add_response(conn, None, "support_chat", nps=2)
        service.run_rules(conn)
        dee = auth.create_api_key(conn, "read", user_id=service._user_id(conn, "dee@example.com"))
    headers = {"Authorization": f"Bearer {dee}"}
    mine = app_client.get("/api/v1/cases", headers=headers).json()
    assert [c["team_key"] for c in mine] == ["delivery_team"]
    assert mine[0]["assignee"] == "dee@example.com"
    lead = make_key(seeded, "read")
    everything = app_client.get("/api/v1/cases", headers=lead).json()
    other = next(c for c in everything if c["team_key"] == "service_team")
    assert app_client.get(f"/api/v1/cases/{other['id']}", headers=headers).status_code == 404
    r = app_client.post(
        f"/api/v1/cases/{mine[0]['id']}/status", headers=headers, json={"status": "in_progress"}
    )
    assert r.status_code == 200 and r.json()["first_response_at"] is not None
    bad = app_client.post(
        f"/api/v1/cases/{mine[0]['id']}/status", headers=headers, json={"status": "done"}
    )
    assert bad.status_code == 422 and "status" in bad.json()["detail"]


def test_initiative_before_after_finds_a_significant_rise(engine: Engine) -> None:
    with engine.begin() as conn:
        setup_org(conn)
        start = dt.date(2026, 3, 1)
        for day in range(1, 40):
            at = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
            add_response(conn, None, "delivery", nps=3 + day % 3, at=at - dt.timedelta(days=day))
            add_response(conn, None, "delivery", nps=8 + day % 3, at=at + dt.timedelta(days=day))
        init = service.create_initiative(
            conn,
            InitiativeIn(
                name="Two-hour delivery windows",
                owner_department="supply_chain",
                root_causes=["late_delivery"],
                touchpoints=["delivery"],
                start_date=start,
                expected_effect=20.0,
            ),
        )
    effect = analytics.before_after(engine, init)
    assert effect["before"]["n"] == 39 and effect["after"]["n"] == 39
    assert effect["significant"] and effect["change"] > 100

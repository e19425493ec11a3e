"""Outgoing webhooks for responses, detractors and metric alerts, in cxm, Slack and Teams form,
delivered to a real local HTTP receiver through the jobs table."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.actions import service
from cxm.actions.schemas import WebhookIn
from cxm.actions.tables import webhook_deliveries
from cxm.config import load_settings
from cxm.metrics.tables import metric_alerts
from cxm.store import jobs, utcnow
from cxm.surveys.tables import responses
from tests.actions.conftest import Receiver, add_response, setup_org

SECRET = "a-webhook-secret-of-some-length"


def _deliver(engine: Engine) -> None:
    handlers = service.handlers(load_settings(base_url="http://cxm.test"))
    jobs.run_due(engine, {"actions.webhook": handlers["actions.webhook"]}, limit=100)


def _bodies(receiver: Receiver) -> list[dict]:
    return [json.loads(body) for _, body in receiver.received]


def test_a_slack_hook_hears_each_new_detractor_once_and_nothing_else(
    engine: Engine, receiver: Receiver
) -> None:
    with engine.begin() as conn:
        setup_org(conn)
        old = add_response(conn, None, "delivery", nps=0, at=utcnow() - dt.timedelta(days=3))
        service.add_webhook(
            conn,
            WebhookIn(
                url=receiver.url, secret=SECRET, events=["detractor_response"], format="slack"
            ),
        )
        now = utcnow() + dt.timedelta(seconds=1)
        detractor = add_response(conn, None, "delivery", nps=3, at=now)
        add_response(conn, None, "delivery", nps=10, at=now)  # a promoter: not a detractor
        unhappy = add_response(conn, None, "support_chat", csat=1, at=now)
        conn.execute(
            responses.update().where(responses.c.id == detractor).values(comment="Late again.")
        )
        service.run_rules(conn)
        service.run_rules(conn)  # a second scan queues nothing new
    _deliver(engine)
    bodies = _bodies(receiver)
    assert len(bodies) == 2
    texts = sorted(b["text"] for b in bodies)
    assert texts == ["Detractor response: CSAT 1/5", "Detractor response: NPS 3/10 (detractor)"]
    nps_body = next(b for b in bodies if "NPS" in b["text"])
    section = nps_body["blocks"][0]["text"]
    assert section["type"] == "mrkdwn"
    # Names, not keys: the touchpoint's display name; the comment is quoted.
    assert "*Touchpoint:* Home delivery" in section["text"]
    assert "*Survey:* relationship_nps" in section["text"]  # no definition stored: the key
    assert "*Comment:* Late again." in section["text"]
    assert nps_body["blocks"][1]["elements"][0]["url"].startswith("http://cxm.test")
    with engine.connect() as conn:
        sent = conn.execute(sa.select(webhook_deliveries.c.subject_id)).scalars().all()
    assert sorted(sent) == sorted([detractor, unhappy]) and old not in sent


def test_a_cxm_hook_gets_every_customer_response_signed_but_never_an_employee_answer(
    engine: Engine, receiver: Receiver
) -> None:
    with engine.begin() as conn:
        setup_org(conn)
        service.add_webhook(
            conn,
            WebhookIn(
                url=receiver.url,
                secret=SECRET,
                events=["response_submitted", "detractor_response"],
            ),
        )
        now = utcnow() + dt.timedelta(seconds=1)
        first = add_response(conn, None, "delivery", nps=2, at=now)
        second = add_response(conn, None, "delivery", nps=9, at=now)
        pulse = add_response(conn, None, None, nps=1, at=now, survey="employee_pulse")
        conn.execute(
            responses.update().where(responses.c.id == pulse).values(respondent_kind="employee")
        )
        service.run_rules(conn)
    _deliver(engine)
    assert len(receiver.received) == 2  # each response once, though both events match the first
    got = {}
    for headers, body in receiver.received:
        expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-cxm-signature"] == f"sha256={expected}"
        payload = json.loads(body)
        assert payload["event"] == "response_submitted"
        got[payload["response"]["id"]] = payload["response"]["nps"]
    assert got == {first: 2, second: 9}


def test_a_teams_hook_gets_a_metric_alert_as_an_adaptive_card(
    engine: Engine, receiver: Receiver
) -> None:
    with engine.begin() as conn:
        setup_org(conn)
        service.add_webhook(
            conn,
            WebhookIn(url=receiver.url, secret=SECRET, events=["metric_alert"], format="teams"),
        )
        conn.execute(
            metric_alerts.insert().values(
                id=secrets.token_hex(8),
                metric="csat",
                grain="month",
                slice="department=supply_chain",
                period="2026-11-01",
                previous_period="2026-10-01",
                value=71.5,
                previous_value=80.25,
                p_value=0.001,
                p_adjusted=0.004,
                method="two-proportion z",
                status="open",
                created_at=utcnow() + dt.timedelta(seconds=1),
            )
        )
        service.run_rules(conn)
    _deliver(engine)
    (body,) = _bodies(receiver)
    assert body["type"] == "message"
    card = body["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    content = card["content"]
    assert content["type"] == "AdaptiveCard" and content["version"] == "1.4"
    assert content["body"][0]["text"] == "Metric alert: CSAT fell from 80.2 to 71.5"
    facts = {f["title"]: f["value"] for f in content["body"][1]["facts"]}
    assert facts["Slice"] == "Supply Chain & Delivery"
    assert facts["Period"] == "2026-11-01 against 2026-10-01"
    assert content["actions"][0]["type"] == "Action.OpenUrl"


def test_a_receiver_that_fails_is_retried_and_logged(engine: Engine, receiver: Receiver) -> None:
    receiver.fail_first = 1
    with engine.begin() as conn:
        setup_org(conn)
        service.add_webhook(
            conn,
            WebhookIn(url=receiver.url, secret=SECRET, events=["response_submitted"]),
        )
        add_response(conn, None, "delivery", nps=5, at=utcnow() + dt.timedelta(seconds=1))
        service.run_rules(conn)
    _deliver(engine)
    handlers = service.handlers(load_settings())
    later = utcnow() + dt.timedelta(minutes=5)
    jobs.run_due(engine, {"actions.webhook": handlers["actions.webhook"]}, now=later)
    with engine.connect() as conn:
        log = conn.execute(
            sa.select(webhook_deliveries.c.status, webhook_deliveries.c.subject_kind).order_by(
                webhook_deliveries.c.attempt
            )
        ).all()
    assert [tuple(r) for r in log] == [("failed", "response"), ("delivered", "response")]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://x.example/h", "secret": SECRET, "format": "discord"}, "format"),
        ({"url": "http://x.example/h", "secret": SECRET, "events": ["nps_changed"]}, "events"),
        ({"url": "http://x.example/h", "secret": SECRET, "events": []}, "events"),
    ],
)
def test_the_api_refuses_an_unknown_format_or_event_with_a_message(
    app_client: TestClient, admin_headers: dict[str, str], body: dict, field: str
) -> None:
    answer = app_client.post("/api/v1/rules/webhooks", json=body, headers=admin_headers)
    assert answer.status_code == 422
    assert field in answer.text


def test_the_api_adds_a_slack_hook_and_lists_its_format(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    body = {
        "url": "https://hooks.slack.example/services/T0/B0/x",
        "secret": SECRET,
        "events": ["detractor_response", "case_opened"],
        "format": "slack",
        "name": "#cx-alerts",
    }
    made = app_client.post("/api/v1/rules/webhooks", json=body, headers=admin_headers)
    assert made.status_code == 201, made.text
    listed = app_client.get("/api/v1/rules/webhooks", headers=admin_headers).json()
    assert [(h["format"], h["name"], h["events"]) for h in listed] == [
        ("slack", "#cx-alerts", ["detractor_response", "case_opened"])
    ]

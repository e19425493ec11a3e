"""A company with customers, comments and a case in several departments, for scope tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy.engine import Engine

from cxm.actions.tables import cases
from cxm.interactions import service as interactions
from cxm.surveys import service as surveys
from cxm.text import jobs as text_jobs
from tests.web.factories import add_responses, company

# Personal data the fixture plants; a viewer must never see any of it.
EMAIL, COMMENT = "ana@example.com", "parcel arrived late"


@dataclass(frozen=True)
class World:
    ana: str  # touched delivery (supply_chain) and invoice (billing, the manager's department)
    bo: str  # touched support chat only (service)
    survey: str


def _ingest(engine: Engine, events: list[dict[str, object]]) -> str:
    with engine.begin() as conn:
        results = interactions.ingest(conn, events, "api")
    customer_id = results[0].customer_id
    assert customer_id
    return customer_id


@pytest.fixture
def world(seeded: Engine) -> World:
    company(seeded)
    ana = _ingest(seeded, [
        {"event_id": "a1", "type": "identify", "email": EMAIL, "crm_id": "C1",
         "timestamp": "2026-09-01T10:00:00Z"},
        {"event_id": "a2", "name": "order_delivered", "email": EMAIL, "touchpoint": "delivery",
         "timestamp": "2026-09-03T10:00:00Z"},
        {"event_id": "a3", "name": "invoice_sent", "crm_id": "C1", "touchpoint": "invoice",
         "timestamp": "2026-09-04T10:00:00Z"},
    ])  # fmt: skip
    add_responses(seeded, "invoice", [1], month=9, comment=COMMENT, customer_id=ana)
    bo = _ingest(seeded, [
        {"event_id": "b1", "name": "chat_started", "email": "bo@example.com",
         "touchpoint": "support_chat", "timestamp": "2026-09-05T10:00:00Z"},
    ])  # fmt: skip
    with seeded.begin() as conn:
        surveys.apply_templates(conn)
        survey = surveys.list_surveys(conn)[0].key
        # The agent's team (service_team) works a case about Ana, none about Bo.
        at = dt.datetime(2026, 9, 5, 12, tzinfo=dt.UTC)
        conn.execute(cases.insert().values(
            id="case-ana", dedupe_key="test|response|ana", rule_key="test",
            source_kind="response", source_id="ana", title="Late parcel", customer_id=ana,
            touchpoint_key="support_chat", department_key="service", team_key="service_team",
            status="new", priority="p2", sla_state="ok", opened_at=at, first_response_due=at,
            resolution_due=at, updated_at=at,
        ))  # fmt: skip
    text_jobs.annotate_bulk(seeded, semantic=False)
    return World(ana=ana, bo=bo, survey=survey)

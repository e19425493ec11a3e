"""Every role against every staff page and every read endpoint of the REST API.

The expected status per role follows the role table in docs/web.md: what is outside a role's
scope answers 404, as if it did not exist; a viewer never gets personal data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.actions.tables import cases
from cxm.interactions import service as interactions
from cxm.org import auth
from cxm.surveys import service as surveys
from cxm.text import jobs as text_jobs
from tests.web.factories import add_responses, company
from tests.web.test_pages import ROLES_USERS, as_role

ROLES = ("admin", "cx_lead", "manager", "agent", "viewer")
ALL = set(ROLES)
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


def page_expectations(w: World) -> Iterator[tuple[str, set[str]]]:
    """Each staff page and the roles that get it (200); every other role gets 404."""
    yield "/", ALL
    yield "/departments", ALL
    yield "/departments/billing", ALL  # the manager's own department
    yield "/departments/supply_chain", ALL - {"manager"}
    yield "/feedback", ALL - {"agent"}
    yield "/customers", {"admin", "cx_lead", "manager"}
    yield f"/customers/{w.ana}", {"admin", "cx_lead", "manager", "agent"}  # agent: via a case
    yield f"/customers/{w.bo}", {"admin", "cx_lead"}  # never touched billing
    yield "/surveys", {"admin", "cx_lead", "manager"}
    yield f"/surveys/{w.survey}", {"admin", "cx_lead", "manager"}
    yield "/org", ALL
    yield "/settings", {"admin"}
    # Viewers get the case list with names and notes masked (checked below).
    yield "/cases", ALL
    yield "/initiatives", ALL
    yield "/account/password", ALL


@pytest.mark.parametrize("role", ROLES)
def test_every_page_answers_each_role_as_documented(
    app_client: TestClient, seeded: Engine, world: World, role: str
) -> None:
    client = as_role(app_client, seeded, role)
    wrong = []
    for path, allowed in page_expectations(world):
        response = client.get(path, headers={"accept": "text/html"})
        expected = 200 if role in allowed else 404
        if response.status_code != expected:
            wrong.append(f"{path}: {response.status_code}, expected {expected}")
        if role == "viewer" and response.status_code == 200:
            assert EMAIL not in response.text and COMMENT not in response.text, path
        if expected == 404:
            assert EMAIL not in response.text and COMMENT not in response.text, path
    assert not wrong, f"{role}: " + "; ".join(wrong)
    menu = client.get("/org").text
    for path in ("/feedback", "/customers", "/surveys", "/settings"):
        allowed = dict(page_expectations(world))[path]
        assert (f'href="{path}"' in menu) == (role in allowed), (role, path)


def _key(engine: Engine, role: str) -> dict[str, str]:
    """Headers with an API key that belongs to a user of ``role`` (admins hold admin keys)."""
    email, department, team = ROLES_USERS[role]
    with engine.begin() as conn:
        user_id = auth.create_user(
            conn, f"api-{email}", role, password="a long password",
            department_key=department, team_key=team,
        )  # fmt: skip
        token = auth.create_api_key(conn, "admin" if role == "admin" else "read", user_id=user_id)
    return {"Authorization": f"Bearer {token}"}


def api_expectations(w: World) -> Iterator[tuple[str, set[str]]]:
    yield "/api/v1/departments", ALL
    yield "/api/v1/touchpoints", ALL
    yield "/api/v1/metrics/nps?by=department", ALL
    yield "/api/v1/surveys", ALL
    yield f"/api/v1/surveys/{w.survey}", ALL
    yield "/api/v1/cases", ALL
    yield "/api/v1/text/annotations", ALL
    yield "/api/v1/customers", {"admin", "cx_lead"}  # the whole list
    yield f"/api/v1/customers/{w.ana}", {"admin", "cx_lead", "manager", "agent"}
    yield f"/api/v1/customers/{w.ana}/timeline", {"admin", "cx_lead", "manager", "agent"}
    yield f"/api/v1/customers?email={EMAIL}", {"admin", "cx_lead", "manager", "agent"}
    yield f"/api/v1/customers/{w.bo}", {"admin", "cx_lead"}
    yield f"/api/v1/customers/{w.bo}/timeline", {"admin", "cx_lead"}


@pytest.mark.parametrize("role", ROLES)
def test_every_read_endpoint_answers_each_roles_key_as_documented(
    app_client: TestClient, seeded: Engine, world: World, role: str
) -> None:
    headers = _key(seeded, role)
    wrong = []
    for path, allowed in api_expectations(world):
        response = app_client.get(path, headers=headers)
        expected = 200 if role in allowed else 404
        if response.status_code != expected:
            wrong.append(f"{path}: {response.status_code}, expected {expected}")
        if role == "viewer":
            assert EMAIL not in response.text and COMMENT not in response.text, path
    assert not wrong, f"{role}: " + "; ".join(wrong)
    # Annotation sentences quote the comments: only roles that see everything get them.
    found = app_client.get("/api/v1/text/annotations?limit=1000", headers=headers).json()
    assert found and {a["label"] for a in found} <= {"negative", "neutral", "positive"}
    assert (COMMENT in str(found)) is (role in ("admin", "cx_lead"))

"""Each scope leak found by probing the API and pages as every role, as one test each.

The rules live in ``cxm.org.scope``: what is outside a role's scope reads as absent, personal
data goes only to roles that may read it, and small slices are suppressed for the rest.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.interactions import service as interactions
from cxm.org import auth
from cxm.store import jobs as store_jobs
from cxm.text import jobs as text_jobs
from tests.conftest import make_key
from tests.web.conftest import COMMENT, EMAIL, World
from tests.web.factories import add_responses
from tests.web.test_pages import as_role
from tests.web.test_roles import _key

RESTRICTED = ("manager", "agent", "viewer")


def _discover(client: TestClient, headers: dict[str, str], engine: Engine) -> dict[str, object]:
    """Start a discovery job as the caller, run it, and read its themes as the caller."""
    started = client.post(
        "/api/v1/text/themes/discover", json={"vectors": "tfidf", "k": 2, "seed": 1},
        headers=headers,
    )  # fmt: skip
    assert started.status_code == 202, started.text
    assert store_jobs.run_due(engine, text_jobs.handlers) >= 1
    done = client.get(str(started.json()["url"]), headers=headers)
    assert done.status_code == 200 and done.json()["state"] == "done", done.text
    found: dict[str, object] = done.json()["result"]
    return found


BILLING = ("refund took weeks", "invoice portal is confusing")
SERVICE = (
    "the agent solved my problem quickly",
    "the chat queue was very long",
    "helpful and kind support staff",
)


def _more_comments(engine: Engine) -> None:
    for text in BILLING:
        add_responses(engine, "invoice", [4, 5], comment=text)
    for text in SERVICE:
        add_responses(engine, "support_chat", [9, 6], comment=text)
    add_responses(engine, "delivery", [0, 1], comment="driver threw the parcel")


def test_viewer_gets_no_verbatim_examples_from_theme_discovery(
    app_client: TestClient, seeded: Engine, world: World
) -> None:
    found = _discover(app_client, _key(seeded, "viewer"), seeded)
    themes = found["themes"]
    assert isinstance(themes, list) and themes
    assert all(t["examples"] == [] for t in themes)
    lead = _discover(app_client, _key(seeded, "cx_lead"), seeded)
    assert any(t["examples"] for t in lead["themes"])  # type: ignore[union-attr]


def test_manager_discovers_themes_only_in_their_departments_comments(
    app_client: TestClient, seeded: Engine, world: World
) -> None:
    _more_comments(seeded)
    # The manager runs billing: only the invoice comments are theirs.
    found = _discover(app_client, _key(seeded, "manager"), seeded)
    examples = {e for t in found["themes"] for e in t["examples"]}  # type: ignore[union-attr]
    assert examples and examples <= {"charged twice", COMMENT, *BILLING}


def test_agent_discovers_themes_only_in_their_departments_comments(
    app_client: TestClient, seeded: Engine, world: World
) -> None:
    _more_comments(seeded)
    found = _discover(app_client, _key(seeded, "agent"), seeded)  # service_team, in service
    examples = {e for t in found["themes"] for e in t["examples"]}  # type: ignore[union-attr]
    assert examples and examples <= {"so friendly", *SERVICE}


def _with_names(engine: Engine) -> None:
    events = [
        {"event_id": f"n{i}", "type": "identify", "email": f"p{i}@example.com",
         "traits": {"name": f"Person {i}", "segment": "smb" if i < 3 else "enterprise"}}
        for i in range(8)
    ]  # fmt: skip
    with engine.begin() as conn:
        results = interactions.ingest(conn, events, "api")
    for i, r in enumerate(results):
        assert r.customer_id
        add_responses(engine, "invoice", [3 + i], month=9, customer_id=r.customer_id)


@pytest.mark.parametrize("role", RESTRICTED)
@pytest.mark.parametrize(
    "query", ["by=trait:name", "by=trait:email", "by=month,trait:phone", "filter=trait:email=x"]
)
def test_personal_traits_are_no_slice_dimension_for_restricted_roles(
    app_client: TestClient, seeded: Engine, world: World, role: str, query: str
) -> None:
    _with_names(seeded)
    response = app_client.get(f"/api/v1/metrics/nps?{query}", headers=_key(seeded, role))
    assert response.status_code == 403, response.text
    assert "personal data" in response.json()["detail"]
    assert "Person" not in response.text and "@example.com" not in response.text


def test_traits_named_personal_in_settings_are_no_slice_dimension(
    seeded: Engine, tmp_path: object
) -> None:
    import datetime as dt

    from cxm.config import load_settings
    from cxm.customers import service as customers
    from cxm.customers.tables import customers as customer_rows
    from cxm.web.app import create_app

    settings = load_settings(
        data_dir=tmp_path, database_url=str(seeded.url), personal_traits=("loyalty_number",)
    )
    now = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    with seeded.begin() as conn:  # a trait the store knows (an unknown one is refused, 422)
        conn.execute(customer_rows.insert().values(id="c-plan", created_at=now, first_seen=now,
                                                   last_seen=now, interaction_count=0))  # fmt: skip
        customers.set_traits(conn, [("c-plan", "plan", "basic", now),
                                    ("c-plan", "loyalty_number", "L-1", now)])  # fmt: skip
    headers = _key(seeded, "manager")
    with TestClient(create_app(settings, engine=seeded, run_worker=False)) as client:
        denied = client.get("/api/v1/metrics/nps?by=trait:loyalty_number", headers=headers)
        allowed = client.get("/api/v1/metrics/nps?by=trait:plan", headers=headers)
    assert denied.status_code == 403 and allowed.status_code == 200


def test_admins_and_cx_leads_may_slice_by_a_personal_trait(
    app_client: TestClient, seeded: Engine, world: World
) -> None:
    _with_names(seeded)
    rows = app_client.get("/api/v1/metrics/nps?by=trait:name", headers=_key(seeded, "cx_lead"))
    assert rows.status_code == 200
    assert "Person 1" in {r["name"] for r in rows.json()["rows"]}


def test_small_slices_are_suppressed_for_restricted_roles(
    app_client: TestClient, seeded: Engine, world: World
) -> None:
    _with_names(seeded)  # 3 answers from smb customers, 5 from enterprise ones
    url = "/api/v1/metrics/nps?by=trait:segment"
    viewer = app_client.get(url, headers=_key(seeded, "viewer")).json()
    lead = app_client.get(url, headers=_key(seeded, "cx_lead")).json()
    assert {r["segment"]: r["n"] for r in lead["rows"]}.get("smb") == 3
    assert "smb" not in {r["segment"] for r in viewer["rows"]}
    assert {r["segment"]: r["n"] for r in viewer["rows"]}["enterprise"] == 5
    assert all(r["n"] >= 5 for r in viewer["rows"]) and viewer["suppressed"] >= 1


@pytest.mark.parametrize("role", ("manager", "agent"))
def test_out_of_scope_customer_lookup_answers_like_an_unknown_one(
    app_client: TestClient, seeded: Engine, world: World, role: str
) -> None:
    headers = _key(seeded, role)
    foreign = app_client.get("/api/v1/customers?email=bo@example.com", headers=headers)
    unknown = app_client.get("/api/v1/customers?email=nobody@example.com", headers=headers)
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json() == unknown.json()
    assert world.bo not in foreign.text
    by_id = app_client.get(f"/api/v1/customers/{world.bo}", headers=headers)
    assert by_id.status_code == 404 and world.bo not in by_id.text


def test_manager_customer_search_does_not_redirect_to_an_out_of_scope_customer(
    app_client: TestClient, seeded: Engine, world: World
) -> None:
    client = as_role(app_client, seeded, "manager")
    foreign = client.get("/customers?q=bo@example.com", follow_redirects=False)
    unknown = client.get("/customers?q=nobody@example.com", follow_redirects=False)
    assert foreign.status_code == unknown.status_code == 404
    assert world.bo not in foreign.text and "location" not in foreign.headers
    own = client.get(f"/customers?q={EMAIL}", follow_redirects=False)
    assert own.status_code == 303 and own.headers["location"] == f"/customers/{world.ana}"


def test_ingest_key_gets_no_customer_ids(
    app_client: TestClient, seeded: Engine, world: World
) -> None:
    event = {"event_id": "x1", "name": "login", "email": EMAIL}
    one = app_client.post("/api/v1/interactions", json=event, headers=make_key(seeded, "ingest"))
    assert one.status_code == 201 and one.json()["customer_id"] is None
    assert world.ana not in one.text
    batch = app_client.post(
        "/api/v1/interactions/batch",
        json={"events": [{"event_id": "x2", "name": "login", "email": EMAIL}]},
        headers=make_key(seeded, "ingest"),
    )
    assert batch.status_code == 200 and world.ana not in batch.text
    segment = app_client.post(
        "/v1/track", json={"userId": "u", "event": "x", "properties": {"email": EMAIL}},
        headers=make_key(seeded, "ingest"),
    )  # fmt: skip
    assert segment.status_code == 200 and world.ana not in segment.text


@pytest.mark.parametrize("role", ("agent", "viewer"))
def test_initiatives_are_not_there_for_agents_and_viewers(
    app_client: TestClient, seeded: Engine, role: str
) -> None:
    assert app_client.get("/api/v1/initiatives", headers=_key(seeded, role)).status_code == 404
    client = as_role(app_client, seeded, role)
    assert client.get("/initiatives").status_code == 404


def _staff(engine: Engine) -> None:
    with engine.begin() as conn:
        auth.create_user(conn, "billing.agent@example.com", "agent", team_key="billing_team")
        auth.create_user(conn, "other.manager@example.com", "manager", department_key="sales")


@pytest.mark.parametrize("role", RESTRICTED)
def test_assignee_filter_does_not_reveal_staff_outside_the_scope(
    app_client: TestClient, seeded: Engine, world: World, role: str
) -> None:
    _staff(seeded)
    headers = _key(seeded, role)
    staff = app_client.get("/api/v1/cases?assignee=other.manager@example.com", headers=headers)
    nobody = app_client.get("/api/v1/cases?assignee=nobody@example.com", headers=headers)
    assert staff.status_code == nobody.status_code == 200
    assert staff.json() == nobody.json() == []


def test_manager_cannot_assign_a_case_to_a_user_of_another_department(
    app_client: TestClient, seeded: Engine, world: World
) -> None:
    _staff(seeded)
    with seeded.begin() as conn:
        own_agent = auth.create_user(conn, "chat.agent@example.com", "agent",
                                     team_key="service_team")  # fmt: skip
        manager = auth.create_user(conn, "svc.manager@example.com", "manager",
                                   department_key="service")  # fmt: skip
        token = auth.create_api_key(conn, "read", user_id=manager)
    headers = {"Authorization": f"Bearer {token}"}
    foreign = app_client.post("/api/v1/cases/case-ana/assign", headers=headers,
                              json={"assignee": "billing.agent@example.com"})  # fmt: skip
    assert foreign.status_code == 404 and "in your scope" in foreign.json()["detail"]
    body = {"case_ids": ["case-ana"], "assignee": "other.manager@example.com"}
    bulk = app_client.post("/api/v1/cases/assign", headers=headers, json=body)
    assert bulk.status_code == 404
    own = app_client.post("/api/v1/cases/case-ana/assign", headers=headers,
                          json={"assignee": "chat.agent@example.com"})  # fmt: skip
    assert own.status_code == 200 and own.json()["assignee_id"] == own_agent

"""Feedback explorer and customer 360 pages, with role scoping enforced in the queries."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.interactions import service as interactions
from tests.web.factories import add_responses, company
from tests.web.test_pages import as_role


def _customer(engine: Engine) -> str:
    """Ana: an order delivered late, then a detractor response at delivery."""
    events = [
        {"event_id": "e1", "type": "identify", "email": "Ana@Example.com", "crm_id": "C1",
         "traits": {"segment": "enterprise"}, "timestamp": "2026-09-01T10:00:00Z"},
        {"event_id": "e2", "name": "order_delivered", "email": "ana@example.com",
         "touchpoint": "delivery", "timestamp": "2026-09-03T10:00:00Z"},
        {"event_id": "e3", "name": "invoice_sent", "crm_id": "C1", "touchpoint": "invoice",
         "timestamp": "2026-09-04T10:00:00Z"},
    ]  # fmt: skip
    with engine.begin() as conn:
        results = interactions.ingest(conn, events, "api")
    assert {r.status for r in results} == {"stored"}
    customer_id = results[0].customer_id
    assert customer_id
    add_responses(engine, "delivery", [2], month=9, comment="parcel arrived late, <b>angry</b>",
                  customer_id=customer_id)  # fmt: skip
    return customer_id


def test_explorer_filters_and_links_to_the_customer(app_client: TestClient, seeded: Engine) -> None:
    company(seeded)
    customer_id = _customer(seeded)
    client = as_role(app_client, seeded, "cx_lead")
    page = client.get("/feedback?band=detractor&q=parcel")
    assert page.status_code == 200
    assert ">1 response</p>" in page.text
    assert f'href="/customers/{customer_id}"' in page.text
    assert "&lt;b&gt;angry&lt;/b&gt;" in page.text  # customer text is always escaped
    segment = client.get("/feedback?segment=enterprise")
    assert ">1 response</p>" in segment.text
    billing = client.get("/feedback?department=billing&band=promoter")
    assert ">16 responses</p>" in billing.text  # 2 of 5 scores (9, 10) x 8
    assert client.get("/feedback?band=angry").status_code == 422


def test_viewer_sees_no_comments_or_customers(app_client: TestClient, seeded: Engine) -> None:
    company(seeded)
    customer_id = _customer(seeded)
    client = as_role(app_client, seeded, "viewer")
    page = client.get("/feedback?band=detractor&touchpoint=delivery")
    assert page.status_code == 200 and "parcel" not in page.text and "late again" not in page.text
    assert f"/customers/{customer_id}" not in page.text
    assert client.get(f"/customers/{customer_id}").status_code == 404
    assert client.get("/feedback?q=parcel").status_code == 422


def test_manager_sees_their_departments_feedback_and_customers(
    app_client: TestClient, seeded: Engine
) -> None:
    company(seeded)
    customer_id = _customer(seeded)  # touched billing's invoice too
    client = as_role(app_client, seeded, "manager")  # billing
    page = client.get("/feedback?department=supply_chain")
    assert "late again" not in page.text and "charged twice" in page.text
    assert client.get(f"/customers/{customer_id}").status_code == 200


def test_customer_360_shows_one_timeline_across_departments(
    app_client: TestClient, seeded: Engine
) -> None:
    company(seeded)
    customer_id = _customer(seeded)
    client = as_role(app_client, seeded, "cx_lead")
    found = client.get("/customers?q=ANA@example.com", follow_redirects=False)
    assert found.headers["location"] == f"/customers/{customer_id}"
    page = client.get(f"/customers/{customer_id}")
    text = page.text
    # Events read as words: "Order delivered", not order_delivered.
    assert "Order delivered" in text and "Invoice sent" in text and "NPS 2" in text
    assert "order_delivered" not in text
    assert "Supply Chain &amp; Delivery" in text and "Billing &amp; Finance" in text
    assert text.index("Invoice sent") < text.index("Order delivered")  # newest first
    missing = client.get("/customers?q=nobody@example.com")
    assert missing.status_code == 404 and "no customer" in missing.text


def test_agents_see_the_customers_in_their_teams_cases(
    app_client: TestClient, seeded: Engine
) -> None:
    from cxm.actions import service as actions

    company(seeded)
    ana = _customer(seeded)  # a detractor at delivery (Supply Chain's team)
    with seeded.begin() as conn:
        (chat,) = interactions.ingest(
            conn, [{"event_id": "c1", "name": "chat", "email": "cy@example.com",
                    "touchpoint": "support_chat"}], "api",
        )  # fmt: skip
    add_responses(seeded, "support_chat", [1], month=9, customer_id=chat.customer_id)
    with seeded.begin() as conn:
        actions.apply_default_rules(conn)
        actions.run_rules(conn)
    client = as_role(app_client, seeded, "agent")  # works in Customer Service's team
    assert client.get(f"/customers/{chat.customer_id}").status_code == 200
    assert client.get(f"/customers/{ana}").status_code == 404

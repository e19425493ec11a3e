"""The org REST API through the real ASGI app: auth, validation, CRUD."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.conftest import make_key


def test_reading_needs_a_key(app_client: TestClient) -> None:
    response = app_client.get("/api/v1/departments")
    assert response.status_code == 401
    assert "cxm keys create" in response.json()["detail"]
    bad = app_client.get("/api/v1/departments", headers={"Authorization": "Bearer cxm_nope"})
    assert bad.status_code == 401


def test_read_key_lists_but_cannot_write(
    app_client: TestClient, read_headers: dict[str, str]
) -> None:
    listing = app_client.get("/api/v1/departments", headers=read_headers)
    assert listing.status_code == 200 and len(listing.json()) == 10
    denied = app_client.post(
        "/api/v1/departments", json={"key": "legal", "name": "Legal"}, headers=read_headers
    )
    assert denied.status_code == 403


def test_a_read_key_of_no_user_reads_but_changes_nothing(
    app_client: TestClient, seeded: Engine, read_headers: dict[str, str]
) -> None:
    bare = make_key(seeded, "read")
    assert app_client.get("/api/v1/cases", headers=bare).status_code == 200
    body = {"vectors": "tfidf", "k": 3}
    refused = app_client.post("/api/v1/text/themes/discover", json=body, headers=bare)
    assert refused.status_code == 403 and "--user" in refused.json()["detail"]
    assert app_client.post("/api/v1/cases/assign", json={}, headers=bare).status_code == 403
    # the same scope held by a CX lead's key acts with the lead's role
    started = app_client.post("/api/v1/text/themes/discover", json=body, headers=read_headers)
    assert started.status_code == 202


def test_touchpoint_crud_and_validation(
    app_client: TestClient, admin_headers: dict[str, str]
) -> None:
    body = {"key": "delivery", "name": "Delivery", "channel": "delivery", "stage": "receive",
            "department_key": "supply_chain"}  # fmt: skip
    created = app_client.post("/api/v1/touchpoints", json=body, headers=admin_headers)
    assert created.status_code == 201, created.text
    assert created.json()["team_key"] == "delivery_team"
    dup = app_client.post("/api/v1/touchpoints", json=body, headers=admin_headers)
    assert dup.status_code == 409
    wrong = app_client.post(
        "/api/v1/touchpoints", json=body | {"key": "x1", "stage": "teleport"}, headers=admin_headers
    )
    assert wrong.status_code == 422 and "stage" in wrong.json()["detail"]
    missing = app_client.post(
        "/api/v1/touchpoints", json=body | {"key": "x2", "department_key": "legal"},
        headers=admin_headers,
    )  # fmt: skip
    assert missing.status_code == 404 and "legal" in missing.json()["detail"]
    moved = app_client.patch(
        "/api/v1/touchpoints/delivery", json={"department_key": "operations"}, headers=admin_headers
    )
    assert moved.status_code == 200 and moved.json()["team_key"] == "operations_team"
    assert app_client.get("/api/v1/touchpoints/nope", headers=admin_headers).status_code == 404


def test_health_openapi_plotly_and_home_page(app_client: TestClient) -> None:
    assert app_client.get("/healthz").json()["status"] == "ok"
    spec = app_client.get("/api/openapi.json").json()
    assert "/api/v1/touchpoints" in spec["paths"]
    js = app_client.get("/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000
    assert app_client.get("/", follow_redirects=False).headers["location"] == "/login?next=/"

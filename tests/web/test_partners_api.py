"""Partners over REST through the real app: an admin creates and edits them, bad input is a
4xx that writes nothing, each role lists only the partners in its scope, and a partner user's
view holds no figure of the company's agents."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.org import auth
from cxm.org import service as org
from tests.web.factories import company


def _headers(engine: Engine, email: str, role: str, **where: str) -> dict[str, str]:
    with engine.begin() as conn:
        user_id = auth.create_user(conn, email, role, **where)
        token = auth.create_api_key(conn, "read", user_id=user_id)
    return {"Authorization": f"Bearer {token}"}


def _run(engine: Engine) -> dict[str, Any]:
    """Which partner runs each touchpoint, and every partner's record, as stored."""
    with engine.connect() as conn:
        return {
            "touchpoints": {t.key: t.partner_key for t in org.list_touchpoints(conn)},
            "partners": [p.model_dump() for p in org.list_partners(conn)],
        }


@pytest.fixture
def couriers(seeded: Engine, app_client: TestClient, admin_headers: dict[str, str]) -> None:
    """SwiftPost runs home delivery; Fitters Ltd runs nothing yet."""
    company(seeded)
    for body in (
        {"key": "swiftpost", "name": "SwiftPost Couriers", "kind": "courier",
         "touchpoints": ["delivery"]},
        {"key": "fitters", "name": "Fitters Ltd", "kind": "installer"},
    ):  # fmt: skip
        made = app_client.post("/api/v1/partners", json=body, headers=admin_headers)
        assert made.status_code == 201, made.text


def test_admin_creates_and_edits_a_partner(
    app_client: TestClient, seeded: Engine, admin_headers: dict[str, str], couriers: None
) -> None:
    listed = app_client.get("/api/v1/partners", headers=admin_headers).json()
    assert listed == [
        {"key": "fitters", "name": "Fitters Ltd", "kind": "installer", "touchpoints": []},
        {"key": "swiftpost", "name": "SwiftPost Couriers", "kind": "courier",
         "touchpoints": ["delivery"]},
    ]  # fmt: skip
    changed = app_client.patch(
        "/api/v1/partners/fitters", headers=admin_headers,
        json={"name": "Fitters & Sons", "touchpoints": ["invoice", "support_chat"]},
    )  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"key": "fitters", "name": "Fitters & Sons", "kind": "installer",
                              "touchpoints": ["invoice", "support_chat"]}  # fmt: skip
    # Replacing the list hands what is left out back in-house.
    fewer = app_client.patch("/api/v1/partners/fitters", headers=admin_headers,
                             json={"touchpoints": ["invoice"]})  # fmt: skip
    assert fewer.status_code == 200 and fewer.json()["touchpoints"] == ["invoice"]
    stored = _run(seeded)["touchpoints"]
    assert stored["support_chat"] is None and stored["invoice"] == "fitters"
    assert stored["delivery"] == "swiftpost"
    # The org dimension follows at once: the metric API slices by the new partner.
    assert (
        app_client.get("/api/v1/partners/fitters", headers=admin_headers).json()["name"]
        == "Fitters & Sons"
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "says"),
    [
        ("post", "/api/v1/partners", {"key": "swiftpost", "name": "X", "kind": "courier"},
         409, "already exists"),
        ("post", "/api/v1/partners", {"key": "Bad Key", "name": "X", "kind": "courier"},
         422, "key"),
        ("post", "/api/v1/partners", {"key": "vans", "name": "Vans", "kind": "airline"},
         422, "kind"),
        ("post", "/api/v1/partners", {"key": "vans", "name": "", "kind": "courier"},
         422, "name"),
        ("post", "/api/v1/partners", {"key": "vans", "name": "Vans", "kind": "courier",
                                      "touchpoints": ["invoice", "nowhere"]}, 404, "nowhere"),
        ("post", "/api/v1/partners", {"key": "vans", "name": "Vans", "kind": "courier",
                                      "touchpoints": ["invoice", "delivery"]}, 409, "swiftpost"),
        ("post", "/api/v1/partners", {"key": "vans", "name": "Vans", "kind": "courier",
                                      "touchpoints": ["invoice", "invoice"]}, 422, "invoice"),
        ("post", "/api/v1/partners", {"key": "vans", "name": "Vans", "kind": "courier",
                                      "colour": "red"}, 422, "colour"),
        ("patch", "/api/v1/partners/fitters", {"name": None}, 422, "null"),
        ("patch", "/api/v1/partners/fitters", {"touchpoints": ["invoice", "delivery"]},
         409, "swiftpost"),
        ("patch", "/api/v1/partners/fitters", {"name": "F", "touchpoints": ["nowhere"]},
         404, "nowhere"),
        ("patch", "/api/v1/partners/nobody", {"name": "N"}, 404, "swiftpost"),
    ],
)  # fmt: skip
def test_bad_partner_input_is_refused_and_writes_nothing(
    app_client: TestClient, seeded: Engine, admin_headers: dict[str, str], couriers: None,
    method: str, path: str, body: dict[str, Any], status: int, says: str,
) -> None:  # fmt: skip
    before = _run(seeded)
    response = getattr(app_client, method)(path, json=body, headers=admin_headers)
    assert response.status_code == status, response.text
    assert says in response.text
    assert _run(seeded) == before


def test_only_admins_create_or_edit_partners(
    app_client: TestClient, seeded: Engine, couriers: None
) -> None:
    manager = _headers(seeded, "lea@example.com", "manager", department_key="supply_chain")
    body = {"key": "vans", "name": "Vans", "kind": "courier"}
    assert app_client.post("/api/v1/partners", json=body, headers=manager).status_code == 403
    patched = app_client.patch("/api/v1/partners/swiftpost", json={"name": "Mine"},
                               headers=manager)  # fmt: skip
    assert patched.status_code == 403
    assert _run(seeded)["partners"][1]["name"] == "SwiftPost Couriers"


def test_each_role_lists_the_partners_in_its_scope(
    app_client: TestClient, seeded: Engine, admin_headers: dict[str, str], couriers: None
) -> None:
    app_client.patch("/api/v1/partners/fitters", json={"touchpoints": ["invoice"]},
                     headers=admin_headers)  # fmt: skip
    courier = _headers(seeded, "dispatch@swiftpost.example", "partner", partner_key="swiftpost")
    manager = _headers(seeded, "lea@example.com", "manager", department_key="supply_chain")
    billing = _headers(seeded, "bill@example.com", "manager", department_key="billing")
    service = _headers(seeded, "sam@example.com", "manager", department_key="service")
    viewer = _headers(seeded, "val@example.com", "viewer")

    def listed(headers: dict[str, str]) -> list[str]:
        response = app_client.get("/api/v1/partners", headers=headers)
        assert response.status_code == 200, response.text
        return [p["key"] for p in response.json()]

    assert listed(courier) == ["swiftpost"]
    assert listed(manager) == ["swiftpost"]
    assert listed(billing) == ["fitters"]
    assert listed(service) == []
    assert listed(viewer) == ["fitters", "swiftpost"]
    assert app_client.get("/api/v1/partners/swiftpost", headers=courier).status_code == 200
    for headers, other in ((courier, "fitters"), (manager, "fitters"), (service, "swiftpost")):
        response = app_client.get(f"/api/v1/partners/{other}", headers=headers)
        assert response.status_code == 404, (other, response.text)
    # Writing stays closed to a partner user.
    refused = app_client.patch("/api/v1/partners/swiftpost", json={"name": "Ours"},
                               headers=courier)  # fmt: skip
    assert refused.status_code == 403
    assert _run(seeded)["partners"][1]["name"] == "SwiftPost Couriers"


def test_a_partner_user_cannot_slice_by_the_agents_who_handled_interactions(
    app_client: TestClient, seeded: Engine, admin_headers: dict[str, str], couriers: None
) -> None:
    courier = _headers(seeded, "dispatch@swiftpost.example", "partner", partner_key="swiftpost")
    for query in ("by=trigger:agent_id", "filter=trigger:agent_id=E1", "by=trigger:Agent_ID"):
        response = app_client.get(f"/api/v1/metrics/csat?{query}", headers=courier)
        assert response.status_code == 403, (query, response.text)
        assert "employees" in response.json()["detail"]
    # Staff who read everything may slice by agent (here no answer was triggered yet, so the
    # dimension is unknown rather than refused); the partner keeps its aggregate.
    staff = app_client.get("/api/v1/metrics/csat?by=trigger:agent_id", headers=admin_headers)
    assert staff.status_code == 422 and "triggered" in staff.text, staff.text
    assert app_client.get("/api/v1/metrics/csat", headers=courier).status_code == 200

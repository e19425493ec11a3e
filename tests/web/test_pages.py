"""Organization and settings pages through the real app, per role."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.org import auth
from cxm.org import service as org
from tests.web.test_sessions import PASSWORD, sign_in

ROLES_USERS = {
    "admin": ("admin@example.com", None, None),
    "cx_lead": ("lead@example.com", None, None),
    "manager": ("manager@example.com", "billing", None),
    "agent": ("agent@example.com", None, "service_team"),
    "viewer": ("viewer@example.com", None, None),
}


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def as_role(client: TestClient, engine: Engine, role: str) -> TestClient:
    email, department, team = ROLES_USERS[role]
    with engine.begin() as conn:
        auth.create_user(
            conn, email, role, password=PASSWORD, department_key=department, team_key=team
        )
    assert sign_in(client, email) == 303
    return client


@pytest.mark.parametrize("role", ["cx_lead", "manager", "agent", "viewer"])
def test_settings_is_not_there_for_other_roles(
    app_client: TestClient, seeded: Engine, role: str
) -> None:
    client = as_role(app_client, seeded, role)
    assert client.get("/settings").status_code == 404
    assert client.get("/settings/org.yaml").status_code == 404
    home = client.get("/org")
    assert home.status_code == 200 and 'href="/settings"' not in home.text
    assert "Assign</button>" not in home.text


def test_admin_assigns_an_unowned_touchpoint_from_the_matrix(
    app_client: TestClient, seeded: Engine
) -> None:
    with seeded.begin() as conn:
        org.ensure_touchpoints(conn, {"kiosk"})
    client = as_role(app_client, seeded, "admin")
    home = client.get("/org")
    assert "Unowned" in home.text
    forged = client.post("/org/touchpoints/kiosk", data={"department_key": "sales"})
    assert forged.status_code == 422
    done = client.post(
        "/org/touchpoints/kiosk", data={"department_key": "sales", "csrf_token": _csrf(home.text)}
    )
    assert done.status_code == 200 and "Unowned" not in done.text
    assert str(done.url).endswith("/org#tp-kiosk")
    with seeded.connect() as conn:
        kiosk = org.get_touchpoint(conn, "kiosk")
    assert kiosk.department_key == "sales" and kiosk.team_key == "sales_team"


def test_admin_creates_users_and_keys(app_client: TestClient, seeded: Engine) -> None:
    client = as_role(app_client, seeded, "admin")
    token = _csrf(client.get("/settings").text)
    made = client.post(
        "/settings/users",
        data={"email": "New@Example.com", "role": "manager", "department_key": "billing",
              "password": "long enough pw", "csrf_token": token},
    )  # fmt: skip
    assert made.status_code == 200 and "created manager new@example.com" in made.text
    refused = client.post(
        "/settings/users",
        data={"email": "x@example.com", "role": "agent", "password": "long enough pw",
              "csrf_token": token},
    )  # fmt: skip
    assert refused.status_code == 422 and "needs a team" in refused.text
    key_page = client.post("/settings/keys", data={"scope": "ingest", "csrf_token": token})
    shown = re.search(r'<code class="key">(cxm_[^<]+)</code>', key_page.text)
    assert shown
    with seeded.connect() as conn:
        assert auth.authenticate_key(conn, shown.group(1)) is not None
    assert shown.group(1) not in client.get("/settings").text  # shown once


def test_org_file_upload_applies_or_explains(app_client: TestClient, seeded: Engine) -> None:
    client = as_role(app_client, seeded, "admin")
    token = _csrf(client.get("/settings").text)
    good = (
        "touchpoints:\n  - {key: kiosk, name: Kiosk, channel: store, stage: buy,\n"
        "     owner: {department: sales}}\n"
    )
    bad = good.replace("department: sales", "department: legal")
    refused = client.post(
        "/settings/org", data={"csrf_token": token}, files={"file": ("org.yaml", bad)}
    )
    assert refused.status_code == 422 and "line 3" in refused.text and "legal" in refused.text
    with seeded.connect() as conn:
        assert not org.list_touchpoints(conn)
    applied = client.post(
        "/settings/org", data={"csrf_token": token}, files={"file": ("org.yaml", good)}
    )
    assert applied.status_code == 200 and "created 1 touchpoints" in applied.text
    exported = client.get("/settings/org.yaml")
    assert "key: kiosk" in exported.text

"""Every role against every staff page and every read endpoint of the REST API.

The expected status per role follows the role table in docs/web.md: what is outside a role's
scope answers 404, as if it did not exist; a viewer never gets personal data.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.org import auth
from tests.web.conftest import COMMENT, EMAIL, World
from tests.web.test_pages import ROLES_USERS, as_role

ROLES = ("admin", "cx_lead", "manager", "agent", "viewer")
ALL = set(ROLES)


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
    yield "/initiatives", {"admin", "cx_lead", "manager"}
    yield "/people", {"admin", "cx_lead"}
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

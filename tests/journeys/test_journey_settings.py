"""Editing journey definitions in the settings, through the real app: a mistake is shown with
its line and nothing is written; a good definition is saved as a version and the journey
list changes."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.journeys import definitions
from cxm.org import auth
from tests.web.test_sessions import PASSWORD, _csrf, sign_in

GOOD = """\
name: onboarding
description: New members from sign-up to their first order.
case: customer
activities:
  - {event: signed_up}
  - {event: order_placed}
start: [signed_up]
success: [order_placed]
max_duration: 14d
"""
# Line 8 names a success that is not an activity of the journey.
BAD = GOOD.replace("success: [order_placed]", "success: [first_order]")


def _as(client: TestClient, engine: Engine, role: str) -> TestClient:
    email = f"{role}@example.com"
    with engine.begin() as conn:
        auth.create_user(conn, email, role, password=PASSWORD,
                         department_key="billing" if role == "manager" else None,
                         team_key="service_team" if role == "agent" else None)  # fmt: skip
    assert sign_in(client, email) == 303
    return client


@pytest.fixture
def admin(app_client: TestClient, seeded: Engine) -> TestClient:
    return _as(app_client, seeded, "admin")


def _folder(client: TestClient) -> Path:
    return definitions.installation_dir(client.app.state.settings.data_dir)  # type: ignore[attr-defined]


def _post(client: TestClient, text: str, action: str, journey: str = "") -> str:
    page = client.get("/settings/journeys")
    response = client.post("/settings/journeys", data={
        "definition": text, "journey": journey, "action": action, "csrf_token": _csrf(page.text),
    })  # fmt: skip
    return f"{response.status_code} {unescape(response.text)}"


def _listed(client: TestClient) -> set[str]:
    return set(re.findall(r'href="/journeys/([a-z0-9_]+)"', client.get("/journeys").text))


def test_a_mistake_is_shown_with_its_line_and_nothing_is_saved(admin: TestClient) -> None:
    before = _listed(admin)
    answer = _post(admin, BAD, "save")
    assert answer.startswith("422 ")
    assert "Nothing was saved" in answer
    assert "journeys/new.yaml line 8, success.0: 'first_order' is not an activity" in answer
    broken = _post(admin, "name: onboarding\nactivities: [\n", "save")
    assert broken.startswith("422 ") and "not valid YAML" in broken and "line " in broken
    assert not _folder(admin).exists() or not list(_folder(admin).rglob("*.yaml"))
    assert _listed(admin) == before


def test_checking_writes_nothing(admin: TestClient) -> None:
    answer = _post(admin, GOOD, "check")
    assert (
        answer.startswith("200 ") and "Journey 'onboarding' is valid; nothing saved yet" in answer
    )
    assert "onboarding" not in _listed(admin)


def test_a_saved_journey_joins_the_list_and_each_save_is_a_version(admin: TestClient) -> None:
    assert "onboarding" not in _listed(admin)
    answer = _post(admin, GOOD, "save")
    assert answer.startswith("200 ") and "Saved journey 'onboarding' as version 1" in answer
    assert "onboarding" in _listed(admin)
    assert admin.get("/journeys/onboarding").status_code == 200
    edited = GOOD.replace("max_duration: 14d", "max_duration: 21d")
    answer = _post(admin, edited, "save", journey="onboarding")
    assert "as version 2" in answer
    page = admin.get("/settings/journeys?journey=onboarding")
    assert "max_duration: 21d" in unescape(page.text)
    assert definitions.get("onboarding", [_folder(admin)]).max_hours == 21 * 24
    first = admin.get("/settings/journeys?journey=onboarding&version=1")
    assert first.status_code == 200 and "max_duration: 14d" in unescape(first.text)
    assert admin.get("/settings/journeys?journey=onboarding&version=9").status_code == 404


def test_a_shipped_journey_is_replaced_by_its_edited_version(admin: TestClient) -> None:
    shipped = admin.get("/settings/journeys?journey=renewal")
    text = unescape(re.search(r"<textarea[^>]*>(.*?)</textarea>", shipped.text, re.S).group(1))
    assert text == (definitions.SHIPPED / "renewal.yaml").read_text()
    edited = text.replace("max_duration: ", "max_duration: 1d # was ", 1)
    assert "Saved journey 'renewal' as version 1" in _post(admin, edited, "save", "renewal")
    assert definitions.get("renewal", [_folder(admin)]).max_hours == 24
    listed = admin.get("/settings/journeys").text
    assert "edited here (replaces the shipped one)" in listed


@pytest.mark.parametrize("role", ["cx_lead", "manager", "viewer", "agent"])
def test_only_an_admin_edits_journeys(app_client: TestClient, seeded: Engine, role: str) -> None:
    client = _as(app_client, seeded, role)
    assert client.get("/settings/journeys").status_code == 404
    form = client.get("/account/password")
    response = client.post("/settings/journeys", data={
        "definition": GOOD, "action": "save", "csrf_token": _csrf(form.text),
    })  # fmt: skip
    assert response.status_code == 404
    assert not _folder(client).exists()

"""Every restricted role against every route of the OpenAPI schema and every staff page,
pointed at objects of another department, team and customer.

An object outside the caller's scope must answer 403 or 404, never its data; no answer may
carry personal data the role may not read (the planted markers below), and none is a 5xx.
Routes are read from the schema and the page routers, so a new route is covered unasked.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.actions.tables import case_notes, cases
from cxm.org import auth
from cxm.web import cases as case_pages
from cxm.web import dashboards, explore, journey_pages, pages, people, sessions, survey_pages
from tests.web.conftest import COMMENT, EMAIL, World
from tests.web.factories import add_responses
from tests.web.test_pages import as_role
from tests.web.test_roles import _key

BO_EMAIL = "bo@example.com"
BO_COMMENT = "bo says the chat bot looped forever"
FAR_NOTE = "promised bo a refund by friday"
FAR_CASE = "case-far"
FOREIGN_USER = "sales.agent@example.com"


@dataclass(frozen=True)
class Foreign:
    """Objects outside the restricted roles' scopes, and what must never leak of them."""

    world: World
    markers: dict[str, tuple[str, ...]]  # role -> strings its answers must not contain


@pytest.fixture
def foreign(seeded: Engine, world: World) -> Foreign:
    # Bo: touched support chat (service) only; a sales team case about him with a note.
    add_responses(seeded, "support_chat", [2], comment=BO_COMMENT, customer_id=world.bo)
    at = dt.datetime(2026, 9, 6, 12, tzinfo=dt.UTC)
    with seeded.begin() as conn:
        conn.execute(cases.insert().values(
            id=FAR_CASE, dedupe_key="test|response|far", rule_key="test",
            source_kind="response", source_id="far", title="Refund for a looping chat",
            customer_id=world.bo, touchpoint_key="support_chat", department_key="sales",
            team_key="sales_team", status="new", priority="p1", sla_state="ok", opened_at=at,
            first_response_due=at, resolution_due=at, updated_at=at,
        ))  # fmt: skip
        conn.execute(case_notes.insert().values(
            id="note-far", case_id=FAR_CASE, author="x", body=FAR_NOTE, created_at=at
        ))  # fmt: skip
        auth.create_user(conn, FOREIGN_USER, "agent", team_key="sales_team")
    outside = (BO_EMAIL, world.bo, FAR_CASE, FAR_NOTE, FOREIGN_USER)
    return Foreign(
        world=world,
        markers={
            # The manager runs billing: Bo, his chat comment and the sales case are foreign.
            "manager": (*outside, BO_COMMENT),
            # The agent works service_team's cases: Bo has none there.
            "agent": outside,
            # A viewer reads no personal data at all; cases it reads, masked (ids stay).
            "viewer": (BO_EMAIL, world.bo, FAR_NOTE, FOREIGN_USER, BO_COMMENT, EMAIL, COMMENT),
        },
    )


RESTRICTED = ("manager", "agent", "viewer")
# Path parameters naming scoped objects, filled with a foreign one; the rest name org objects
# (departments, touchpoints, surveys, metrics) that every role may read. A viewer reads every
# case (masked), so for a viewer only customers are foreign.
SCOPED = {"customer_id": lambda f: f.world.bo, "case_id": lambda f: FAR_CASE}
VIEWER_READS = {"case_id"}
ORG_VALUES = {
    "key": "billing", "name": "nps", "scope": "global", "initiative_id": "none",
    "key_id": "none",
}  # fmt: skip
# Query parameters that name people or teams: pointed at foreign ones, they must filter to
# nothing rather than answer with the foreign objects.
QUERY_VALUES = {
    "identifier": BO_EMAIL, "assignee": FOREIGN_USER, "team": "sales_team",
    "department": "sales", "touchpoint": "support_chat", "by": "trait:email",
    "filter": f"trait:email={BO_EMAIL}",
}  # fmt: skip
# Bodies for state changes on a scoped object (each valid, so only the scope can refuse it).
BODIES: dict[str, Any] = {
    "/api/v1/cases/{case_id}/assign": {"assignee": FOREIGN_USER},
    "/api/v1/cases/{case_id}/status": {"status": "closed", "followup": False},
    "/api/v1/cases/{case_id}/notes": {"body": "taken over"},
    "/api/v1/cases/{case_id}/root-causes": {"root_causes": ["other"]},
    "/api/v1/cases/assign": {"case_ids": [FAR_CASE], "assignee": FOREIGN_USER},
}


def _fill(path: str, f: Foreign, role: str) -> tuple[str, bool]:
    """The path with its parameters filled; True when one names an object foreign to role."""
    scoped = False

    def value(match: re.Match[str]) -> str:
        nonlocal scoped
        name = match.group(1)
        if name in SCOPED:
            scoped = scoped or not (role == "viewer" and name in VIEWER_READS)
            return str(SCOPED[name](f))
        return ORG_VALUES.get(name, "none")

    return re.sub(r"\{([^}]+)\}", value, path), scoped


def api_calls(
    schema: dict[str, Any], f: Foreign, role: str
) -> Iterator[tuple[str, str, Any, bool]]:
    """(method, url, json body, names a foreign object) for every operation in the schema."""
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            url, scoped = _fill(path, f, role)
            if path in BODIES and method != "get":
                scoped = True  # viewers may not work cases at all
            queries = [p["name"] for p in op.get("parameters", []) if p["in"] == "query"]
            named = {q: QUERY_VALUES[q] for q in queries if q in QUERY_VALUES}
            if method == "get":
                yield method, url, None, scoped
                for q, v in named.items():
                    yield method, f"{url}?{q}={v}", None, False
            else:
                yield method, url, BODIES.get(path, {}), scoped


def _leaks(text: str, markers: tuple[str, ...], asked: str) -> list[str]:
    """Markers in an answer, except those the request itself named (an echo is no leak)."""
    return [m for m in markers if m in text and m not in asked]


@pytest.mark.parametrize("role", RESTRICTED)
def test_no_api_route_answers_a_restricted_key_with_a_foreign_object(
    app_client: TestClient, seeded: Engine, foreign: Foreign, role: str
) -> None:
    headers = _key(seeded, role)
    schema = app_client.get("/api/openapi.json").json()
    wrong = []
    for method, url, body, scoped in api_calls(schema, foreign, role):
        response = app_client.request(method.upper(), url, headers=headers, json=body)
        status = response.status_code
        if status >= 500:
            wrong.append(f"{method.upper()} {url}: {status}")
        elif scoped and status not in (403, 404):
            wrong.append(f"{method.upper()} {url}: {status} for a foreign object")
        leaked = _leaks(response.text, foreign.markers[role], f"{url} {body}")
        if leaked:
            wrong.append(f"{method.upper()} {url}: {status} carries {leaked}")
    assert not wrong, f"{role}:\n" + "\n".join(wrong)


def page_routes() -> Iterator[str]:
    for module in (
        sessions,
        pages,
        dashboards,
        explore,
        survey_pages,
        case_pages,
        people,
        journey_pages,
    ):
        for route in module.router.routes:
            if "GET" in getattr(route, "methods", ()):
                yield route.path  # type: ignore[attr-defined]


def test_page_routes_are_all_known_here() -> None:
    # A new page must be added to the lists below (as scoped, own or org), so it is checked.
    paths = set(page_routes())
    assert paths == {
        "/login", "/account/password", "/org", "/settings", "/settings/org.yaml", "/",
        "/departments", "/departments/{key}", "/feedback", "/customers",
        "/customers/{customer_id}", "/surveys", "/surveys/{key}", "/cases",
        "/cases/root-causes", "/cases/{case_id}", "/initiatives", "/initiatives/{initiative_id}",
        "/rules", "/rules/edit", "/people", "/journeys", "/journeys/{name}", "/partners/{key}",
        "/inproduct/sample/help/account", "/settings/journeys", "/people/me",
    }  # fmt: skip


@pytest.mark.parametrize("role", RESTRICTED)
def test_no_page_shows_a_restricted_role_a_foreign_object(
    app_client: TestClient, seeded: Engine, foreign: Foreign, role: str
) -> None:
    client = as_role(app_client, seeded, role)
    wrong = []
    urls = [_fill(p, foreign, role) for p in page_routes()]
    # Another department's scorecard is foreign to a manager.
    urls.append(("/departments/sales", role == "manager"))
    urls += [(f"/customers?q={BO_EMAIL}", False), (f"/cases?assignee={FOREIGN_USER}", False),
             ("/cases?team=sales_team", False), ("/feedback?department=sales", False)]  # fmt: skip
    for url, scoped in urls:
        response = client.get(url, headers={"accept": "text/html"}, follow_redirects=False)
        status = response.status_code
        if status >= 500:
            wrong.append(f"{url}: {status}")
        elif scoped and status not in (403, 404):
            wrong.append(f"{url}: {status} for a foreign object")
        if status in (301, 302, 303, 307) and foreign.world.bo in response.headers["location"]:
            wrong.append(f"{url}: redirects to {response.headers['location']}")
        leaked = _leaks(response.text, foreign.markers[role], url)
        if leaked:
            wrong.append(f"{url}: {status} carries {leaked}")
    assert not wrong, f"{role}:\n" + "\n".join(wrong)

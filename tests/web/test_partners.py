"""Partner users and scorecards through the real app: a courier's user reads the metrics of
the touchpoints the courier runs and its scorecard, and every other page and API answers 404."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.org import auth
from cxm.org import service as org
from cxm.yamldoc import parse
from tests.web.conftest import COMMENT, EMAIL, World
from tests.web.test_roles import api_expectations, page_expectations
from tests.web.test_sessions import PASSWORD

PARTNERS = """\
partners:
  - {key: swiftpost, name: SwiftPost Couriers, kind: courier}
  - {key: fitters, name: Fitters Ltd, kind: installer}
touchpoints:
  - {key: delivery, name: Home delivery, channel: delivery, stage: receive,
     owner: {department: supply_chain}, partner: swiftpost}
"""
# The delivery answers tests.web.factories.company plants (August, then September).
DELIVERY_SCORES = [2, 3, 5, 6, 8, 9, 10] * 6 + [1, 2, 3, 4, 6, 9] * 8


def nps(scores: list[int]) -> float:
    """Net Promoter Score by its published definition: % promoters (9-10) - % detractors (0-6)."""
    promoters = sum(s >= 9 for s in scores)
    detractors = sum(s <= 6 for s in scores)
    return 100.0 * (promoters - detractors) / len(scores)


@pytest.fixture
def courier(seeded: Engine, world: World) -> dict[str, str]:
    """The delivery touchpoint run by SwiftPost, and the API-key headers of SwiftPost's user."""
    with seeded.begin() as conn:
        org.apply_org(conn, parse(PARTNERS))
        user_id = auth.create_user(
            conn, "dispatch@swiftpost.example", "partner", password=PASSWORD,
            partner_key="swiftpost",
        )  # fmt: skip
        token = auth.create_api_key(conn, "read", user_id=user_id)
    return {"Authorization": f"Bearer {token}"}


def test_partner_key_reads_its_partners_metrics_only(
    app_client: TestClient, world: World, courier: dict[str, str]
) -> None:
    wrong = []
    for path, _ in api_expectations(world):
        if path.startswith("/api/v1/metrics/"):
            continue
        response = app_client.get(path, headers=courier)
        if response.status_code != 404:
            wrong.append(f"{path}: {response.status_code}")
        assert EMAIL not in response.text and COMMENT not in response.text, path
    for path in ("/api/v1/metrics/alerts", "/api/v1/metrics/targets",
                 "/api/v1/partners/fitters", "/api/v1/partners/fitters/scorecard",
                 "/api/v1/employees", "/api/v1/insights/attribution"):  # fmt: skip
        if (code := app_client.get(path, headers=courier).status_code) != 404:
            wrong.append(f"{path}: {code}")
    assert not wrong, "; ".join(wrong)
    listed = app_client.get("/api/v1/partners", headers=courier)
    assert [p["key"] for p in listed.json()] == ["swiftpost"]

    mine = app_client.get("/api/v1/metrics/nps", headers=courier)
    assert mine.status_code == 200, mine.text
    [row] = mine.json()["rows"]
    assert row["n"] == len(DELIVERY_SCORES)
    assert row["value"] == pytest.approx(nps(DELIVERY_SCORES))
    # Sliced by touchpoint or department, only the partner's touchpoint appears.
    by_tp = app_client.get("/api/v1/metrics/nps?by=touchpoint", headers=courier).json()
    assert [r["touchpoint"] for r in by_tp["rows"]] == ["delivery"]
    by_dept = app_client.get("/api/v1/metrics/nps?by=department", headers=courier).json()
    assert [r["department"] for r in by_dept["rows"]] == ["supply_chain"]
    # Asking for another partner, or for a customer's personal trait, is refused.
    other = app_client.get("/api/v1/metrics/nps?filter=partner=fitters", headers=courier)
    assert other.status_code == 404
    personal = app_client.get("/api/v1/metrics/nps?by=trait:email", headers=courier)
    assert personal.status_code == 403 and EMAIL not in personal.text


def test_partner_user_gets_no_staff_page(
    app_client: TestClient, world: World, courier: dict[str, str]
) -> None:
    form = app_client.get("/login").text
    token = form.split('name="csrf_token" value="')[1].split('"')[0]
    landed = app_client.post(
        "/login", follow_redirects=False,
        data={"email": "dispatch@swiftpost.example", "password": PASSWORD, "csrf_token": token,
              "next": "/"},
    )  # fmt: skip
    assert landed.status_code == 303 and landed.headers["location"] == "/partners/swiftpost"
    own = app_client.get("/partners/swiftpost")
    assert own.status_code == 200 and "SwiftPost Couriers" in own.text
    # touchpoints by their names, not their keys
    assert "running: Home delivery" in own.text and '<th scope="row">Home delivery</th>' in own.text
    assert f"{nps(DELIVERY_SCORES):.1f}" in own.text
    assert EMAIL not in own.text and COMMENT not in own.text
    assert app_client.get("/partners/fitters").status_code == 404
    wrong = []
    for path, _ in page_expectations(world):
        response = app_client.get(path, headers={"accept": "text/html"})
        if response.status_code != 404:
            wrong.append(f"{path}: {response.status_code}")
        assert EMAIL not in response.text and COMMENT not in response.text, path
    assert not wrong, "; ".join(wrong)
    # The session reaches the metric API as the key does, narrowed the same way.
    [row] = app_client.get("/api/v1/metrics/nps").json()["rows"]
    assert row["value"] == pytest.approx(nps(DELIVERY_SCORES))


def test_scorecard_for_the_partner_and_for_staff(
    app_client: TestClient, seeded: Engine, world: World, courier: dict[str, str],
    admin_headers: dict[str, str],
) -> None:  # fmt: skip
    card = app_client.get("/api/v1/partners/swiftpost/scorecard", headers=courier)
    assert card.status_code == 200, card.text
    body = card.json()
    assert body["partner"] == {
        "key": "swiftpost", "name": "SwiftPost Couriers", "kind": "courier",
        "touchpoints": ["delivery"],
    }  # fmt: skip
    figures = {m["metric"]: m for m in body["metrics"]}
    assert figures["nps"]["value"] == pytest.approx(nps(DELIVERY_SCORES))
    assert figures["nps"]["n"] == len(DELIVERY_SCORES)
    assert figures["csat"]["n"] == 0  # the planted answers carry no CSAT
    assert {r["touchpoint"] for r in body["by_touchpoint"]} == {"delivery"}
    assert EMAIL not in card.text and COMMENT not in card.text
    # Staff who read everything see every partner's card; the same figure for the same data.
    staff = app_client.get("/api/v1/partners/swiftpost/scorecard", headers=admin_headers).json()
    assert staff["metrics"] == body["metrics"]
    idle = app_client.get("/api/v1/partners/fitters/scorecard", headers=admin_headers).json()
    assert {m["metric"]: m["n"] for m in idle["metrics"]}["nps"] == 0
    # Staff slice any metric by partner; touchpoints run in-house read as "(none)".
    rows = app_client.get("/api/v1/metrics/nps?by=partner", headers=admin_headers).json()["rows"]
    by_partner = {r["partner"]: r for r in rows}
    assert set(by_partner) == {"swiftpost", "(none)"}
    assert by_partner["swiftpost"]["value"] == pytest.approx(nps(DELIVERY_SCORES))
    missing = app_client.get("/api/v1/partners/nobody/scorecard", headers=admin_headers)
    assert missing.status_code == 404 and "swiftpost" in missing.text

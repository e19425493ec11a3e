"""The rules pages and the initiative form through the real app, per role."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.actions import service
from cxm.org.scope import Scope
from cxm.yamldoc import parse
from tests.actions.conftest import DETRACTOR_RULES, add_response, setup_org
from tests.web.test_pages import as_role

ALL = Scope("cx_lead")
# Items at column 0, as the exported YAML writes them.
LOW_CSAT = """\
- key: low_csat
  name: Low CSAT
  when: {response: {csat_max: 2}}
  priority: p3
"""


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    return match.group(1)


def _text(page: str) -> str:
    return html.unescape(page)


def _textarea(page: str) -> str:
    match = re.search(r"<textarea[^>]*>(.*?)</textarea>", page, re.S)
    assert match
    return _text(match.group(1))


def _rules_store(engine: Engine) -> None:
    with engine.begin() as conn:
        setup_org(conn)
        service.apply_rules(conn, parse(DETRACTOR_RULES))
        add_response(conn, None, "delivery", nps=2)
        service.run_rules(conn)


def _stored(engine: Engine) -> dict[str, bool]:
    with engine.connect() as conn:
        return {r["key"]: r["enabled"] for r in service.list_rules(conn)}


def test_rules_page_lists_each_rule_with_its_cases(app_client: TestClient, seeded: Engine) -> None:
    _rules_store(seeded)
    client = as_role(app_client, seeded, "cx_lead")
    page = client.get("/rules")
    assert page.status_code == 200
    row = re.search(r'<tr id="rule-detractor">(.*?)</tr>', _text(page.text), re.S)
    assert row
    cells = re.sub(r"<[^>]+>", " ", row.group(1))
    assert "NPS ≤ 6" in cells and "p2" in cells and "first response 4h" in cells
    assert "touchpoint owner" in cells and "Enabled" in cells
    assert re.search(r'class="num">1<', row.group(1))  # one case opened
    assert 'href="/rules"' in page.text  # in the menu


@pytest.mark.parametrize("role", ["manager", "agent", "viewer"])
def test_rules_pages_are_not_there_for_other_roles(
    app_client: TestClient, seeded: Engine, role: str
) -> None:
    _rules_store(seeded)
    client = as_role(app_client, seeded, role)
    assert client.get("/rules").status_code == 404
    assert client.get("/rules/edit").status_code == 404
    token = _csrf(client.get("/").text)
    forged = client.post("/rules/detractor/enabled", data={"enabled": "no", "csrf_token": token})
    assert forged.status_code == 404
    assert _stored(seeded) == {"detractor": True}
    assert 'href="/rules"' not in client.get("/").text


def test_check_names_the_line_and_changes_nothing(app_client: TestClient, seeded: Engine) -> None:
    _rules_store(seeded)
    client = as_role(app_client, seeded, "admin")
    editor = client.get("/rules/edit")
    text = _textarea(editor.text)
    assert "key: detractor" in text and "nps_max: 6" in text
    token = _csrf(editor.text)
    bad = text.replace("nps_max: 6", "nps_max: 11") + LOW_CSAT
    line = next(i for i, s in enumerate(bad.splitlines(), 1) if "nps_max: 11" in s)
    shown = client.post("/rules/edit", data={"rules": bad, "action": "check", "csrf_token": token})
    assert shown.status_code == 422
    found = re.search(r'id="problems">(.*?)</div>', shown.text, re.S)
    assert found
    problems = _text(found.group(1))
    assert f"line {line}" in problems and "nps_max" in problems
    assert "nps_max: 11" in _text(shown.text)  # the text is kept for fixing
    # A bad rule among good ones saves nothing, not even the good ones.
    saved = client.post("/rules/edit", data={"rules": bad, "action": "save", "csrf_token": token})
    assert saved.status_code == 422 and _stored(seeded) == {"detractor": True}
    good = text + LOW_CSAT
    ok = client.post("/rules/edit", data={"rules": good, "action": "check", "csrf_token": token})
    assert ok.status_code == 200 and "2 rule(s) valid; nothing saved yet" in ok.text
    assert _stored(seeded) == {"detractor": True}
    unknown_team = re.sub(r"route:\n(\s+)", r"route:\n\1team: nobody_team\n\1", text)
    assert "nobody_team" in unknown_team
    wrong = client.post(
        "/rules/edit", data={"rules": unknown_team, "action": "check", "csrf_token": token}
    )
    assert wrong.status_code == 422 and "nobody_team" in _text(wrong.text)
    forged = client.post("/rules/edit", data={"rules": good, "action": "save"})
    assert forged.status_code == 422 and _stored(seeded) == {"detractor": True}


def test_save_applies_the_whole_set_and_is_idempotent(
    app_client: TestClient, seeded: Engine
) -> None:
    _rules_store(seeded)
    client = as_role(app_client, seeded, "cx_lead")
    editor = client.get("/rules/edit")
    token = _csrf(editor.text)
    text = _textarea(editor.text)
    edited = text.replace("priority: p2", "priority: p1") + LOW_CSAT
    first = client.post(
        "/rules/edit", data={"rules": edited, "action": "save", "csrf_token": token}
    )
    assert first.status_code == 200
    assert "created low_csat" in first.text and "changed detractor" in first.text
    again = client.post(
        "/rules/edit", data={"rules": edited, "action": "save", "csrf_token": token}
    )
    assert "Saved: no change." in again.text
    with seeded.connect() as conn:
        assert service.get_rule(conn, "detractor").priority == "p1"
        low = service.get_rule(conn, "low_csat").when.response
        assert low is not None and low.csat_max == 2
    only_low = "rules:\n" + LOW_CSAT
    check = client.post(
        "/rules/edit", data={"rules": only_low, "action": "check", "csrf_token": token}
    )
    assert "Saving removes: detractor" in check.text
    client.post("/rules/edit", data={"rules": only_low, "action": "save", "csrf_token": token})
    assert _stored(seeded) == {"low_csat": True}
    with seeded.connect() as conn:
        assert len(service.list_cases(conn, ALL)) == 1  # the rule's cases stay


def test_disabling_a_rule_stops_it_opening_cases(app_client: TestClient, seeded: Engine) -> None:
    _rules_store(seeded)
    client = as_role(app_client, seeded, "admin")
    token = _csrf(client.get("/rules").text)
    off = client.post("/rules/detractor/enabled", data={"enabled": "no", "csrf_token": token})
    assert off.status_code == 200 and "Disabled" in off.text
    assert _stored(seeded) == {"detractor": False}
    with seeded.begin() as conn:
        assert service.get_rule(conn, "detractor").enabled is False
        add_response(conn, None, "delivery", nps=1)
        assert service.run_rules(conn) == {}
    client.post("/rules/detractor/enabled", data={"enabled": "yes", "csrf_token": token})
    with seeded.begin() as conn:
        assert service.run_rules(conn) == {"detractor": 1}
    forged = client.post("/rules/detractor/enabled", data={"enabled": "no"})
    assert forged.status_code == 422 and _stored(seeded) == {"detractor": True}
    missing = client.post("/rules/nope/enabled", data={"enabled": "no", "csrf_token": token})
    assert missing.status_code == 404


def _initiative_form(token: str, **change: object) -> dict[str, object]:
    form: dict[str, object] = {
        "name": "Two-hour delivery windows",
        "description": "A window the evening before.",
        "owner_department": "supply_chain",
        "root_causes": ["late_delivery"],
        "touchpoints": ["delivery"],
        "metric": "csat",
        "start_date": "2026-09-01",
        "expected_effect": "0.3",
        "csrf_token": token,
    }
    return form | change


def _initiatives(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return service.list_initiatives(conn)


def test_cx_lead_creates_an_initiative_from_the_form(
    app_client: TestClient, seeded: Engine
) -> None:
    with seeded.begin() as conn:
        setup_org(conn)
    client = as_role(app_client, seeded, "cx_lead")
    page = client.get("/initiatives")
    assert 'id="initiative-form"' in page.text
    made = client.post(
        "/initiatives", data=_initiative_form(_csrf(page.text)), follow_redirects=False
    )
    assert made.status_code == 303
    (init,) = _initiatives(seeded)
    assert made.headers["location"] == f"/initiatives/{init['id']}"
    assert init["root_causes"] == ["late_delivery"] and init["touchpoints"] == ["delivery"]
    assert init["metric"] == "csat" and init["expected_effect"] == pytest.approx(0.3)
    shown = client.get(made.headers["location"])
    assert shown.status_code == 200 and "Two-hour delivery windows" in shown.text
    assert 'id="effect"' in shown.text


BAD_INPUT: list[tuple[dict[str, object], str]] = [
    ({"start_date": ""}, "start date"),
    ({"touchpoints": []}, "touchpoints"),
    ({"name": "  "}, "name"),
    ({"expected_effect": "a lot"}, "expected effect: 'a lot' is not a number"),
    ({"root_causes": ["bad_weather"]}, "root_causes: bad_weather not in the taxonomy"),
    ({"owner_department": "logistics"}, "owner_department: 'logistics' does not exist"),
    ({"touchpoints": ["kiosk"]}, "touchpoints: kiosk not found"),
]


def test_bad_initiative_input_is_shown_on_the_page(app_client: TestClient, seeded: Engine) -> None:
    with seeded.begin() as conn:
        setup_org(conn)
    client = as_role(app_client, seeded, "admin")
    token = _csrf(client.get("/initiatives").text)
    for change, says in BAD_INPUT:
        bad = client.post("/initiatives", data=_initiative_form(token, **change))
        assert bad.status_code == 422, change
        error = re.search(r'id="initiative-error">(.*?)</p>', _text(bad.text), re.S)
        assert error and says in error.group(1), (change, error)
        assert "A window the evening before." in bad.text  # what was typed stays in the form
    assert _initiatives(seeded) == []


def test_managers_create_initiatives_for_their_own_department_only(
    app_client: TestClient, seeded: Engine
) -> None:
    with seeded.begin() as conn:
        setup_org(conn)
    client = as_role(app_client, seeded, "manager")  # manages billing
    page = client.get("/initiatives")
    owners = re.search(r'<select id="i-owner"[^>]*>(.*?)</select>', page.text, re.S)
    assert owners and re.findall(r'value="([^"]+)"', owners.group(1)) == ["billing"]
    token = _csrf(page.text)
    theirs = client.post("/initiatives", data=_initiative_form(token))
    assert theirs.status_code == 422 and "own department ('billing')" in _text(theirs.text)
    assert _initiatives(seeded) == []
    mine = client.post(
        "/initiatives",
        data=_initiative_form(token, owner_department="billing", root_causes=["billing_error"]),
        follow_redirects=False,
    )
    assert mine.status_code == 303
    assert [i["owner_department"] for i in _initiatives(seeded)] == ["billing"]
    forged = client.post("/initiatives", data=_initiative_form("forged"))
    assert forged.status_code == 422


def test_agents_get_no_initiative_form(app_client: TestClient, seeded: Engine) -> None:
    with seeded.begin() as conn:
        setup_org(conn)
    client = as_role(app_client, seeded, "agent")
    assert client.get("/initiatives").status_code == 404
    page = client.get("/cases")
    refused = client.post("/initiatives", data=_initiative_form(_csrf(page.text)))
    assert refused.status_code == 404 and _initiatives(seeded) == []

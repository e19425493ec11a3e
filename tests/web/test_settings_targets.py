"""Settings → metric targets: listed, set (company-wide or per slice), refused when wrong."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.metrics import load
from cxm.metrics.service import list_targets
from tests.web.factories import company
from tests.web.test_pages import _csrf, as_role


def _department_row(html: str, name: str) -> str:
    row = re.search(rf"{name}</a></th>(.*?)</tr>", html, re.S)
    assert row, f"no row for {name}"
    return row.group(1)


def test_every_metric_is_listed_with_its_shipped_target(
    app_client: TestClient, seeded: Engine
) -> None:
    client = as_role(app_client, seeded, "admin")
    page = client.get("/settings")
    assert page.status_code == 200 and "Metric targets" in page.text
    for name, metric in load().items():
        row = re.search(rf'<tr id="target-{name}">(.*?)</tr>', page.text, re.S)
        assert row, f"{name} is not listed"
        if metric.target is not None:
            assert f"{metric.target:g}" in row.group(1)


def test_a_slice_target_shows_on_the_overview_at_once(
    app_client: TestClient, seeded: Engine
) -> None:
    company(seeded)
    client = as_role(app_client, seeded, "admin")
    before = client.get("/")  # fills the dashboards' result cache
    assert "off target (30.0)" in _department_row(before.text, "Billing &amp; Finance")
    page = client.get("/settings")
    done = client.post(
        "/settings/targets",
        data={"metric": "nps", "target": "-50", "dimension": "department", "value": "billing",
              "csrf_token": _csrf(page.text)},
    )  # fmt: skip
    assert done.status_code == 200 and "target for nps for department=billing set to -50" in (
        done.text
    )
    assert "department=billing: -50" in done.text
    with seeded.connect() as conn:
        saved = [(t["metric"], t["dimension"], t["value"], t["target"]) for t in list_targets(conn)]
    assert saved == [("nps", "department", "billing", -50.0)]
    after = client.get("/")
    assert "on target (-50.0)" in _department_row(after.text, "Billing &amp; Finance")
    # Other departments keep the shipped target.
    assert "(30.0)" in _department_row(after.text, "Supply Chain &amp; Delivery")


def test_a_company_target_replaces_the_shipped_one(app_client: TestClient, seeded: Engine) -> None:
    company(seeded)
    client = as_role(app_client, seeded, "admin")
    client.get("/")
    token = _csrf(client.get("/settings").text)
    done = client.post("/settings/targets", data={"metric": "csat", "target": "55,5",
                                                   "csrf_token": token})  # fmt: skip
    assert done.status_code == 200 and "all: 55.5" in done.text
    with seeded.connect() as conn:
        assert list_targets(conn)[0]["target"] == 55.5


def test_mistakes_are_explained_and_change_nothing(app_client: TestClient, seeded: Engine) -> None:
    client = as_role(app_client, seeded, "admin")
    token = _csrf(client.get("/settings").text)
    cases = [
        ({"metric": "nps", "target": "lots"}, "target: 'lots' is not a number"),
        ({"metric": "nps", "target": "40", "dimension": "department"}, "give both dimension"),
        ({"metric": "nps", "target": "40", "dimension": "planet", "value": "mars"},
         "unknown dimension 'planet'"),
        ({"metric": "happiness", "target": "40"}, "happiness"),
        ({"metric": "nps", "target": "nan"}, "finite number"),
    ]  # fmt: skip
    for form, message in cases:
        refused = client.post("/settings/targets", data={**form, "csrf_token": token})
        assert refused.status_code == 422, form
        assert message in html.unescape(refused.text), form
    again = client.post("/settings/targets", data={"metric": "nps", "target": "lots",
                                                    "csrf_token": token})  # fmt: skip
    assert 'value="lots"' in again.text  # the form keeps what was typed
    forged = client.post("/settings/targets", data={"metric": "nps", "target": "40"})
    assert forged.status_code in (403, 422)
    with seeded.connect() as conn:
        assert list_targets(conn) == []


def test_only_admins_set_targets(app_client: TestClient, seeded: Engine) -> None:
    client = as_role(app_client, seeded, "cx_lead")
    token = _csrf(client.get("/account/password").text)
    refused = client.post(
        "/settings/targets", data={"metric": "nps", "target": "40", "csrf_token": token}
    )
    assert refused.status_code == 404
    with seeded.connect() as conn:
        assert list_targets(conn) == []

"""Overview and department scorecards show the metrics layer's numbers, scoped by role."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.metrics import compute
from cxm.web import board
from cxm.web.board import FrameCache
from tests.web.factories import add_responses, company
from tests.web.test_board import Clock
from tests.web.test_pages import as_role


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def test_overview_numbers_match_the_metrics_layer(app_client: TestClient, seeded: Engine) -> None:
    company(seeded)
    client = as_role(app_client, seeded, "cx_lead")
    page = client.get("/")
    assert page.status_code == 200
    nps = compute(seeded, "nps").iloc[0]
    assert f">{_fmt(nps['value'])}</span>" in page.text
    assert f"n={int(nps['n'])}" in page.text
    by_dept = compute(seeded, "nps", ["department"])
    delivery = by_dept[by_dept["department"] == "supply_chain"].iloc[0]
    row = re.search(r"Supply Chain &amp; Delivery</a></th>(.*?)</tr>", page.text, re.S)
    assert row and _fmt(delivery["value"]) in row.group(1)
    assert "plotly.min.js" in page.text and "NPS by month as a table" in page.text


def test_filters_live_in_the_url(app_client: TestClient, seeded: Engine) -> None:
    company(seeded)
    client = as_role(app_client, seeded, "cx_lead")
    page = client.get("/?department=billing&start=2026-09-01&end=2026-09-30")
    billing = compute(seeded, "nps", filters={"department": "billing"}).iloc[0]
    assert f">{_fmt(billing['value'])}</span>" in page.text
    assert 'value="2026-09-01"' in page.text and '<option value="billing" selected>' in page.text
    bad = client.get("/?start=yesterday")
    assert bad.status_code == 422 and "not a date" in bad.text


def test_manager_sees_only_their_department(app_client: TestClient, seeded: Engine) -> None:
    company(seeded)
    client = as_role(app_client, seeded, "manager")  # manager of billing
    page = client.get("/?department=supply_chain")  # asks for another department
    billing = compute(seeded, "nps", filters={"department": "billing"}).iloc[0]
    assert f">{_fmt(billing['value'])}</span>" in page.text
    assert "Supply Chain &amp; Delivery</a>" not in page.text
    assert client.get("/departments/supply_chain").status_code == 404
    own = client.get("/departments/billing")
    assert own.status_code == 200 and "Invoice" in own.text


def test_scorecard_lists_touchpoints_with_scores(app_client: TestClient, seeded: Engine) -> None:
    company(seeded)
    client = as_role(app_client, seeded, "viewer")
    page = client.get("/departments/supply_chain")
    assert page.status_code == 200 and "Home delivery" in page.text
    tp = compute(seeded, "nps", ["touchpoint"], filters={"department": "supply_chain"}).iloc[0]
    assert _fmt(tp["value"]) in page.text
    assert client.get("/departments/nope").status_code == 404


@pytest.mark.parametrize("path", ["/", "/departments", "/departments/billing"])
def test_empty_store_pages_say_what_to_do(
    app_client: TestClient, seeded: Engine, path: str
) -> None:
    client = as_role(app_client, seeded, "cx_lead")
    page = client.get(path)
    assert page.status_code == 200
    if path == "/":
        assert "cxm import responses" in page.text


def test_scorecard_shows_comments_journeys_and_hides_text_from_viewers(
    app_client: TestClient, seeded: Engine
) -> None:
    company(seeded)
    lead = as_role(app_client, seeded, "cx_lead")
    page = lead.get("/departments/supply_chain")
    assert "late again" in page.text  # the latest comments at its touchpoints
    assert "In the customer&#39;s journey" in page.text or "In the customer's journey" in page.text
    viewer = as_role(TestClient(app_client.app), seeded, "viewer")
    assert "late again" not in viewer.get("/departments/supply_chain").text


def test_segment_and_department_filters_combine(app_client: TestClient, seeded: Engine) -> None:
    company(seeded)
    client = as_role(app_client, seeded, "cx_lead")
    page = client.get("/?segment=enterprise&department=billing")
    assert page.status_code == 200
    assert '<option value="enterprise" selected>' in page.text
    card = client.get("/departments/supply_chain?segment=enterprise")
    assert card.status_code == 200 and '<option value="enterprise" selected>' in card.text
    frame = compute(seeded, "nps", ["department"], filters={"segment": "enterprise"})
    assert frame.empty or set(frame["department"]) <= {"billing", "service", "supply_chain"}


def test_pages_share_results_and_the_refresh_keeps_them_current(
    app_client: TestClient, seeded: Engine
) -> None:
    company(seeded)
    clock = Clock()
    app_client.app.state.frame_cache = FrameCache(ttl=60, clock=clock)  # type: ignore[attr-defined]
    client = as_role(app_client, seeded, "cx_lead")
    n_before = int(compute(seeded, "nps").iloc[0]["n"])
    assert f"n={n_before}" in client.get("/").text
    add_responses(seeded, "invoice", [10] * 5, month=9)
    clock.now += 30
    assert f"n={n_before}" in client.get("/").text  # shared for a minute: not recomputed
    clock.now += 15  # 45 s old: the background pass recomputes what pages use
    assert board.refresh(app_client.app) > 0  # type: ignore[arg-type]
    assert f"n={n_before + 5}" in client.get("/").text


def test_every_department_is_listed_with_the_reason_a_figure_is_missing(
    app_client: TestClient, seeded: Engine
) -> None:
    from cxm.org import service as org

    company(seeded)
    with seeded.connect() as conn:
        departments = org.list_departments(conn)
        owners = {t.department_key for t in org.list_touchpoints(conn)}
    client = as_role(app_client, seeded, "cx_lead")
    page = client.get("/")
    scored = set(compute(seeded, "nps", ["department"])["department"])
    for d in departments:
        name = d.name.replace("&", "&amp;")
        row = re.search(rf">{re.escape(name)}</a></th>(.*?)</tr>", page.text, re.S)
        assert row, f"{d.key} is missing from the overview"
        if d.key not in owners:
            assert "owns no touchpoints" in row.group(1)
        elif d.key not in scored:
            assert "no NPS answers at its touchpoints" in row.group(1)
    assert "—" not in re.search(r"By department(.*?)</table>", page.text, re.S).group(1)  # type: ignore[union-attr]
    index = client.get("/departments")
    assert all(d.name.replace("&", "&amp;") in index.text for d in departments)

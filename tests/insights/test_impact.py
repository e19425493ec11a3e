"""An initiative's difference in differences against the other touchpoints, on DuckDB and
PostgreSQL, checked against the 2x2 table of means computed by hand."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from cxm.customers.facts import customer_traits
from cxm.insights import impact
from cxm.store.analytics import reading
from cxm.surveys.facts import responses_table

START = dt.date(2026, 6, 1)
# (touchpoint, days from the start, csat): the treated touchpoint rises by 1.5 after the start,
# the company by 0.5 everywhere: the initiative's own effect is 1.0.
PLAN = [
    *[("delivery", -30 + i, 3 + i % 2) for i in range(6)],
    *[("delivery", 5 + i, 5 + i % 2 - 0.5 * (i % 2 == 1)) for i in range(6)],
    *[("support_chat", -30 + i, 3 + i % 3) for i in range(9)],
    *[("support_chat", 5 + i, 3.5 + i % 3) for i in range(9)],
]


@pytest.fixture
def store(engine: Engine) -> tuple[Engine, pd.DataFrame]:
    base = dt.datetime.combine(START, dt.time(12), tzinfo=dt.UTC)
    rows, traits, hand = [], [], []
    for i, (tp, day, score) in enumerate(PLAN):
        when = base + dt.timedelta(days=day)
        value = round(score)
        rows.append({
            "id": f"r{i}", "survey_key": "s", "survey_version": 1, "respondent_kind": "customer",
            "customer_id": f"c{i}", "touchpoint_key": tp, "started_at": when,
            "submitted_at": when, "completed": True, "csat": value, "source": "import",
        })  # fmt: skip
        traits.append({"customer_id": f"c{i}", "name": "segment", "value": "consumer",
                       "set_at": when})  # fmt: skip
        hand.append({"treated": tp == "delivery", "after": day >= 0, "value": value})
    with engine.begin() as conn:
        conn.execute(responses_table.insert(), rows)
        conn.execute(customer_traits.insert(), traits)
    return engine, pd.DataFrame(hand)


def test_difference_in_differences_is_the_2x2_table_of_means(
    store: tuple[Engine, pd.DataFrame],
) -> None:
    engine, hand = store
    with reading(engine) as con:
        out = impact.initiative_impact(con, ["delivery"], "csat", START, days=60)
    m = hand.groupby(["treated", "after"]).value.mean()
    expected = (m[True, True] - m[True, False]) - (m[False, True] - m[False, False])
    assert out["plain"] == pytest.approx(expected)
    assert out["estimate"] == pytest.approx(expected)  # one segment: the model adds nothing
    assert out["low"] < out["estimate"] < out["high"]
    assert out["cells"]["treated_after"]["n"] == int((hand.treated & hand.after).sum())


def test_too_few_answers_say_so_and_an_unknown_metric_is_refused(
    store: tuple[Engine, pd.DataFrame],
) -> None:
    from cxm.errors import Invalid

    engine, _ = store
    with reading(engine) as con:
        out = impact.initiative_impact(con, ["returns"], "csat", START, days=60)
        assert out["estimate"] is None and "fewer than two" in out["note"]
        with pytest.raises(Invalid, match="choose one of nps, csat, ces"):
            impact.initiative_impact(con, ["delivery"], "wow", START)


def test_the_initiative_api_gives_its_difference_in_differences(
    app_client: object, seeded: Engine, admin_headers: dict[str, str]
) -> None:
    from cxm.org import service as org
    from cxm.yamldoc import parse
    from tests.actions.conftest import ORG

    with seeded.begin() as conn:
        org.apply_org(conn, parse(ORG, "org.yaml"))
    client: Any = app_client
    made = client.post("/api/v1/initiatives", headers=admin_headers, json={
        "name": "Courier change", "owner_department": "supply_chain",
        "touchpoints": ["delivery"], "metric": "csat", "start_date": "2026-06-01"})  # fmt: skip
    assert made.status_code == 201, made.text
    got = client.get(f"/api/v1/initiatives/{made.json()['id']}", headers=admin_headers)
    assert got.status_code == 200, got.text
    did = got.json()["difference_in_differences"]
    assert did["method"].startswith("difference in differences")
    assert did["estimate"] is None and did["window_days"] == 90  # no answers yet


def test_the_initiative_page_shows_the_apis_difference_in_differences_and_its_control(
    app_client: Any, store: tuple[Engine, pd.DataFrame], admin_headers: dict[str, str]
) -> None:
    from cxm.org import service as org
    from cxm.yamldoc import parse
    from tests.actions.conftest import ORG
    from tests.web.test_pages import as_role

    engine, hand = store
    with engine.begin() as conn:
        org.apply_org(conn, parse(ORG, "org.yaml"))
    made = app_client.post("/api/v1/initiatives", headers=admin_headers, json={
        "name": "Courier change", "owner_department": "supply_chain",
        "touchpoints": ["delivery"], "metric": "csat", "start_date": "2026-06-01"})  # fmt: skip
    assert made.status_code == 201, made.text
    ident = made.json()["id"]
    did = app_client.get(f"/api/v1/initiatives/{ident}", headers=admin_headers).json()[
        "difference_in_differences"
    ]
    m = hand.groupby(["treated", "after"]).value.mean()
    expected = (m[True, True] - m[True, False]) - (m[False, True] - m[False, False])
    assert did["estimate"] == pytest.approx(expected)
    assert did["control_touchpoints"] == ["support_chat"] and did["segments"] == ["consumer"]
    page = as_role(app_client, engine, "cx_lead").get(f"/initiatives/{ident}")
    assert page.status_code == 200, page.text

    def shown(element: str) -> float:
        return float(page.text.split(f'id="{element}">', 1)[1].split("<", 1)[0])

    assert shown("did-estimate") == round(did["estimate"], 2) == round(expected, 2)
    assert (shown("did-low"), shown("did-high")) == (round(did["low"], 2), round(did["high"], 2))
    summary = page.text.split('id="did-summary">', 1)[1].split("</p>", 1)[0]
    assert summary == did["summary"].replace("&", "&amp;")
    assert f"moved {abs(expected):.2f} CSAT points more than in the control group" in summary
    assert "other touchpoints (support_chat)" in summary
    assert "Control: support_chat" in page.text

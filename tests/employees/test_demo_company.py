"""Employees in the demo company: the directory loads, eNPS by team matches an independent
computation from the demo's files, and the planted eNPS penalty of friction is recovered.

The default demo company (2,000 customers, 6 months, seed 7) is generated and loaded once;
``ground_truth.json`` and the CSV files are read here only, to say what the answers must be.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from markupsafe import escape
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cxm.cli.main import app as cli
from cxm.demo.load import LoadSummary
from cxm.employees import service
from cxm.employees.confidential import Node, disclosed
from cxm.metrics import service as metrics
from cxm.store.analytics import reading


@pytest.fixture(scope="module")
def company(
    tmp_path_factory: pytest.TempPathFactory, default_demo: Callable[[Path], Any]
) -> Iterator[tuple[Engine, Path, LoadSummary]]:
    """The default demo company (2,000 customers, 6 months, seed 7), loaded."""
    root = tmp_path_factory.mktemp("employees-demo")
    engine, summary = default_demo(root)
    yield engine, root, summary
    engine.dispose()


@pytest.fixture(scope="module")
def truth(company: tuple[Engine, Path, LoadSummary]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((company[1] / "files" / "ground_truth.json").read_text())
    return data["employees"]


def test_the_demo_loads_its_directory(company: tuple[Engine, Path, LoadSummary]) -> None:
    files = pd.read_csv(company[1] / "files" / "employees.csv")
    assert company[2].steps["employees"].startswith(f"{len(files)} created")


def test_enps_by_team_matches_pandas_on_the_demo_files(
    company: tuple[Engine, Path, LoadSummary],
) -> None:
    engine, root, _ = company
    staff = pd.read_csv(root / "files" / "employees.csv")
    pulse = pd.read_csv(root / "files" / "pulse.csv").merge(staff, on="employee_id")
    # Over the whole range a team counts the answers of the months the rule shows it in, with
    # its department and the company in the tree of that month (overlapping ranges must not
    # differ by a small group).
    month = pd.to_datetime(pulse["submitted_at"]).dt.strftime("%Y-%m")
    kept = pd.Series(False, index=pulse.index)
    for _, answers in pulse.groupby(month):
        nodes = {"company:company": Node(None, 0, answers["employee_id"].nunique())}
        for dept, n in answers.groupby("department")["employee_id"].nunique().items():
            nodes[f"department:{dept}"] = Node("company:company", 1, int(n))
        for (dept, team), n in (
            answers.groupby(["department", "team"])["employee_id"].nunique().items()
        ):
            nodes[f"team:{team}"] = Node(f"department:{dept}", 2, int(n))
        shown = disclosed(nodes, 5)
        kept[answers.index] = [f"team:{t}" in shown for t in answers["team"]]
    counted = pulse[kept].copy()
    counted["cat"] = pd.cut(counted["enps"], [-1, 6, 8, 10], labels=["d", "p", "a"])
    expected = counted.groupby("team")["cat"].value_counts(normalize=True).unstack().fillna(0)
    expected = 100 * (expected["a"] - expected["d"])
    people = counted.groupby("team")["employee_id"].nunique()
    results = {r.key: r for r in service.pulse_results(engine, "team")}
    assert set(results) == set(pulse["team"])
    for team, r in results.items():
        if r.hidden:
            assert r.enps is None
            continue
        assert people[team] >= 5
        assert r.respondents == people[team]
        assert r.enps == pytest.approx(expected[team], abs=0.051)
        assert r.enps_low is not None and r.enps_high is not None
        assert r.enps_low <= r.enps <= r.enps_high
    assert [t for t in results if people.get(t, 0) < 5 and not results[t].hidden] == []
    # The rule costs figures, not most of them: at least half the teams are still shown.
    assert sum(not r.hidden for r in results.values()) >= len(results) // 2


def test_team_friction_rates_match_the_planted_shares(
    company: tuple[Engine, Path, LoadSummary], truth: dict[str, Any]
) -> None:
    engine, root, _ = company
    with reading(engine) as con:
        panel = service.panel(con, root, "quarter")
    rate = panel.groupby("team_key").apply(
        lambda g: g["frictions"].sum() / g["volume"].sum() if g["volume"].sum() else 0.0,
        include_groups=False,
    )
    for team, share in truth["team_friction_share"].items():
        assert rate.get(team, 0.0) == pytest.approx(share, abs=0.01), team


def test_the_planted_enps_penalty_of_friction_is_recovered(
    company: tuple[Engine, Path, LoadSummary], truth: dict[str, Any]
) -> None:
    engine, root, _ = company
    result = service.people_and_experience(engine, root, "month")
    penalty = result.relations[0]
    assert (penalty.x, penalty.y, penalty.lag) == ("friction_rate", "score_mean", 0)
    assert penalty.slope is not None and penalty.low is not None and penalty.high is not None
    assert penalty.high < 0  # the sign
    assert penalty.low <= truth["pulse_friction_effect"] <= penalty.high  # the size
    assert penalty.teams == len(truth["team_friction_share"])
    assert penalty.periods == 6


def test_lagged_relations_state_what_they_rest_on(
    company: tuple[Engine, Path, LoadSummary],
) -> None:
    engine, root, _ = company
    result = service.people_and_experience(engine, root, "quarter")
    lagged = [r for r in result.relations if r.lag == 1]
    assert {r.y for r in lagged} == {"csat_mean", "ces_mean"}
    for r in lagged:
        # The demo surveys customers at four teams' touchpoints only: too few for a slope.
        assert r.slope is None or r.teams >= 3
        assert r.slope is not None or "too few" in r.note


def test_cxm_metrics_enps_by_team_gives_one_row_per_team(
    company: tuple[Engine, Path, LoadSummary], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, root, _ = company
    monkeypatch.setenv("CXM_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CXM_DATA_DIR", str(root))
    result = CliRunner().invoke(cli, ["metrics", "enps", "--by", "team", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    teams = {r["key"] for r in rows}
    assert "(none)" not in teams and "(no team)" not in teams
    assert {"frontline", "last_mile", "hr_partners"} <= teams
    frontline = next(r for r in rows if r["key"] == "frontline")
    warehouse = next(r for r in rows if r["key"] == "warehouse")
    assert frontline["enps"] < warehouse["enps"]  # friction-heavy team scores lower
    bad = CliRunner().invoke(cli, ["metrics", "enps", "--by", "touchpoint"])
    assert bad.exit_code == 2 and "company, department, team" in bad.output


def test_people_page_and_scorecard_panel_show_ex_beside_cx(
    company: tuple[Engine, Path, LoadSummary],
) -> None:
    from fastapi.testclient import TestClient

    from cxm.config import load_settings
    from cxm.web.app import create_app
    from tests.web.test_sessions import sign_in

    engine, root, _ = company
    settings = load_settings(data_dir=root, database_url=str(engine.url))
    with TestClient(create_app(settings, engine=engine, run_worker=False)) as client:
        assert sign_in(client, "cx.lead@northwind.example", "demo-cxlead") == 303
        page = client.get("/people?grain=month")
        assert page.status_code == 200
        assert "People and experience" in page.text and "Frontline Support" in page.text
        penalty = service.people_and_experience(engine, root, "month").relations[0]
        assert f"{penalty.slope:.2f}" in page.text
        # Departments by name, linked by key.
        with engine.connect() as conn:
            (support,) = conn.execute(
                sa.text("SELECT name FROM departments WHERE key = 'service'")
            ).one()
        assert f'<a href="/departments/service">{support}</a>' in page.text
        assert client.get("/people?grain=decade").status_code == 422
        card = client.get("/departments/executive")
        assert card.status_code == 200 and 'id="people-title"' in card.text
        # Leadership (5) and CX Office (4): the office is under the minimum, and showing
        # leadership beside the department would reveal it, so neither team has figures.
        assert card.text.count("hidden (fewer than 5)") >= 2
    with TestClient(create_app(settings, engine=engine, run_worker=False)) as client:
        assert sign_in(client, "chat.agent@northwind.example", "demo-agent") == 303
        assert client.get("/people").status_code == 404


def _handled_csat(root: Path) -> pd.DataFrame:
    """Per agent, from the demo files alone: support CSAT answers of the tickets they closed."""
    import pyarrow.parquet as pq

    log = pq.read_table(root / "files" / "interactions.parquet",
                        columns=["event_id", "name", "properties"]).to_pandas()  # fmt: skip
    closed = log[log["name"] == "ticket_closed"].copy()
    closed["agent_id"] = closed["properties"].map(lambda p: json.loads(p).get("agent_id"))
    answers = pd.read_csv(root / "files" / "responses.csv")
    answers = answers[answers["csat"].notna()]
    j = answers.merge(closed, left_on="trigger_event_id", right_on="event_id")
    j["top2"] = j["csat"] >= 4
    return j.groupby("agent_id")["top2"].agg(["sum", "count"])


def test_an_agent_sees_their_own_csat_and_their_teams(
    company: tuple[Engine, Path, LoadSummary],
) -> None:
    from cxm.employees import frontline

    engine, root, _ = company
    expected = _handled_csat(root)
    assert len(expected) > 5  # the demo spreads tickets over the support team
    for agent in list(expected.index)[:3]:
        o = frontline.own_outcomes(engine, agent, "frontline")
        x, n = expected.loc[agent, "sum"], expected.loc[agent, "count"]
        assert o.own.n == n
        assert o.own.value == pytest.approx(100 * x / n, abs=0.051)
        assert o.own.low is not None and o.own.high is not None
        assert o.own.low <= o.own.value <= o.own.high
        assert o.team.n == expected["count"].sum()
    spread = frontline.team_spread(engine, "frontline", minimum=5)
    assert len(spread.agents) + spread.pooled_agents == len(expected)
    assert all(a.n >= 5 for a in spread.agents)
    values = [a.value or 0.0 for a in spread.agents]
    assert values == sorted(values)


def test_frontline_api_gives_own_figures_and_hides_names(
    company: tuple[Engine, Path, LoadSummary],
) -> None:
    from fastapi.testclient import TestClient

    from cxm.config import load_settings
    from cxm.web.app import create_app
    from tests.web.test_sessions import sign_in

    engine, root, _ = company
    settings = load_settings(data_dir=root, database_url=str(engine.url))
    with TestClient(create_app(settings, engine=engine, run_worker=False)) as client:
        assert sign_in(client, "chat.agent@northwind.example", "demo-agent") == 303
        mine = client.get("/api/v1/employees/me/outcomes").json()
        assert mine["team"] == "frontline" and mine["own"]["n"] > 0
        assert mine["team_figure"]["n"] > mine["own"]["n"]
        # A member, not the team's lead: the spread of colleagues' figures is not theirs.
        assert client.get("/api/v1/employees/teams/frontline/outcomes").status_code == 404
        assert client.get("/api/v1/employees").status_code == 403
    with TestClient(create_app(settings, engine=engine, run_worker=False)) as client:
        assert sign_in(client, "cx.lead@northwind.example", "demo-cxlead") == 303
        spread = client.get("/api/v1/employees/teams/frontline/outcomes")
        assert spread.status_code == 200
        assert spread.json()["agents"] and '"E0' not in spread.text
        assert client.get("/api/v1/employees/me/outcomes").status_code == 404


def test_a_team_lead_sees_the_spread_of_their_team_only(
    company: tuple[Engine, Path, LoadSummary],
) -> None:
    from fastapi.testclient import TestClient

    from cxm.config import load_settings
    from cxm.employees import directory
    from cxm.org import auth
    from cxm.web.app import create_app
    from tests.web.test_sessions import sign_in

    engine, root, _ = company
    with engine.begin() as conn:
        _, members = directory.list_employees(conn, team="frontline", limit=1)
        lead = members[0]
        assert lead.role == "team lead"
        auth.create_user(conn, "lead@northwind.example", "agent", password="a long password",
                         team_key="frontline")  # fmt: skip
        directory.link_user(conn, lead.employee_id, "lead@northwind.example")
    settings = load_settings(data_dir=root, database_url=str(engine.url))
    with TestClient(create_app(settings, engine=engine, run_worker=False)) as client:
        assert sign_in(client, "lead@northwind.example", "a long password") == 303
        assert client.get("/api/v1/employees/teams/frontline/outcomes").status_code == 200
        assert client.get("/api/v1/employees/teams/last_mile/outcomes").status_code == 404


def test_the_courier_sees_its_delivery_scorecard_and_nothing_personal(
    company: tuple[Engine, Path, LoadSummary],
) -> None:
    from fastapi.testclient import TestClient

    from cxm.config import load_settings
    from cxm.web.app import create_app
    from tests.web.test_sessions import sign_in

    engine, root, _ = company
    delivery, carried = _delivery_csat_answers(root / "files")
    swiftpost = delivery[carried]
    assert len(swiftpost) > 30 and len(delivery) - len(swiftpost) > 30
    expected_csat = 100 * (swiftpost["csat"] >= 4).mean()
    settings = load_settings(data_dir=root, database_url=str(engine.url))
    with TestClient(create_app(settings, engine=engine, run_worker=False)) as client:
        assert sign_in(client, "dispatch@swiftpost.example", "demo-partner") == 303
        card = client.get("/api/v1/partners/swiftpost/scorecard")
        assert card.status_code == 200, card.text
        figures = {m["metric"]: m for m in card.json()["metrics"]}
        assert figures["csat"]["n"] == len(swiftpost)
        assert figures["csat"]["value"] == pytest.approx(expected_csat, abs=0.051)
        csat = client.get("/api/v1/metrics/csat?by=touchpoint").json()["rows"]
        assert [r["touchpoint"] for r in csat] == ["delivery"]
        assert csat[0]["n"] == len(swiftpost)
        assert "@" not in card.text
        for path in ("/api/v1/customers", "/api/v1/cases", "/api/v1/responses", "/customers",
                     "/feedback", "/api/v1/employees"):  # fmt: skip
            assert client.get(path).status_code == 404, path


def test_the_courier_pulse_panel_matches_pandas_on_the_demo_files(
    company: tuple[Engine, Path, LoadSummary],
) -> None:
    from fastapi.testclient import TestClient

    from cxm.config import load_settings
    from cxm.metrics.stats import nps_interval
    from cxm.web.app import create_app
    from tests.web.test_sessions import sign_in

    engine, root, summary = company
    contacts = pd.read_csv(root / "files" / "partner_contacts.csv")
    answers = pd.read_csv(root / "files" / "partner_pulse.csv")
    assert summary.steps["partner contacts"] == f"{len(contacts)} created, 0 updated, 0 unchanged"
    assert summary.steps["partner pulse"].startswith(f"{len(answers)} imported")
    month = pd.to_datetime(answers["submitted_at"]).dt.strftime("%Y-%m")
    people = answers.groupby(month)["contact_id"].nunique()
    kept = answers[month.isin(people[people >= 5].index)]
    assert len(kept) > 20
    promoters, detractors = int((kept["pnps"] >= 9).sum()), int((kept["pnps"] <= 6).sum())
    expected = nps_interval(promoters, len(kept) - promoters - detractors, detractors)
    settings = load_settings(data_dir=root, database_url=str(engine.url))
    with TestClient(create_app(settings, engine=engine, run_worker=False)) as client:
        assert sign_in(client, "dispatch@swiftpost.example", "demo-partner") == 303
        card = client.get("/api/v1/partners/swiftpost/scorecard").json()["pulse"]
        page = client.get("/partners/swiftpost").text
    assert card["respondents"] == kept["contact_id"].nunique()
    assert card["answers"] == len(kept)
    assert card["pnps"] == pytest.approx(100 * expected.value, abs=0.051)
    items = {i["item"]: i for i in card["items"]}
    for item in ("ease", "communication"):
        assert items[item]["mean"] == pytest.approx(kept[item].mean(), abs=0.006)
    assert "Partner NPS" in page and f"{card['pnps']:.1f}" in page
    # a comment written in several answers is listed once, with how many wrote it
    (top, times), *_ = Counter(card["comments"]).most_common(1)
    assert times > 1 and page.count(f"<li>{escape(top)}") == 1
    assert f'<li>{escape(top)} <span class="muted">({times} answers)</span>' in page
    # The courier's people are not customers: no customer figure counts their answers.
    nps_all = metrics.compute(engine, "nps").iloc[0]
    responses = pd.read_csv(root / "files" / "responses.csv")
    assert int(nps_all["n"]) == int(responses["nps"].notna().sum())


def test_swiftpost_signal_costs_count_the_deliveries_it_ran_only(
    company: tuple[Engine, Path, LoadSummary],
) -> None:
    from cxm.employees.partners import partner_signal_costs
    from cxm.insights.analytics import WINDOW_DAYS

    engine, root, _ = company
    with engine.connect() as conn:
        costs, note = partner_signal_costs(engine, conn, root, "swiftpost")
        answers = pd.read_sql(
            "SELECT id, customer_id, submitted_at FROM responses WHERE respondent_kind = "
            "'customer' AND nps IS NOT NULL AND customer_id IS NOT NULL "
            "AND submitted_at IS NOT NULL", conn)  # fmt: skip
        events = pd.read_sql(
            "SELECT customer_id, event_time, name, touchpoint_key, "
            "CAST(properties AS VARCHAR) AS props FROM interactions "
            "WHERE touchpoint_key = 'delivery' AND customer_id IS NOT NULL", conn)  # fmt: skip
        merged = "SELECT id, merged_into FROM customers WHERE merged_into IS NOT NULL"
        merges = dict(conn.execute(sa.text(merged)).all())

    def current(c: str) -> str:
        while c in merges:
            c = merges[c]
        return c

    assert note == "" and {c["key"] for c in costs} == {"late_delivery", "damaged_item"}
    answers["customer_id"] = answers["customer_id"].map(current)
    events["customer_id"] = events["customer_id"].map(current)
    events["partner"] = events["props"].map(lambda d: json.loads(d or "{}").get("partner"))
    window = pd.Timedelta(days=WINDOW_DAYS)
    for cost in costs:
        name = {"late_delivery": "delivery_late", "damaged_item": "item_damaged"}[cost["key"]]
        met = {"swiftpost": 0, "all": 0}
        ev = events[events["name"] == name]
        j = answers.merge(ev, on="customer_id")
        j = j[
            (j["event_time"] < j["submitted_at"]) & (j["event_time"] >= j["submitted_at"] - window)
        ]
        met["all"] = j["id"].nunique()
        met["swiftpost"] = j.loc[j["partner"] == "swiftpost", "id"].nunique()
        assert cost["met_touchpoint"] == met["all"]
        assert cost["met"] == met["swiftpost"]
        assert 0 < cost["met"] < cost["met_touchpoint"]
        expected = -cost["effect"] * met["swiftpost"] / len(answers)
        assert cost["cost"] == pytest.approx(expected, rel=1e-9)
        # The touchpoint's cost is the attribution's own: effect x reach over the same answers.
        share = cost["cost"] / cost["cost_touchpoint"]
        assert share == pytest.approx(met["swiftpost"] / met["all"], rel=1e-9)


def _delivery_csat_answers(files: Path) -> tuple[pd.DataFrame, pd.Series]:
    """The delivery CSAT answers in the demo's files, and which of them answer a delivery
    SwiftPost carried (the triggering event names the courier in ``properties.partner``)."""
    answers = pd.read_csv(files / "responses.csv")
    delivery = answers[(answers["touchpoint"] == "delivery") & answers["csat"].notna()]
    log = pd.read_parquet(files / "interactions.parquet", columns=["event_id", "properties"])
    partner = log["properties"].map(lambda doc: json.loads(doc).get("partner"))
    by_courier = set(log.loc[partner == "swiftpost", "event_id"])
    return delivery, delivery["trigger_event_id"].isin(by_courier)


def test_swiftpost_delivery_csat_counts_its_deliveries_only(
    company: tuple[Engine, Path, LoadSummary],
) -> None:
    """The courier carries part of the home deliveries: its CSAT is over the answers its
    deliveries triggered, and the rest of the touchpoint's answers read as in-house."""
    engine, root, _ = company
    truth = json.loads((root / "files" / "ground_truth.json").read_text())["partners"]
    delivery, carried = _delivery_csat_answers(root / "files")
    # The planted share of deliveries, within three standard errors.
    share = truth["swiftpost"]["share_of_home_deliveries"]
    se = (share * (1 - share) / len(delivery)) ** 0.5
    assert carried.mean() == pytest.approx(share, abs=3 * se)
    expected = {
        "swiftpost": (int(carried.sum()), 100 * (delivery[carried]["csat"] >= 4).mean()),
        "(none)": (int((~carried).sum()), 100 * (delivery[~carried]["csat"] >= 4).mean()),
    }
    got = metrics.compute(engine, "csat", ["partner"], filters={"touchpoint": ["delivery"]})
    rows = {r["partner"]: (int(r["n"]), r["value"]) for r in got.to_dict("records")}
    assert set(rows) == set(expected)
    for key, (n, value) in expected.items():
        assert rows[key][0] == n, key
        assert rows[key][1] == pytest.approx(value, abs=0.051), key


def test_an_agent_reads_their_own_outcomes_page_only(
    company: tuple[Engine, Path, LoadSummary],
) -> None:
    import re

    from fastapi.testclient import TestClient

    from cxm.config import load_settings
    from cxm.web.app import create_app
    from tests.web.test_sessions import sign_in

    engine, root, _ = company
    expected = _handled_csat(root)
    settings = load_settings(data_dir=root, database_url=str(engine.url))
    with TestClient(create_app(settings, engine=engine, run_worker=False)) as client:
        assert sign_in(client, "chat.agent@northwind.example", "demo-agent") == 303
        mine = client.get("/api/v1/employees/me/outcomes").json()
        page = client.get("/people/me")
        assert page.status_code == 200, page.text
        me = mine["employee_id"]
        x, n = expected.loc[me, "sum"], expected.loc[me, "count"]
        # The page's figure is the agent's own, as pandas computes it from the demo's files.
        assert f"{100 * x / n:.1f}%" in page.text and f"<td>{n}</td>" in page.text
        assert f"<td>{int(expected['count'].sum())}</td>" in page.text  # the team's answers
        # No other employee's id is on it.
        assert set(re.findall(r"E\d{4}", page.text)) <= {me}
    for email, password in (("cx.lead@northwind.example", "demo-cxlead"),
                            ("dispatch@swiftpost.example", "demo-partner")):  # fmt: skip
        with TestClient(create_app(settings, engine=engine, run_worker=False)) as client:
            assert sign_in(client, email, password) == 303
            assert client.get("/people/me").status_code == 404, email

"""The engagement index: the shipped pulse items rescaled to 0-100, averaged per respondent and
then per group, with a t interval; under the same confidentiality rule as eNPS."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pandas as pd
import pytest
import yaml
from scipy import stats
from sqlalchemy.engine import Engine

from cxm.employees import analytics as ax
from cxm.employees import service
from cxm.surveys.facts import response_answers
from tests.employees.factories import answer, build_org, hire

TEMPLATE = Path(service.__file__).parents[1] / "surveys" / "templates" / "employee_pulse.yaml"


@pytest.fixture
def company(engine: Engine) -> tuple[Engine, pd.DataFrame]:
    """Everyone answers in January and February; some skip the tools question. Returns the
    engine and the answers as planted (team, employee, nps, tools)."""
    rng = random.Random(17)
    planted = []
    with engine.begin() as conn:
        build_org(conn)
        ids = hire(conn)
        for month in (1, 2):
            when = dt.datetime(2026, month, 12, 9, tzinfo=dt.UTC)
            for team, people in ids.items():
                for e in people:
                    nps = rng.randint(0, 10)
                    tools = rng.choice([None, 1, 2, 3, 4, 5])
                    rid = answer(conn, e, nps, when=when)
                    if tools is not None:
                        conn.execute(
                            response_answers.insert().values(
                                response_id=rid,
                                question_id="tools",
                                question_type="rating",
                                value_number=float(tools),
                                answered_at=when,
                            )
                        )
                    planted.append((team, e, nps, tools))
    return engine, pd.DataFrame(planted, columns=["team", "employee", "nps", "tools"])


def _expected(df: pd.DataFrame) -> dict[str, tuple[float, float, float]]:
    long = pd.concat(
        [
            df.assign(scaled=df["nps"] / 10 * 100)[["team", "employee", "scaled"]],
            df.dropna(subset=["tools"]).assign(scaled=lambda d: (d["tools"] - 1) / 4 * 100)[
                ["team", "employee", "scaled"]
            ],
        ]
    )
    per = long.groupby(["team", "employee"])["scaled"].mean().reset_index()
    out = {}
    for team, g in per.groupby("team"):
        s = g["scaled"]
        low, high = stats.t.interval(0.95, len(s) - 1, loc=s.mean(), scale=stats.sem(s))
        out[str(team)] = (float(s.mean()), float(low), float(high))
    return out


def test_the_items_are_those_of_the_shipped_template() -> None:
    questions = {q["id"]: q for q in yaml.safe_load(TEMPLATE.read_text())["questions"]}
    assert ax.ENGAGEMENT_ITEMS["enps"][1:] == (0.0, 10.0)
    assert questions["enps"]["type"] == "nps"
    scale = questions["tools"]["scale"]
    assert ax.ENGAGEMENT_ITEMS["tools"][1:] == (float(scale["min"]), float(scale["max"]))


def test_engagement_by_team_matches_pandas(company: tuple[Engine, pd.DataFrame]) -> None:
    engine, planted = company
    expected = _expected(planted)
    for grain in (None, "quarter"):
        rows = {r.key: r for r in service.pulse_results(engine, "team", grain)}
        for team in ("ops_a", "sales_a"):
            r = rows[team]
            assert not r.hidden
            mean, low, high = expected[team]
            assert r.engagement == pytest.approx(mean, abs=0.051)
            assert r.engagement_low == pytest.approx(low, abs=0.051)
            assert r.engagement_high == pytest.approx(high, abs=0.051)


def test_a_team_under_the_minimum_shows_no_engagement(
    company: tuple[Engine, pd.DataFrame],
) -> None:
    engine, _ = company
    rows = {r.key: r for r in service.pulse_results(engine, "team")}
    for team in ("ops_b", "ops_c"):
        assert rows[team].hidden
        assert (rows[team].engagement, rows[team].engagement_low) == (None, None)


def test_engagement_in_the_experience_rows(
    company: tuple[Engine, pd.DataFrame], tmp_path: Path
) -> None:
    engine, planted = company
    result = service.people_and_experience(engine, tmp_path, "quarter")
    by_team = {r["team"]: r for r in result.rows}
    expected = _expected(planted)["sales_a"][0]
    assert by_team["sales_a"]["engagement"] == pytest.approx(expected, abs=0.051)
    assert by_team["ops_c"]["engagement"] is None


def test_the_people_page_shows_engagement_beside_enps(
    company: tuple[Engine, pd.DataFrame], tmp_path: Path
) -> None:
    import threading

    from fastapi.testclient import TestClient

    from cxm.config import load_settings
    from cxm.org.auth import create_user
    from cxm.web.app import create_app
    from tests.web.test_sessions import sign_in

    engine, planted = company
    with engine.begin() as conn:
        create_user(conn, "hr@example.com", "cx_lead", password="correct horse battery")
    depts = {r.key: r for r in service.pulse_results(engine, "department")}
    out: dict[str, str] = {}

    def visit() -> None:
        settings = load_settings(data_dir=tmp_path, database_url=str(engine.url))
        with TestClient(create_app(settings, engine=engine, run_worker=False)) as client:
            assert sign_in(client, "hr@example.com", "correct horse battery") == 303
            page = client.get("/people?grain=quarter")
            assert page.status_code == 200, page.text
            out["page"] = page.text

    t = threading.Thread(target=visit)
    t.start()
    t.join()
    sales = depts["sales"]
    assert sales.engagement is not None and sales.engagement_low is not None
    row = f"<td>{sales.engagement:.1f}</td><td>{sales.engagement_low:.1f} to "
    assert row in out["page"]
    assert f"engagement {_expected(planted)['sales_a'][0]:.1f}" in out["page"]


def test_the_department_scorecard_panel_shows_engagement_under_the_rule(
    company: tuple[Engine, pd.DataFrame], tmp_path: Path
) -> None:
    import threading

    from fastapi.testclient import TestClient

    from cxm.config import load_settings
    from cxm.org.auth import create_user
    from cxm.web.app import create_app
    from tests.web.test_sessions import sign_in

    engine, planted = company
    with engine.begin() as conn:
        create_user(conn, "hr@example.com", "cx_lead", password="correct horse battery")
    out: dict[str, str] = {}

    def visit() -> None:
        settings = load_settings(data_dir=tmp_path, database_url=str(engine.url))
        with TestClient(create_app(settings, engine=engine, run_worker=False)) as client:
            assert sign_in(client, "hr@example.com", "correct horse battery") == 303
            for dept in ("ops", "sales"):
                page = client.get(f"/departments/{dept}")
                assert page.status_code == 200, page.text
                out[dept] = page.text

    t = threading.Thread(target=visit)
    t.start()
    t.join()
    expected = _expected(planted)
    for dept, team in (("ops", "ops_a"), ("sales", "sales_a")):
        mean, low, high = expected[team]
        assert f"<td>{mean:.1f}</td><td>{low:.1f} to {high:.1f}</td>" in out[dept]
    # Teams of 3 and 2 in ops: hidden, with no engagement figure either.
    panel = out["ops"].split('id="people-title"')[1].split("</section>")[0]
    assert panel.count("hidden (fewer than 5)") == 2
    assert "Engagement (0-100)" in panel

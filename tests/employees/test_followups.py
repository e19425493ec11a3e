"""Follow-up surveys of the cases an agent closed: their own NPS beside their team's, counting
only the cases their own sign-in closed."""

from __future__ import annotations

import datetime as dt
import random
import re
import threading
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from cxm.actions.facts import case_events, cases
from cxm.employees import frontline
from cxm.employees.directory import EmployeeIn, apply
from cxm.metrics.stats import nps_interval
from cxm.org.auth import create_user
from cxm.surveys.facts import responses_table
from tests.employees.factories import build_org

T = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)
PASSWORD = "correct horse battery"
# closer (a sign-in email, or an API key) -> how many closed cases with an answered follow-up
CLOSERS = {"ada@example.com": 7, "bo@example.com": 5, "cy@example.com": 6, "api key (admin)": 3}


@pytest.fixture
def store(engine: Engine) -> tuple[Engine, pd.DataFrame]:
    """Ada and Bo in ops_a, Cy in sales_a; each closes cases whose follow-ups are answered; an
    API key closes some too, and Ada also closes one whose follow-up is never answered."""
    rng = random.Random(7)
    planted = []
    with engine.begin() as conn:
        build_org(conn)
        ids = {}
        for email, team in (("ada@example.com", "ops_a"), ("bo@example.com", "ops_a"),
                            ("cy@example.com", "sales_a")):  # fmt: skip
            ids[email] = create_user(conn, email, "agent", password=PASSWORD, team_key=team)
        since = dt.date(2025, 1, 1)
        people = [("E1", "ops_a", "ada"), ("E2", "ops_a", "bo"), ("E3", "sales_a", "cy")]
        apply(conn, [EmployeeIn(e, team, user_email=f"{who}@example.com", start_date=since)
                     for e, team, who in people])  # fmt: skip
        n = 0
        for actor, count in CLOSERS.items():
            for _ in range(count + (1 if actor == "ada@example.com" else 0)):
                n += 1
                cid, rid = f"case{n}", f"fu{n}"
                answered = not (actor == "ada@example.com" and _ == count)
                score = rng.randint(0, 10)
                conn.execute(cases.insert().values(
                    id=cid, dedupe_key=cid, rule_key="r", source_kind="response", source_id=cid,
                    title="t", status="closed", priority="p3", sla_state="met", opened_at=T,
                    first_response_due=T, resolution_due=T, closed_at=T, updated_at=T,
                    followup_status="answered" if answered else "requested",
                    followup_response_id=rid if answered else None))  # fmt: skip
                conn.execute(case_events.insert().values(
                    id=f"ev{n}", case_id=cid, occurred_at=T, actor=actor, kind="status",
                    field="status", old_value="resolved", new_value="closed"))  # fmt: skip
                if answered:
                    conn.execute(responses_table.insert().values(
                        id=rid, survey_key="case_followup", survey_version=1,
                        respondent_kind="customer", customer_id="c1", started_at=T,
                        submitted_at=T, completed=True, nps=score, source="web"))  # fmt: skip
                    planted.append((actor, score))
    return engine, pd.DataFrame(planted, columns=["actor", "nps"])


def _nps(scores: pd.Series) -> tuple[int, float]:
    return len(scores), 100 * ((scores >= 9).mean() - (scores <= 6).mean())


def _check(figure: frontline.NpsFigure, scores: pd.Series) -> None:
    n, value = _nps(scores)
    assert figure.n == n
    assert figure.value == pytest.approx(value, abs=0.051)
    iv = nps_interval(float((scores >= 9).sum()), float(scores.between(7, 8).sum()),
                      float((scores <= 6).sum()))  # fmt: skip
    assert (figure.low, figure.high) == (round(100 * iv.low, 1), round(100 * iv.high, 1))


def test_own_and_team_followups_match_pandas(store: tuple[Engine, pd.DataFrame]) -> None:
    engine, planted = store
    got = frontline.own_followups(engine, "E1", "ops_a")
    _check(got.own, planted[planted["actor"] == "ada@example.com"]["nps"])
    team = planted[planted["actor"].isin(["ada@example.com", "bo@example.com"])]["nps"]
    _check(got.team, team)
    # Cy's cases (another team) and the API key's count for nobody in ops_a.
    assert got.team.n == CLOSERS["ada@example.com"] + CLOSERS["bo@example.com"]


def test_another_agents_closed_cases_do_not_count(store: tuple[Engine, pd.DataFrame]) -> None:
    engine, planted = store
    bo = frontline.own_followups(engine, "E2", "ops_a")
    assert bo.own.n == CLOSERS["bo@example.com"]
    _check(bo.own, planted[planted["actor"] == "bo@example.com"]["nps"])
    cy = frontline.own_followups(engine, "E3", "sales_a")
    assert (cy.own.n, cy.team.n) == (CLOSERS["cy@example.com"], CLOSERS["cy@example.com"])


def test_the_page_shows_the_agents_own_followups(
    store: tuple[Engine, pd.DataFrame], tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from cxm.config import load_settings
    from cxm.web.app import create_app
    from tests.web.test_sessions import sign_in

    engine, planted = store
    n, value = _nps(planted[planted["actor"] == "bo@example.com"]["nps"])
    out: dict[str, str] = {}

    def visit() -> None:
        settings = load_settings(data_dir=tmp_path, database_url=str(engine.url))
        with TestClient(create_app(settings, engine=engine, run_worker=False)) as client:
            assert sign_in(client, "bo@example.com", PASSWORD) == 303
            page = client.get("/people/me")
            assert page.status_code == 200, page.text
            out["page"] = page.text
            api = client.get("/api/v1/employees/me/followups")
            assert api.status_code == 200, api.text
            out["own_n"] = str(api.json()["own"]["n"])
            out["own_value"] = str(api.json()["own"]["value"])

    t = threading.Thread(target=visit)
    t.start()
    t.join()
    section = out["page"].split("Follow-ups of the cases you closed")[1].split("Kudos")[0]
    rows = re.findall(r"<tr>\s*<th scope=\"row\">(.*?)</th>\s*<td>(.*?)</td>.*?<td>(\d+)</td>",
                      section, re.S)  # fmt: skip
    assert rows[0] == ("You", f"{value:.1f}", str(n))
    assert rows[1][0] == "Your team" and rows[1][2] == str(12)
    assert (out["own_n"], float(out["own_value"])) == (str(n), pytest.approx(value, abs=0.051))

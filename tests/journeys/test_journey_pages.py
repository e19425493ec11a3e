"""The journey pages through the real app: the service's numbers, the filters, and each
role's scope (a manager sees the scores of their own steps and hand-offs only)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.config import load_settings
from cxm.demo.generator import generate
from cxm.demo.load import load
from cxm.journeys import conformance, definitions, service
from cxm.metrics.definitions import load as load_metrics
from cxm.org import auth
from cxm.org import service as org
from cxm.store import create_engine, upgrade
from cxm.web.names import Names
from tests.web.test_sessions import PASSWORD, sign_in

USERS = {
    "cx_lead": ("lead@example.com", None, None),
    "manager": ("manager@example.com", "supply_chain", None),
    "agent": ("agent@example.com", None, "service_team"),
    "viewer": ("viewer@example.com", None, None),
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Path]]:
    folder = tmp_path_factory.mktemp("journey_pages")
    generate(folder / "files", customers=400, months=3, seed=5)
    eng = create_engine(f"duckdb:///{folder / 'cxm.duckdb'}")
    upgrade(eng)
    with eng.begin() as conn:
        org.seed_defaults(conn)
    load(eng, folder / "files")
    with eng.begin() as conn:
        for role, (email, department, team) in USERS.items():
            auth.create_user(conn, email, role, password=PASSWORD, department_key=department,
                             team_key=team)  # fmt: skip
    yield eng, folder
    eng.dispose()


def _client(demo: tuple[Engine, Path], role: str) -> Iterator[TestClient]:
    from cxm.web.app import create_app

    engine, folder = demo
    settings = load_settings(data_dir=folder, database_url=str(engine.url))
    with TestClient(create_app(settings, engine=engine, run_worker=False)) as client:
        assert sign_in(client, USERS[role][0]) == 303
        yield client


@pytest.fixture(scope="module")
def lead(demo: tuple[Engine, Path]) -> Iterator[TestClient]:
    yield from _client(demo, "cx_lead")


@pytest.fixture(scope="module")
def manager(demo: tuple[Engine, Path]) -> Iterator[TestClient]:
    yield from _client(demo, "manager")


def _figures(html: str) -> list[dict]:
    return [json.loads(unescape(f)) for f in re.findall(r"data-figure='([^']*)'", html)]


def _table(html: str, title: str) -> str:
    section = html.split(f'id="{title}"')[1]
    return section.split("</section>")[0]


def test_the_page_shows_the_mined_numbers(lead: TestClient, demo: tuple[Engine, Path]) -> None:
    engine, _ = demo
    journey = definitions.get("order_to_delivery")
    page = lead.get("/journeys/order_to_delivery")
    assert page.status_code == 200
    summary = service.summary(engine, journey)
    assert f'<span class="kpi-value">{summary["cases"]}</span>' in page.text
    label = Names(engine).path
    top = service.variants(engine, journey, 1)["variants"][0]
    assert f"<td>{label(top['variant'])}</td><td>{top['cases']}</td>" in unescape(page.text)
    mapped, sankey = _figures(page.text)
    graph = service.directly_follows(engine, journey)
    drawn = {t.split("<br>")[0] for trace in mapped["data"] for t in trace["text"]}
    assert drawn == {label(n["activity"]) for n in graph["nodes"]}
    assert not any("_" in d for d in drawn)  # steps read as names, not event keys
    # Arrows as wide as their frequency: the most frequent path has the widest arrow.
    widest = max(mapped["layout"]["annotations"], key=lambda a: a["arrowwidth"])
    busiest = max(graph["edges"], key=lambda e: e["frequency"])
    assert widest["hovertext"].startswith(
        f"{label(busiest['source'])} → {label(busiest['target'])}"
    )
    flows = service.stage_flows(engine, journey)["flows"]
    assert sum(sankey["data"][0]["link"]["value"]) == sum(f["cases"] for f in flows) > 0


def test_each_step_shows_its_csat_and_ces_beside_its_owner(
    lead: TestClient, demo: tuple[Engine, Path]
) -> None:
    engine, _ = demo
    journey = definitions.get("renewal")
    scores = service.score_metrics(load_metrics())
    assert [m.name for m in scores] == ["csat", "ces"]
    summary = service.summary(engine, journey, scores=scores)
    page = lead.get("/journeys/renewal")
    steps = _table(page.text, "steps-title").split("<h3>")[0]
    assert '<th scope="col">CSAT</th><th scope="col">CES</th>' in steps
    rows = {unescape(k): v for k, v in re.findall(r"<th scope=\"row\">([^<]+)</th>(.*?)</tr>",
                                                   steps, re.S)}  # fmt: skip
    label = Names(engine).path
    shown = 0
    for a in summary["activities"]:
        cells = re.findall(r"<td>(.*?)</td>", rows[label(a["activity"])], re.S)
        csat, ces = a["scores"]["csat"], a["scores"]["ces"]
        if csat is not None:
            shown += 1
            assert f">{csat['value']:.1f}%</span>" in cells[-2], a["activity"]
            assert f"(n={csat['n']}, wilson)" in cells[-2]
        if ces is not None:
            assert f">{ces['value']:.2f}</span>" in cells[-1], a["activity"]
    assert shown  # the demo's customers answer CSAT after their cases


def test_the_page_shows_conformance_to_the_usual_variants(
    lead: TestClient, demo: tuple[Engine, Path]
) -> None:
    engine, _ = demo
    checked = conformance.conformance(engine, definitions.get("renewal"))
    page = lead.get("/journeys/renewal")
    section = _table(page.text, "conformance-title")
    assert f'id="conforming">{100 * checked["fitting"]:.1f}%</span>' in section
    assert f'id="fitness">{checked["fitness"]:.3f}</span>' in section
    assert 0 < checked["fitting"] < 1
    variants = _table(page.text, "variants-title")
    top = checked["variants"][0]
    shown = Names(engine).path(top["variant"])
    assert f"<td>{shown}</td><td>{top['cases']}</td>" in unescape(variants)
    assert f"<td>{top['fitness']:.3f}</td></tr>" in variants


def test_the_page_shows_how_cases_follow_the_defined_stage_order(
    lead: TestClient, demo: tuple[Engine, Path]
) -> None:
    engine, _ = demo
    checked = conformance.stage_order(engine, definitions.get("renewal"), limit=10)
    page = lead.get("/journeys/renewal")
    assert page.status_code == 200
    section = unescape(_table(page.text, "stage-order-title"))
    assert f'id="stage-conforming">{100 * checked["conforming"]["rate"]:.1f}%</span>' in section
    assert f"{checked['conforming']['count']} of {checked['staged']} cases" in section
    assert 0 < checked["conforming"]["rate"] < 1  # a member's year loops back to buying
    top = checked["deviations"][0]
    assert top["kind"] == "backwards hand-off"
    assert (f"<td>Backwards hand-off</td><td>{Names(engine).words(top['source'])}</td>"
            f"<td>{Names(engine).words(top['target'])}</td><td></td><td>{top['cases']}</td>"
            f"<td>{top['events']}</td>") in section  # fmt: skip


def test_filters_narrow_the_cases(lead: TestClient, demo: tuple[Engine, Path]) -> None:
    engine, _ = demo
    journey = definitions.get("order_to_delivery")
    failed = service.summary(engine, journey)["outcomes"]["failure"]["count"]
    page = lead.get("/journeys/order_to_delivery?outcome=failure")
    assert f'<span class="kpi-value">{failed}</span>' in page.text
    consumers = service.summary(engine, journey, segment="consumer")["cases"]
    page = lead.get("/journeys/order_to_delivery?segment=consumer")
    assert f'<span class="kpi-value">{consumers}</span>' in page.text
    edges = service.directly_follows(engine, journey)["edges"]
    cut = sorted(e["frequency"] for e in edges)[len(edges) // 2]
    page = lead.get(f"/journeys/order_to_delivery?min_frequency={cut}")
    rows = _table(page.text, "map-title").count("<tr><td>")
    assert rows == sum(1 for e in edges if e["frequency"] >= cut) < len(edges)
    bad = lead.get("/journeys/order_to_delivery?outcome=maybe")
    assert bad.status_code == 422 and "outcome must be one of" in bad.text
    assert lead.get("/journeys/onboarding").status_code == 404


def test_a_manager_sees_scores_of_their_own_steps_only(
    manager: TestClient, demo: tuple[Engine, Path]
) -> None:
    engine, _ = demo
    journey = definitions.get("renewal")
    page = manager.get("/journeys/renewal")
    assert page.status_code == 200
    graph = service.directly_follows(engine, journey)
    owner = {Names(engine).path(n["activity"]): n["department"] for n in graph["nodes"]}
    steps = _table(page.text, "steps-title").split("<h3>")[0]
    rows = re.findall(r"<tr( class=\"mine\")?><th scope=\"row\">([^<]+)</th>(.*?)</tr>", steps,
                      re.S)  # fmt: skip
    assert rows
    for mine, activity, cells in rows:
        assert bool(mine) == (owner.get(unescape(activity)) == "supply_chain"), activity
        assert ("95% interval" in cells) == bool(mine), activity
    assert any(mine for mine, _, _ in rows)
    hand = _table(page.text, "steps-title").split("<h3>")[1]
    pairs = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td>", hand)
    assert pairs and all("Supply Chain &amp; Delivery" in pair for pair in pairs)
    everyone = service.summary(engine, journey)["handoffs"]["pairs"]
    assert len(pairs) == sum(1 for h in everyone if "supply_chain" in (h["source"], h["target"]))


def test_agents_do_not_see_journeys(demo: tuple[Engine, Path]) -> None:
    for client in _client(demo, "agent"):
        assert client.get("/journeys").status_code == 404
        assert client.get("/journeys/renewal").status_code == 404


def test_the_customer_360_lists_the_customers_cases(
    lead: TestClient, demo: tuple[Engine, Path]
) -> None:
    engine, _ = demo
    journey = definitions.get("order_to_delivery")
    cases = service.variants(engine, journey, 1)
    assert cases["variants"]
    with engine.connect() as conn:
        customer = conn.execute(sa.text(
            "SELECT customer_id FROM interactions WHERE name = 'order_placed' "
            "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")).scalar_one()  # fmt: skip
    mine = service.customer_cases(engine, journey, customer)
    page = lead.get(f"/customers/{customer}")
    assert page.status_code == 200 and mine
    assert 'href="/journeys/order_to_delivery"' in page.text
    for case in mine:
        assert f"<td>{case['case_id']}</td>" in page.text


def test_the_customer_360_names_the_steps_of_each_path(
    lead: TestClient, demo: tuple[Engine, Path]
) -> None:
    engine, _ = demo
    journey = definitions.get("order_to_delivery")
    with engine.connect() as conn:
        customer = conn.execute(sa.text(
            "SELECT customer_id FROM interactions WHERE name = 'order_placed' "
            "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")).scalar_one()  # fmt: skip
        touchpoints = {t.key: t.name for t in org.list_touchpoints(conn)}
    mine = service.customer_cases(engine, journey, customer)
    assert mine
    rows = re.findall(r"<tr><td>([^<]*)</td><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td></tr>",
                      unescape(lead.get(f"/customers/{customer}").text))  # fmt: skip
    shown = {case_id: (outcome, path) for case_id, outcome, path in rows}
    for case in mine:
        steps = case["variant"].split(" → ")
        named = [touchpoints.get(s) or (s[:1].upper() + s[1:]).replace("_", " ") for s in steps]
        assert shown[case["case_id"]][1] == " → ".join(named)
        assert "_" not in shown[case["case_id"]][1]  # no event key is left in a path
        assert shown[case["case_id"]][0] == case["outcome"].capitalize()

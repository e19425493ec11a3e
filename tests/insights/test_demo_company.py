"""Attribution against the demo company's planted truth, and the CLI and API over it.

The default demo company (2,000 customers, 6 months, seed 7) is generated and loaded once;
``ground_truth.json`` and ``org.yaml`` are read here only, to say what the answers must be.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cxm.cli.main import app as cli
from cxm.config import load_settings
from cxm.demo.load import load
from cxm.insights import service
from cxm.insights.attribution import Attribution
from tests.conftest import _clean, make_key


@pytest.fixture(scope="module")
def company(
    tmp_path_factory: pytest.TempPathFactory, default_demo: Callable[[Path], Any]
) -> Iterator[tuple[Engine, Path]]:
    root = tmp_path_factory.mktemp("insights-demo")
    engine, _ = default_demo(root)
    yield engine, root
    engine.dispose()


@pytest.fixture(scope="module")
def truth(company: tuple[Engine, Path]) -> dict[str, dict[str, Any]]:
    data = json.loads((company[1] / "files" / "ground_truth.json").read_text())
    return {row["friction"]: row for row in data["frictions"]}


@pytest.fixture(scope="module")
def owner(company: tuple[Engine, Path]) -> dict[str, dict[str, str]]:
    """touchpoint -> owning ``{department, team}``, as the demo's org file states it."""
    org = yaml.safe_load((company[1] / "files" / "org.yaml").read_text())
    return {t["key"]: t["owner"] for t in org["touchpoints"]}


@pytest.fixture(scope="module")
def nps(company: tuple[Engine, Path]) -> Attribution:
    engine, root = company
    return service.attribution(engine, root, "nps")


@pytest.fixture(scope="module")
def churn(company: tuple[Engine, Path]) -> Attribution:
    engine, root = company
    return service.attribution(engine, root, "churn")


def _by_key(result: Attribution) -> dict[str, Any]:
    return {e.key: e for e in result.signals}


def test_every_planted_friction_is_a_signal_with_the_planted_sign(
    nps: Attribution, truth: dict[str, dict[str, Any]]
) -> None:
    found = _by_key(nps)
    assert set(truth) <= set(found)
    for key, planted in truth.items():
        assert found[key].met > 0, key
        assert (found[key].effect < 0) == (planted["nps_effect"] < 0), key
        assert found[key].ci_high < 0, key  # significantly below zero


def test_each_nps_effect_holds_the_planted_effect_in_its_interval(
    nps: Attribution, truth: dict[str, dict[str, Any]]
) -> None:
    found = _by_key(nps)
    for key, planted in truth.items():
        e = found[key]
        assert e.ci_low <= planted["nps_effect"] <= e.ci_high, (key, e.ci_low, e.ci_high)


def test_frictions_rank_by_nps_cost_as_planted(
    nps: Attribution, truth: dict[str, dict[str, Any]]
) -> None:
    found = _by_key(nps)
    # The planted cost: the planted effect on everyone who met it, spread over all answers.
    planted = sorted(truth, key=lambda k: truth[k]["nps_effect"] * found[k].reach)
    estimated = sorted(truth, key=lambda k: -found[k].cost)
    assert estimated == planted


def test_the_department_owning_each_frictions_touchpoint_carries_its_cost(
    nps: Attribution, truth: dict[str, dict[str, Any]], owner: dict[str, dict[str, str]]
) -> None:
    found = _by_key(nps)
    departments = {d.key: d for d in nps.departments}
    for key, planted in truth.items():
        (department,) = {owner[t]["department"] for t in planted["touchpoints"]}
        (team,) = {owner[t]["team"] for t in planted["touchpoints"]}
        assert found[key].department == department
        assert found[key].team == team
        assert key in departments[department].signals
    for d in departments.values():
        mine = [found[k].cost for k in d.signals]
        assert d.cost == pytest.approx(sum(mine))
        assert (d.note == "") == bool(d.signals)


def test_simple_difference_is_the_mean_score_of_those_who_met_minus_the_rest(
    nps: Attribution,
) -> None:
    for e in nps.signals:
        assert e.difference == pytest.approx(e.mean_met - e.mean_not_met)
        assert e.difference < 0
        assert 0 < e.reach < 1


def test_each_churn_effect_has_the_planted_sign_and_holds_it_in_its_interval(
    churn: Attribution, truth: dict[str, dict[str, Any]]
) -> None:
    found = _by_key(churn)
    for key, planted in truth.items():
        e = found[key]
        assert e.effect > 0, key
        assert e.ci_low <= planted["churn_log_odds"] <= e.ci_high, (key, e.ci_low, e.ci_high)
        assert e.cost > 0  # extra churned customers
        assert e.mean_met > e.mean_not_met


def test_cli_attribution_prints_the_same_figures_as_json(
    company: tuple[Engine, Path], nps: Attribution, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, root = company
    monkeypatch.setenv("CXM_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CXM_DATA_DIR", str(root))
    result = CliRunner().invoke(cli, ["insights", "attribution", "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["rows"] == nps.rows
    assert {s["key"]: s["effect"] for s in printed["signals"]} == pytest.approx(
        {e.key: e.effect for e in nps.signals}
    )
    table = CliRunner().invoke(cli, ["insights", "attribution", "--outcome", "churn"])
    assert table.exit_code == 0, table.output
    assert "Supply Chain & Delivery" in table.output


def test_cli_rejects_an_unknown_outcome_with_exit_code_2(
    company: tuple[Engine, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, root = company
    monkeypatch.setenv("CXM_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CXM_DATA_DIR", str(root))
    result = CliRunner().invoke(cli, ["insights", "attribution", "--outcome", "response_rate"])
    assert result.exit_code == 2
    assert "nps, churn or a metric of survey answers" in result.output
    assert "csat_mean" in result.output


@pytest.fixture(scope="module")
def client(company: tuple[Engine, Path]) -> Iterator[TestClient]:
    from cxm.web.app import create_app

    engine, root = company
    settings = load_settings(data_dir=root, database_url=str(engine.url))
    with TestClient(create_app(settings, engine=engine, run_worker=False)) as c:
        yield c


def test_api_attribution_answers_a_read_key_with_the_service_figures(
    company: tuple[Engine, Path], client: TestClient, churn: Attribution
) -> None:
    headers = make_key(company[0], "read")
    response = client.get("/api/v1/insights/attribution?outcome=churn", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["outcome"] == "churn"
    assert {s["key"]: s["cost"] for s in body["signals"]} == pytest.approx(
        {e.key: e.cost for e in churn.signals}
    )
    assert "AttributionOut" in client.get("/api/openapi.json").text


def test_api_attribution_needs_a_key_and_a_known_outcome(
    company: tuple[Engine, Path], client: TestClient
) -> None:
    assert client.get("/api/v1/insights/attribution").status_code == 401
    headers = make_key(company[0], "read")
    bad = client.get("/api/v1/insights/attribution?outcome=nosuch", headers=headers)
    assert bad.status_code == 422 and "csat" in bad.json()["detail"]
    assert client.get("/api/v1/insights/attribution?window=0", headers=headers).status_code == 422


@pytest.mark.postgres
def test_postgresql_gives_the_same_attribution_as_duckdb(
    company: tuple[Engine, Path], nps: Attribution, churn: Attribution, request: Any
) -> None:
    pg: Engine = request.getfixturevalue("_postgres_engine")
    _clean(pg)
    load(pg, company[1] / "files")
    try:
        for duck in (nps, churn):
            other = service.attribution(pg, company[1], duck.outcome)
            assert other.rows == duck.rows
            assert [e.key for e in other.signals] == [e.key for e in duck.signals]
            for a, b in zip(other.signals, duck.signals, strict=True):
                assert (a.effect, a.ci_low, a.ci_high, a.reach, a.cost) == pytest.approx(
                    (b.effect, b.ci_low, b.ci_high, b.reach, b.cost)
                )
    finally:
        _clean(pg)


def test_signals_attribute_any_metric_of_answers(
    company: tuple[Engine, Path], client: TestClient
) -> None:
    """CSAT (a mean on 1-5, and the top-two-box %) by the same model as NPS: the planted
    delivery frictions lower the delivery CSAT, the plain difference is the mean of those who
    met the signal minus the rest, and a positive cost means the signal hurts."""
    engine, root = company
    mean = _by_key(service.attribution(engine, root, "csat_mean"))
    share = service.attribution(engine, root, "csat")
    assert share.outcome == "csat" and "linear probability" in share.estimator
    for key in ("late_delivery", "damaged_item"):
        e = mean[key]
        assert e.effect is not None and e.ci_high is not None and e.ci_high < 0, (key, e)
        assert e.difference == pytest.approx(e.mean_met - e.mean_not_met)
        assert e.cost == pytest.approx(-e.effect * e.reach) and e.cost > 0
        p = _by_key(share)[key]
        assert 0 <= p.mean_not_met <= 100 and p.effect < 0  # % points
    headers = make_key(engine, "read")
    body = client.get("/api/v1/insights/attribution?outcome=csat_mean", headers=headers).json()
    assert {s["key"]: s["effect"] for s in body["signals"]} == pytest.approx(
        {k: e.effect for k, e in mean.items()}
    )

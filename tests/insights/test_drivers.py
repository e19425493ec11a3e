"""Key driver analysis: Johnson's relative weights against a brute-force Shapley decomposition
of R² and statsmodels' R²; the quadrant table; the demo company's drivers, CLI and API."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cxm import console
from cxm.cli.main import app as cli
from cxm.config import load_settings
from cxm.errors import Invalid
from cxm.insights import service
from cxm.insights.drivers import analyse, relative_weights, shapley_r2
from cxm.org import auth
from cxm.org import service as org
from tests.conftest import make_key


def _correlated(seed: int, n: int = 300, p: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, p))
    mix = np.eye(p) + 0.3 * rng.uniform(-1, 1, size=(p, p))
    x = base @ mix
    y = x @ rng.uniform(-1, 1, p) + rng.normal(scale=1.5, size=n)
    return x, y


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_relative_weights_sum_to_the_r2_statsmodels_reports(seed: int) -> None:
    x, y = _correlated(seed)
    weights, r2 = relative_weights(x, y)
    ols = sm.OLS(y, sm.add_constant(x)).fit()
    assert r2 == pytest.approx(ols.rsquared, rel=1e-9)
    assert weights.sum() == pytest.approx(ols.rsquared, rel=1e-9)
    assert (weights >= 0).all()


@pytest.mark.parametrize("seed", range(1, 9))
def test_relative_weights_approximate_the_brute_force_shapley_decomposition(seed: int) -> None:
    x, y = _correlated(seed)
    weights, r2 = relative_weights(x, y)
    shapley = shapley_r2(x, y)
    # Both decompositions share out the same R² (the efficiency property of Shapley values).
    assert shapley.sum() == pytest.approx(r2, rel=1e-9)
    # Johnson's weights approximate the Shapley (dominance) weights: LeBreton, Ployhart & Ladd
    # (2004) found their shares of R² within 0.05 of each other at moderate correlations.
    assert np.abs(weights - shapley).max() / r2 < 0.05


def test_uncorrelated_drivers_each_weigh_their_squared_correlation() -> None:
    # A 2^3 full factorial: the three columns are exactly uncorrelated, so every decomposition
    # gives each its own r² with the outcome.
    grid = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)] * 5, float)
    rng = np.random.default_rng(0)
    y = grid @ np.array([2.0, -1.0, 0.5]) + rng.normal(size=len(grid))
    weights, _ = relative_weights(grid, y)
    r = np.array([np.corrcoef(grid[:, j], y)[0, 1] for j in range(3)])
    assert weights == pytest.approx(r**2, rel=1e-9)
    assert shapley_r2(grid, y) == pytest.approx(r**2, rel=1e-9)


def test_a_constant_driver_is_refused() -> None:
    x = np.column_stack([np.ones(10), np.arange(10.0)])
    with pytest.raises(Invalid, match="vary"):
        relative_weights(x, np.arange(10.0) ** 2)


def test_the_quadrant_table_places_each_driver_by_importance_and_performance() -> None:
    rng = np.random.default_rng(5)
    n = 400
    frame = pd.DataFrame({
        "big_friction": rng.random(n) < 0.3,  # strong, lowers the score
        "small_friction": rng.random(n) < 0.3,  # weak, lowers it
        "praise": rng.random(n) < 0.3,  # strong, raises it
        "noise": rng.random(n) < 0.3,  # nothing
    }).astype(int)  # fmt: skip
    frame["score"] = (8 - 3 * frame.big_friction - 0.3 * frame.small_friction
                      + 2.5 * frame.praise + rng.normal(scale=1.0, size=n))  # fmt: skip
    cols = {c: ("signal", c, "dept" if "friction" in c else None) for c in frame.columns[:4]}
    result = analyse(frame, "score", cols, bootstrap=100, seed=1)
    by = {d.key: d for d in result.drivers}
    assert by["big_friction"].quadrant == "fix first"
    assert by["praise"].quadrant == "keep"
    assert by["small_friction"].quadrant == "monitor"
    assert by["big_friction"].direction == -1 and by["praise"].direction == 1
    for d in result.drivers:
        assert d.importance_low <= d.importance <= d.importance_high
        mask = frame[d.key] == 1
        assert d.performance == pytest.approx(frame.score[mask].mean())
    (dept,) = result.departments
    assert dept.importance == pytest.approx(by["big_friction"].importance
                                            + by["small_friction"].importance)  # fmt: skip
    assert sum(d.importance for d in result.drivers) == pytest.approx(result.r2)


@pytest.fixture(scope="module")
def nps_drivers(demo_company: tuple[Engine, Path]) -> service.drv.Drivers:
    engine, root = demo_company
    return service.drivers(engine, root, "nps", bootstrap=100)


def test_on_the_demo_company_the_planted_frictions_are_the_top_nps_drivers(
    demo_company: tuple[Engine, Path], nps_drivers: service.drv.Drivers
) -> None:
    truth = json.loads((demo_company[1] / "files" / "ground_truth.json").read_text())
    planted = {f["friction"] for f in truth["frictions"]}
    top = [d.key for d in nps_drivers.drivers[: len(planted)]]
    assert set(top) == planted
    for d in nps_drivers.drivers:
        if d.key in planted:
            assert d.direction == -1 and d.performance < nps_drivers.mean_outcome
            assert d.importance_low > 0
    assert any(d.kind == "theme" for d in nps_drivers.drivers)


def test_cli_drivers_prints_the_quadrant_and_the_department_sums(
    demo_company: tuple[Engine, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, root = demo_company
    monkeypatch.setenv("CXM_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CXM_DATA_DIR", str(root))
    monkeypatch.setattr(console.console, "width", 200)  # one line per driver
    out = CliRunner().invoke(
        cli, ["insights", "drivers", "--outcome", "churn", "--bootstrap", "20"]
    )
    assert out.exit_code == 0, out.output
    assert "fix first" in out.output and "repeat_contact" in out.output
    by = CliRunner().invoke(
        cli, ["insights", "drivers", "--by", "department", "--bootstrap", "20", "--json"]
    )
    assert by.exit_code == 0, by.output
    body = json.loads(by.output)
    assert {d["key"] for d in body["departments"]} == {"supply_chain", "service", "billing"}
    table = CliRunner().invoke(
        cli, ["insights", "drivers", "--by", "department", "--bootstrap", "20"]
    )
    assert table.exit_code == 0, table.output
    with engine.connect() as conn:
        names = {d.key: d.name for d in org.list_departments(conn)}
    shown = {line.split("│")[1].strip() for line in table.output.splitlines()
             if line.startswith("│")}  # fmt: skip
    assert shown == {names[d["key"]] for d in body["departments"]}  # names, not keys
    bad = CliRunner().invoke(cli, ["insights", "drivers", "--outcome", "ces"])
    assert bad.exit_code == 2


def test_api_drivers_shows_a_manager_only_their_departments_drivers(
    demo_company: tuple[Engine, Path],
) -> None:
    from cxm.web.app import create_app

    engine, root = demo_company
    with engine.begin() as conn:
        uid = auth.create_user(conn, "lead.billing@example.com", "manager",
                               department_key="billing")  # fmt: skip
        manager = {"Authorization": f"Bearer {auth.create_api_key(conn, 'read', user_id=uid)}"}
    settings = load_settings(data_dir=root, database_url=str(engine.url))
    with TestClient(create_app(settings, engine=engine, run_worker=False)) as client:
        everyone = client.get(
            "/api/v1/insights/drivers?bootstrap=10", headers=make_key(engine, "read")
        )
        assert everyone.status_code == 200, everyone.text
        assert len({d["department"] for d in everyone.json()["drivers"]}) > 2
        mine = client.get("/api/v1/insights/drivers?bootstrap=10", headers=manager)
        assert mine.status_code == 200, mine.text
        assert {d["department"] for d in mine.json()["drivers"]} == {"billing"}
        assert [d["key"] for d in mine.json()["departments"]] == ["billing"]
        costs = client.get("/api/v1/insights/attribution", headers=manager).json()
        assert {s["department"] for s in costs["signals"]} == {"billing"}
        bad = client.get("/api/v1/insights/drivers?outcome=ces", headers=manager)
        assert bad.status_code == 422

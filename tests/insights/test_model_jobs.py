"""Training and scoring through the API: durable jobs for admins and CX leads, 409 when no model
can be trained, and ``cxm insights predict`` / ``train`` through a live ``cxm serve``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cxm import console
from cxm.cli.main import app as cli
from cxm.config import load_settings
from cxm.demo.generator import generate
from cxm.demo.load import load
from cxm.insights import facts, jobs, service
from cxm.insights.tables import customer_predictions
from cxm.org import auth
from cxm.store import create_engine, upgrade
from cxm.store import jobs as job_store
from tests.conftest import free_port


def _key(engine: Engine, role: str | None, scope: str = "read") -> dict[str, str]:
    """A key of ``scope``; with ``role``, one belonging to a new user of that role."""
    with engine.begin() as conn:
        user = None
        if role is not None:
            # The demo's support department and its frontline team.
            department = "customer_service" if role == "manager" else None
            team = "frontline" if role == "agent" else None
            user = auth.create_user(conn, f"{role}-{os.urandom(4).hex()}@example.com", role,
                                    password="a long passphrase 1", department_key=department,
                                    team_key=team)  # fmt: skip
        token = auth.create_api_key(conn, scope, user_id=user)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def client(demo_company: tuple[Engine, Path]) -> Iterator[TestClient]:
    from cxm.web.app import create_app

    engine, root = demo_company
    settings = load_settings(data_dir=root, database_url=str(engine.url))
    with TestClient(create_app(settings, engine=engine, run_worker=False)) as c:
        yield c


def _run_jobs(demo_company: tuple[Engine, Path]) -> None:
    engine, root = demo_company
    settings = load_settings(data_dir=root, database_url=str(engine.url))
    assert job_store.run_due(engine, jobs.handlers(settings)) >= 1


def test_post_predict_queues_a_job_that_scores_and_stores_like_the_command(
    client: TestClient, demo_company: tuple[Engine, Path]
) -> None:
    engine, root = demo_company
    headers = _key(engine, "cx_lead")
    started = client.post("/api/v1/insights/predict", json={"top": 5}, headers=headers)
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["state"] == "pending" and job["kind"] == "predict"
    assert started.headers["location"] == job["url"]
    _run_jobs(demo_company)
    done = client.get(job["url"], headers=headers).json()
    assert done["state"] == "done", done
    assert done["progress"] == {"stage": "done", "done": 2, "total": 2}
    result = done["result"]
    # The same scores as the command's service, computed here independently of the job.
    expected = service.score(engine, root)
    assert result["written"] == len(expected.frame)
    assert result["feature_set"] == expected.feature_set
    with engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(customer_predictions)).scalar()
        assert stored == len(expected.frame)
        riskiest = expected.frame.sort_values("churn_risk", ascending=False).iloc[0]
        row = facts.prediction_for(conn, str(riskiest.customer_id))
    assert row is not None
    assert result["top"][0]["customer_id"] == riskiest.customer_id
    assert result["top"][0]["churn_risk"] == pytest.approx(float(riskiest.churn_risk))
    assert row["churn_risk"] == pytest.approx(float(riskiest.churn_risk))
    assert len(result["top"]) == 5
    # Only the caller who started it reads it.
    other = client.get(job["url"], headers=_key(engine, "cx_lead"))
    assert other.status_code == 404


def test_post_train_reports_the_holdout_figures_of_the_command(
    client: TestClient, demo_company: tuple[Engine, Path]
) -> None:
    engine, root = demo_company
    headers = _key(engine, None, "admin")
    started = client.post("/api/v1/insights/train", json={"seed": 3}, headers=headers)
    assert started.status_code == 202, started.text
    _run_jobs(demo_company)
    done = client.get(started.json()["url"], headers=headers).json()
    assert done["state"] == "done", done
    expected = service.train(engine, root, seed=3)
    assert done["result"]["auc"] == pytest.approx(expected.auc)
    assert done["result"]["brier"] == pytest.approx(expected.brier)
    assert done["result"]["holdout"] == expected.holdout


@pytest.mark.parametrize("role", ["manager", "agent", "viewer"])
def test_only_admins_and_cx_leads_may_run_the_models(
    client: TestClient, demo_company: tuple[Engine, Path], role: str
) -> None:
    engine, _ = demo_company
    with engine.connect() as conn:
        before = job_store.pending_count(conn)
    for kind in ("predict", "train"):
        refused = client.post(f"/api/v1/insights/{kind}", headers=_key(engine, role))
        assert refused.status_code == 403, refused.text
        assert "admins and CX leads" in refused.json()["detail"]
    with engine.connect() as conn:
        assert job_store.pending_count(conn) == before


def test_bad_options_are_422_before_anything_is_queued(
    client: TestClient, demo_company: tuple[Engine, Path]
) -> None:
    engine, _ = demo_company
    headers = _key(engine, "cx_lead")
    for body in ({"lead_hours": -1}, {"traits": []}, {"window": 0}, {"top": 5000}):
        refused = client.post("/api/v1/insights/predict", json=body, headers=headers)
        assert refused.status_code == 422, body
    assert client.post("/api/v1/insights/predict").status_code == 401


@pytest.fixture(scope="module")
def no_churner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Path]]:
    """A small demo company whose log has no cancellation: every customer stayed."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    root = tmp_path_factory.mktemp("insights-no-churner")
    generate(root / "files", customers=300, months=3, seed=7)
    path = root / "files" / "interactions.parquet"
    log = pq.read_table(path)
    assert pc.sum(pc.equal(log["name"], "subscription_cancelled")).as_py() > 0
    pq.write_table(log.filter(pc.not_equal(log["name"], "subscription_cancelled")), path)
    eng = create_engine(f"duckdb:///{root / 'cxm.duckdb'}")
    upgrade(eng)
    load(eng, root / "files")
    yield eng, root
    eng.dispose()


def test_a_company_where_nobody_churned_is_409_and_the_cli_says_why(
    no_churner: tuple[Engine, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cxm.web.app import create_app

    engine, root = no_churner
    settings = load_settings(data_dir=root, database_url=str(engine.url))
    headers = _key(engine, "cx_lead")
    with engine.connect() as conn:
        before = job_store.pending_count(conn)  # the demo's own jobs (comments to annotate)
    with TestClient(create_app(settings, engine=engine, run_worker=False)) as client:
        for kind in ("train", "predict"):
            refused = client.post(f"/api/v1/insights/{kind}", headers=headers)
            assert refused.status_code == 409, refused.text
            detail = refused.json()["detail"]
            # What is missing and what to do about it.
            assert "no model can be trained" in detail and " 0 churned" in detail, detail
            assert "cancellation events" in detail, detail
    with engine.connect() as conn:
        assert job_store.pending_count(conn) == before
        customers = conn.exec_driver_sql("select count(*) from customers").scalar()
    counted = int(detail.split(" customers with a lifecycle")[0].split()[-1])
    assert 100 < counted <= customers
    # The command, with no server running, refuses with the same sentence and exit status 2.
    monkeypatch.setenv("CXM_DATABASE_URL", str(engine.url))
    monkeypatch.setenv("CXM_DATA_DIR", str(root))
    for kind in ("train", "predict"):
        out = CliRunner().invoke(cli, ["insights", kind])
        assert out.exit_code == 2, out.output
        assert f"error: {detail}" in " ".join(out.output.split()), out.output
    with engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(customer_predictions))
        assert stored.scalar() == 0


def test_no_model_to_train_is_409_with_the_reason_and_queues_nothing(
    app_client: TestClient, seeded: Engine, admin_headers: dict[str, str]
) -> None:
    for kind in ("predict", "train"):
        refused = app_client.post(f"/api/v1/insights/{kind}", headers=admin_headers)
        assert refused.status_code == 409, refused.text
        detail = refused.json()["detail"]
        assert "no model can be trained" in detail and "import interactions" in detail
    with seeded.connect() as conn:
        assert job_store.pending_count(conn) == 0


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A live ``cxm serve`` owning a small demo company's embedded store."""
    root = tmp_path_factory.mktemp("insights-served")
    generate(root / "files", customers=400, months=4, seed=7)
    url = f"duckdb:///{root / 'cxm.duckdb'}"
    eng = create_engine(url)
    upgrade(eng)
    load(eng, root / "files")
    eng.dispose()  # the server must be the only process holding the file
    port = free_port()
    env = {**os.environ, "CXM_DATA_DIR": str(root), "CXM_DATABASE_URL": url}
    process = subprocess.Popen(
        [sys.executable, "-m", "cxm.cli.main", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "cxm serve exited"
            assert time.monotonic() < deadline, "cxm serve did not answer within 60 s"
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        yield url, root
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_cli_predict_and_train_go_through_the_running_server(
    served: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, root = served
    monkeypatch.setenv("CXM_DATABASE_URL", url)
    monkeypatch.setenv("CXM_DATA_DIR", str(root))
    monkeypatch.setattr(console.console, "width", 200)
    runner = CliRunner()
    stored = runner.invoke(cli, ["insights", "predict", "--top", "3"])
    assert stored.exit_code == 0, stored.output
    assert "customers scored as of" in stored.output
    scored = int(stored.output.split(" customers scored")[0].split()[-1])
    assert scored > 100
    trained = runner.invoke(cli, ["insights", "train", "--json"])
    assert trained.exit_code == 0, trained.output
    assert 0.5 < float(trained.output.split('"auc": ')[1].split(",")[0]) <= 1.0
    bad = runner.invoke(cli, ["insights", "predict", "--lead-hours", "-5"])
    assert bad.exit_code == 2 and "lead_hours" in bad.output

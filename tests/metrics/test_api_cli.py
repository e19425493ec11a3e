"""The metrics REST API and the ``cxm metrics`` / ``cxm export`` commands, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from tests.metrics import factories as f


@pytest.fixture
def facts(seeded: Engine) -> Engine:
    with seeded.begin() as conn:
        from cxm.org.tables import departments, teams

        conn.execute(departments.delete())
        conn.execute(teams.delete())
        f.org(conn)
        f.nps_responses(conn, "delivery", [10] * 10 + [8] * 10 + [3] * 20)
        f.nps_responses(conn, "support_chat", [9] * 30 + [0] * 10)
    return seeded


def test_list_and_compute_over_http(
    app_client: TestClient, facts: Engine, read_headers: dict[str, str]
) -> None:
    names = [m["name"] for m in app_client.get("/api/v1/metrics", headers=read_headers).json()]
    assert "nps" in names and "customer_lifetime_value" in names
    r = app_client.get(
        "/api/v1/metrics/nps",
        params={"by": "department", "filter": "department=operations|service"},
        headers=read_headers,
    )
    assert r.status_code == 200, r.text
    rows = {row["department"]: row for row in r.json()["rows"]}
    assert rows["operations"]["value"] == -25.0 and rows["service"]["value"] == 50.0
    assert rows["service"]["method"] == "nps-adjusted-wald" and rows["service"]["flags"] == []


def test_bad_query_is_a_clear_422(
    app_client: TestClient, facts: Engine, read_headers: dict[str, str]
) -> None:
    r = app_client.get("/api/v1/metrics/nps", params={"by": "colour"}, headers=read_headers)
    assert r.status_code == 422 and "unknown dimension 'colour'" in r.json()["detail"]
    r = app_client.get("/api/v1/metrics/nope", headers=read_headers)
    assert r.status_code == 404


def test_targets_need_admin(
    app_client: TestClient,
    facts: Engine,
    read_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    body = {"target": 10, "dimension": "department", "value": "operations"}
    assert app_client.put("/api/v1/metrics/nps/target", json=body,
                          headers=read_headers).status_code == 403  # fmt: skip
    assert app_client.put("/api/v1/metrics/nps/target", json=body,
                          headers=admin_headers).status_code == 200  # fmt: skip
    r = app_client.get("/api/v1/metrics/nps", params={"by": "department"}, headers=read_headers)
    assert {x["department"]: x["target"] for x in r.json()["rows"]}["operations"] == 10


def test_cli_lists_computes_and_exports(
    duckdb_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cxm.cli.main import app

    with duckdb_engine.begin() as conn:
        f.org(conn)
        f.nps_responses(conn, "delivery", [10] * 30 + [0] * 10)
    duckdb_engine.dispose()
    monkeypatch.setenv("CXM_DATABASE_URL", str(duckdb_engine.url))
    runner = CliRunner()
    listed = runner.invoke(app, ["metrics", "list", "--json"])
    assert listed.exit_code == 0 and "repeat_contact_rate" in listed.output
    out = runner.invoke(app, ["metrics", "nps", "--by", "department", "--format", "json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)[0]["value"] == 50.0
    csv = runner.invoke(app, ["metrics", "nps", "--grain", "month", "--format", "csv"])
    assert csv.output.splitlines()[1].startswith("2025-03-01,nps,50.0")
    bad = runner.invoke(app, ["metrics", "nps", "--by", "colour"])
    assert bad.exit_code == 2 and "unknown dimension 'colour'" in bad.output
    lake = tmp_path / "lake"
    exported = runner.invoke(app, ["export", "--parquet", str(lake)])
    assert exported.exit_code == 0, exported.output
    assert (lake / "responses").is_dir() and "responses: 40 rows" in exported.output

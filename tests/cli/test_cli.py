"""The ``cxm`` command line against a real store (DuckDB and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cxm.cli.main import app
from cxm.org import auth

runner = CliRunner()

ORG = """\
company: {name: Acme}
departments:
  - key: supply_chain
    name: Supply Chain & Delivery
    teams: [{key: last_mile, name: Last Mile, default: true}]
touchpoints:
  - key: delivery
    name: Home delivery
    channel: delivery
    stage: receive
    owner: {department: supply_chain, team: last_mile}
"""


@pytest.fixture
def env(engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Engine:
    monkeypatch.setenv("CXM_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CXM_DATA_DIR", str(tmp_path))
    return engine


def test_init_then_apply_export_and_list(env: Engine, tmp_path: Path) -> None:
    assert runner.invoke(app, ["init"]).exit_code == 0
    org_file = tmp_path / "org.yaml"
    org_file.write_text(ORG)
    applied = runner.invoke(app, ["org", "apply", str(org_file)])
    assert applied.exit_code == 0, applied.output
    assert "1 touchpoints" in applied.output.splitlines()[0]
    again = runner.invoke(app, ["org", "apply", str(org_file)])
    assert "created" not in again.output and "unchanged" in again.output
    exported = yaml.safe_load(runner.invoke(app, ["org", "export"]).output)
    assert exported["company"]["name"] == "Acme"
    assert exported["touchpoints"][0]["owner"] == {
        "department": "supply_chain",
        "team": "last_mile",
    }
    listed = runner.invoke(app, ["org", "touchpoints", "--json"])
    assert '"key": "delivery"' in listed.output


def test_bad_org_file_exits_2_with_line_and_reason(env: Engine, tmp_path: Path) -> None:
    runner.invoke(app, ["init"])
    bad = tmp_path / "bad.yaml"
    bad.write_text(ORG.replace("owner: {department: supply_chain, team: last_mile}",
                               "owner: {department: logistics}"))  # fmt: skip
    result = runner.invoke(app, ["org", "apply", str(bad)])
    assert result.exit_code == 2
    assert "line 11" in result.output and "logistics" in result.output
    assert "delivery" not in runner.invoke(app, ["org", "touchpoints", "--json"]).output


def test_commands_refuse_an_uninitialised_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CXM_DATABASE_URL", f"duckdb:///{tmp_path / 'fresh.duckdb'}")
    result = runner.invoke(app, ["org", "departments"])
    assert result.exit_code == 1 and "cxm init" in result.output


def test_keys_are_shown_once_and_work(env: Engine) -> None:
    runner.invoke(app, ["init"])
    created = runner.invoke(app, ["keys", "create", "--scope", "ingest", "--name", "web sdk"])
    assert created.exit_code == 0
    token = created.output.strip().splitlines()[-1]
    assert token.startswith("cxm_")
    with env.connect() as conn:
        who = auth.authenticate_key(conn, token)
    assert who is not None and who.scope == "ingest"
    listing = runner.invoke(app, ["keys", "list", "--json"]).output
    assert token not in listing and "web sdk" in listing
    wrong = runner.invoke(app, ["keys", "create", "--scope", "superuser"])
    assert wrong.exit_code == 2 and "unknown scope" in wrong.output


def test_users_create_with_role_checks(env: Engine) -> None:
    runner.invoke(app, ["init"])
    ok = runner.invoke(
        app, ["users", "create", "Mia@Example.com", "--role", "manager", "--department", "billing",
              "--password", "s3cret-pass"],
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    no_dept = runner.invoke(app, ["users", "create", "x@example.com", "--role", "manager",
                                  "--password", "pw"])  # fmt: skip
    assert no_dept.exit_code == 2 and "needs a department" in no_dept.output
    dup = runner.invoke(app, ["users", "create", "mia@example.com", "--role", "viewer",
                              "--password", "pw"])  # fmt: skip
    assert dup.exit_code == 2 and "already exists" in dup.output

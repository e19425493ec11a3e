"""cxm rules apply|run and cxm cases list|show|assign|resolve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cxm.cli.main import app
from tests.actions.conftest import DETRACTOR_RULES, add_agent, add_response, setup_org

runner = CliRunner()


def test_rules_and_cases_from_the_command_line(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CXM_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CXM_DATA_DIR", str(tmp_path))
    with engine.begin() as conn:
        setup_org(conn)
        add_agent(conn, "dee@example.com", "delivery_team")
        add_response(conn, None, "delivery", nps=0)
    rules = tmp_path / "rules.yaml"
    rules.write_text(DETRACTOR_RULES)
    assert runner.invoke(app, ["rules", "apply", str(rules)]).exit_code == 0
    first = runner.invoke(app, ["rules", "run"])
    assert first.exit_code == 0 and "opened 1 case(s)" in first.output
    assert "opened 0 case(s)" in runner.invoke(app, ["rules", "run"]).output
    listed = runner.invoke(app, ["cases", "list", "--format", "json"])
    (case,) = json.loads(listed.output)
    assert case["touchpoint_key"] == "delivery" and case["team_key"] == "delivery_team"
    table = runner.invoke(app, ["cases", "list"])
    assert table.exit_code == 0 and "Cases" in table.output
    moved = runner.invoke(
        app, ["cases", "assign", case["id"], "dee@example.com", "--reason", "knows the route"]
    )
    assert moved.exit_code == 0, moved.output
    assert runner.invoke(app, ["cases", "resolve", case["id"]]).exit_code == 0
    shown = json.loads(runner.invoke(app, ["cases", "show", case["id"]]).output)
    assert shown["status"] == "resolved"
    missing = runner.invoke(app, ["cases", "show", "nope"])
    assert missing.exit_code == 2 and "case 'nope' does not exist" in missing.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - key: x\n    name: X\n    when: {response: {nps_max: 12}}\n")
    failed = runner.invoke(app, ["rules", "apply", str(bad)])
    assert failed.exit_code == 2 and "line 4" in failed.output

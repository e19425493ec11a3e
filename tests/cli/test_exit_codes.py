"""One exit-code convention: 0 ok, 1 a failure of the system, 2 bad input; one line each."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine, make_url
from typer.testing import CliRunner

from cxm.cli.main import app
from tests.conftest import POSTGRES_URL

runner = CliRunner()


def _cxm(*args: str, url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """The real command in its own process, as a person runs it."""
    env = {**os.environ, "CXM_DATABASE_URL": url, "CXM_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "cxm.cli.main", *args], capture_output=True,
                          text=True, env=env, timeout=60)  # fmt: skip


def test_a_missing_postgres_database_gives_one_line_naming_it_and_exit_1(tmp_path: Path) -> None:
    missing = f"cxm_missing_{secrets.token_hex(4)}"
    url = make_url(POSTGRES_URL).set(database=missing, password="s3cret-pw")
    shown = url.render_as_string(hide_password=False)
    out = _cxm("org", "departments", url=shown, data_dir=tmp_path)
    assert out.returncode == 1
    assert out.stdout == "" and "Traceback" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert missing in line and "does not exist" in line and f"createdb {missing}" in line
    assert "s3cret-pw" not in line and "***" in line


def test_init_against_a_missing_database_says_so_too(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = f"cxm_missing_{secrets.token_hex(4)}"
    url = make_url(POSTGRES_URL).set(database=missing).render_as_string(hide_password=False)
    monkeypatch.setenv("CXM_DATABASE_URL", url)
    out = runner.invoke(app, ["init"])
    assert out.exit_code == 1 and len(out.output.strip().splitlines()) == 1
    assert missing in out.output and "Traceback" not in out.output


def test_a_database_server_that_does_not_answer_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = make_url(POSTGRES_URL).set(port=port).render_as_string(hide_password=False)
    monkeypatch.setenv("CXM_DATABASE_URL", url)
    out = runner.invoke(app, ["cases", "list"])
    assert out.exit_code == 1
    assert f"127.0.0.1:{port}" in out.output and "database server runs" in out.output


@pytest.fixture
def env(engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Engine:
    monkeypatch.setenv("CXM_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CXM_DATA_DIR", str(tmp_path))
    assert runner.invoke(app, ["init"]).exit_code == 0
    return engine


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cases", "show", "no-such-case"], "does not exist"),
        (["cases", "list", "--limit", "0"], "--limit 0"),
        (["cases", "list", "--status", "bogus"], "not a case status"),
        (["text", "impact", "--department", "nosuch"], "does not exist; known:"),
        (["customers", "show", "nobody@example.com"], "no customer for"),
        (["metrics", "show", "nps", "--start", "yesterday"], "is not a date"),
        (["metrics", "show", "nps", "--filter", "department"], "DIMENSION=VALUE"),
        (["keys", "create", "--scope", "root"], "unknown scope"),
        (["org", "departments", "--format", "yaml"], "is unknown"),
        (["cases", "list", "--no-such-option"], "No such option"),
    ],
)
def test_bad_input_exits_2_with_a_message(env: Engine, args: list[str], message: str) -> None:
    out = runner.invoke(app, args)
    assert out.exit_code == 2, out.output
    assert message in out.output and "Traceback" not in out.output


def test_success_exits_0(env: Engine) -> None:
    assert runner.invoke(app, ["org", "departments"]).exit_code == 0
    assert runner.invoke(app, ["cases", "list"]).exit_code == 0


def test_an_uninitialised_store_is_a_failure_of_the_system(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CXM_DATABASE_URL", f"duckdb:///{tmp_path / 'fresh.duckdb'}")
    out = runner.invoke(app, ["cases", "list"])
    assert out.exit_code == 1 and "cxm init" in out.output


def test_assigning_a_queued_case_to_an_agent_names_the_queue_and_team_moves_it(
    env: Engine,
) -> None:
    from cxm.actions import service
    from cxm.org.scope import Scope
    from cxm.yamldoc import parse
    from tests.actions.conftest import (
        DETRACTOR_RULES,
        add_agent,
        add_customer,
        add_response,
        setup_org,
    )

    with env.begin() as conn:
        setup_org(conn)
        service.apply_rules(conn, parse(DETRACTOR_RULES))
        add_agent(conn, "dee@example.com", "delivery_team")
        add_response(conn, add_customer(conn, "ann@example.com"), None, nps=3)
        service.run_rules(conn)
        (case,) = service.list_cases(conn, Scope("admin"))
    assert case["team_key"] is None  # about the whole company: the CX lead queue
    refused = runner.invoke(app, ["cases", "assign", case["id"], "dee@example.com"])
    assert refused.exit_code == 2
    assert "not the CX lead queue" in refused.output and "'None'" not in refused.output
    moved = runner.invoke(
        app, ["cases", "assign", case["id"], "dee@example.com", "--team", "delivery_team"]
    )
    assert moved.exit_code == 0, moved.output
    with env.connect() as conn:
        after = service.get_case(conn, Scope("admin"), case["id"])
    assert after["team_key"] == "delivery_team" and after["assignee"] == "dee@example.com"

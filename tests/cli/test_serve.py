"""Writing from the CLI while a live 'cxm serve' owns the embedded store."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cxm.cli.main import SERVER_KEY_NAME, app
from cxm.console import RunningServer, call_server, running_server, write_running_server
from cxm.org import auth
from cxm.org.scope import Scope
from tests.actions.conftest import DETRACTOR_RULES
from tests.conftest import free_port, migrated_duckdb

runner = CliRunner()


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    data_dir: Path
    url: str
    stale_key: str
    case_id: str


def _leave_a_crashed_servers_file(eng: Engine, data_dir: Path) -> str:
    """What a server killed with -9 leaves: its file (with a pid now gone) and a live key."""
    with eng.begin() as conn:
        token = auth.create_api_key(conn, "admin", name="crashed server")
        (key,) = [k for k in auth.list_api_keys(conn) if k["name"] == "crashed server"]
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    crashed = RunningServer("http://127.0.0.1:1", int(gone.stdout), token, str(key["id"]))
    write_running_server(data_dir, crashed)
    return str(key["id"])


def _a_case_for_the_delivery_team(eng: Engine) -> str:
    """A detractor's case, routed to the delivery team, which has an agent."""
    from cxm.actions import service
    from cxm.surveys import service as surveys
    from cxm.yamldoc import parse, read
    from tests.actions.conftest import add_agent, add_customer, add_response, setup_org

    templates = Path(surveys.__file__).parent / "templates"
    with eng.begin() as conn:
        setup_org(conn)
        surveys.apply_definition(conn, read(templates / "relationship_nps.yaml"))
        service.apply_rules(conn, parse(DETRACTOR_RULES))
        add_agent(conn, "dee@example.com", "delivery_team")
        add_agent(conn, "eve@example.com", "delivery_team")
        add_response(conn, add_customer(conn, "ann@example.com"), "delivery", nps=3)
        service.run_rules(conn)
        (case,) = service.list_cases(conn, Scope("admin"))
    return str(case["id"])


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "cxm serve exited"
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("cxm serve did not answer within 60 s")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("served")
    url = f"duckdb:///{data_dir / 'cxm.duckdb'}"
    eng = migrated_duckdb(data_dir / "cxm.duckdb")
    stale_key = _leave_a_crashed_servers_file(eng, data_dir)
    case_id = _a_case_for_the_delivery_team(eng)
    eng.dispose()  # the server must be the only process holding the file
    env = {**os.environ, "CXM_DATA_DIR": str(data_dir), "CXM_DATABASE_URL": url}
    # A port nothing listens on: with a fixed one, another server already there would answer
    # the health check in this one's place.
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cxm.cli.main", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_until_up(f"http://127.0.0.1:{port}", process)
        yield Served(process, data_dir, f"http://127.0.0.1:{port}", stale_key, case_id)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


@pytest.fixture
def cli_env(served: Served, monkeypatch: pytest.MonkeyPatch) -> Served:
    monkeypatch.setenv("CXM_DATA_DIR", str(served.data_dir))
    monkeypatch.setenv("CXM_DATABASE_URL", f"duckdb:///{served.data_dir / 'cxm.duckdb'}")
    return served


def test_the_discovery_file_names_the_server_and_only_its_owner_reads_it(cli_env: Served) -> None:
    path = cli_env.data_dir / "server.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    found = json.loads(path.read_text())
    assert found["url"] == cli_env.url and found["pid"] == cli_env.process.pid


def test_keys_create_goes_through_the_running_servers_api(cli_env: Served) -> None:
    created = runner.invoke(app, ["keys", "create", "--scope", "read", "--name", "dashboards"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    request = urllib.request.Request(
        f"{cli_env.url}/api/v1/departments", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200 and isinstance(json.loads(answer.read()), list)


def test_a_bad_key_request_through_the_server_exits_2(cli_env: Served) -> None:
    refused = runner.invoke(app, ["keys", "create", "--scope", "root"])
    assert refused.exit_code == 2 and "unknown scope 'root'" in refused.output


def test_a_command_that_never_runs_in_the_server_says_in_one_line_that_it_holds_the_store(
    cli_env: Served,
) -> None:
    out = runner.invoke(app, ["init"])
    assert out.exit_code == 1
    (line,) = out.output.strip().splitlines()
    assert "'cxm serve'" in line and cli_env.url in line and f"pid {cli_env.process.pid}" in line


def test_other_commands_are_run_by_the_server(cli_env: Served, tmp_path: Path) -> None:
    org = tmp_path / "org.yaml"
    org.write_text("company: {name: Acme}\n")
    out = runner.invoke(app, ["org", "apply", str(org)])
    assert out.exit_code == 0, out.output
    listed = runner.invoke(app, ["org", "departments", "--format", "csv"])
    assert listed.exit_code == 0 and listed.stdout.startswith("key,name"), listed.output


def test_rules_apply_and_run_go_through_the_running_servers_api(
    cli_env: Served, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(DETRACTOR_RULES)
    applied = runner.invoke(app, ["rules", "apply", str(rules)])
    assert applied.exit_code == 0 and "applied 1 rule(s): detractor" in applied.output
    ran = runner.invoke(app, ["rules", "run"])
    assert ran.exit_code == 0 and "opened 0 case(s)" in ran.output, ran.output
    rules.write_text("rules:\n  - key: x\n    name: X\n    when: {response: {nps_max: 12}}\n")
    refused = runner.invoke(app, ["rules", "apply", str(rules)])
    assert refused.exit_code == 2 and "line 4" in refused.output, refused.output


def test_cases_assign_and_resolve_go_through_the_running_servers_api(cli_env: Served) -> None:
    case = cli_env.case_id
    server = running_server(cli_env.data_dir)
    assert server is not None
    # Routing gave the case to one of the team's two agents; move it to the other.
    routed = call_server(server, "GET", f"/cases/{case}")["assignee"]
    other = ({"dee@example.com", "eve@example.com"} - {routed}).pop()
    assigned = runner.invoke(app, ["cases", "assign", case, other, "--reason", "route"])
    assert assigned.exit_code == 0, assigned.output
    assert f"case {case} assigned to {other}" in assigned.output
    resolved = runner.invoke(app, ["cases", "resolve", case, "--reason", "parcel re-sent"])
    assert resolved.exit_code == 0 and f"case {case} resolved" in resolved.output
    unknown = runner.invoke(app, ["cases", "resolve", "no-such-case"])
    assert unknown.exit_code == 2 and "does not exist" in unknown.output
    found = call_server(server, "GET", f"/cases/{case}")
    assert found["status"] == "resolved" and found["assignee"] == other
    assert [e["reason"] for e in found["history"]][-2:] == ["route", "parcel re-sent"]


def test_stopping_the_server_removes_the_file_and_revokes_its_key(cli_env: Served) -> None:
    cli_env.process.send_signal(signal.SIGTERM)
    assert cli_env.process.wait(timeout=30) == 0
    assert not (cli_env.data_dir / "server.json").exists()
    listed = runner.invoke(app, ["keys", "list", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    keys = {k["name"]: k for k in json.loads(listed.stdout)}
    assert keys[SERVER_KEY_NAME]["revoked_at"] is not None
    assert keys["dashboards"]["revoked_at"] is None
    rules = runner.invoke(app, ["rules", "list", "--format", "json"])
    assert [r["key"] for r in json.loads(rules.stdout)] == ["detractor"]


def test_a_file_left_by_a_crashed_server_is_replaced_and_its_key_revoked(cli_env: Served) -> None:
    listed = runner.invoke(app, ["keys", "list", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    revoked = {k["id"]: k["revoked_at"] for k in json.loads(listed.stdout)}
    assert revoked[cli_env.stale_key] is not None

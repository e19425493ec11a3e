"""Every command works while a live 'cxm serve' owns the embedded store: the server runs it.

Real ``cxm`` processes against a real server (uvicorn in its own process, on a free port): what
they print and their exit codes are those the same commands give without a server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cxm import console
from cxm.cli import forward
from cxm.cli.main import app
from cxm.console import running_server
from cxm.store import create_engine
from tests.cli.test_cli import ORG
from tests.cli.test_serve import _wait_until_up
from tests.conftest import free_port, migrated_duckdb

SURVEY = Path(__file__).parents[2] / "src/cxm/surveys/templates/delivery_csat.yaml"
INTERACTIONS = """\
event_id,name,email,timestamp,touchpoint
fw-1,order_delivered,ann@example.com,2026-10-01T10:00:00Z,delivery
fw-2,order_delivered,bob@example.com,2026-10-02T10:00:00Z,delivery
fw-3,order_delivered,ann@example.com,2026-10-03T10:00:00Z,delivery
"""
# Reads and refusals whose output must not change when a server runs them.
SAME = [
    ["org", "touchpoints"],
    ["customers", "list", "--limit", "0"],
    ["users", "create", "x@example.com", "--role", "manager", "--password", "pw"],
    ["surveys", "link", "no_such_survey"],
    ["import", "interactions", "no-such-file.csv"],
]


@dataclass
class Served:
    data_dir: Path
    url: str
    env: dict[str, str]
    before: dict[str, tuple[int, str, str]]  # the SAME commands' answers without a server


def cxm(env: dict[str, str], *args: str, cwd: Path | None = None, stdin: str = "") -> Any:
    return subprocess.run(
        [sys.executable, "-m", "cxm.cli.main", *args], env=env, cwd=cwd, input=stdin,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("forward")
    url = f"duckdb:///{data_dir / 'cxm.duckdb'}"
    migrated_duckdb(data_dir / "cxm.duckdb").dispose()
    env = {**os.environ, "CXM_DATA_DIR": str(data_dir), "CXM_DATABASE_URL": url,
           "COLUMNS": "100"}  # fmt: skip
    env.pop("CXM_BASE_URL", None)
    (data_dir / "org.yaml").write_text(ORG)
    assert cxm(env, "org", "apply", str(data_dir / "org.yaml")).returncode == 0
    assert cxm(env, "surveys", "apply", str(SURVEY)).returncode == 0
    before = {" ".join(a): _answer(cxm(env, *a)) for a in SAME}
    port = free_port()
    with (data_dir / "serve.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cxm.cli.main", "serve", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_until_up(f"http://127.0.0.1:{port}", process)
        yield Served(data_dir, f"http://127.0.0.1:{port}", env, before)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answer(done: Any) -> tuple[int, str, str]:
    return done.returncode, done.stdout, done.stderr


def _admin_key(served: Served) -> str:
    created = cxm(served.env, "keys", "create", "--scope", "admin", "--name", "test")
    assert created.returncode == 0, created.stderr
    return str(created.stdout.strip().splitlines()[-1])


def _call(served: Served, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        served.url + path,
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize("args", SAME, ids=" ".join)
def test_a_command_prints_and_exits_as_it_does_without_a_server(
    served: Served, args: list[str]
) -> None:
    assert _answer(cxm(served.env, *args)) == served.before[" ".join(args)]


def test_the_answers_above_are_real(served: Served) -> None:
    # The comparison is worth something only if the commands printed and refused.
    assert "Home delivery" in served.before["org touchpoints"][1]
    assert served.before["customers list --limit 0"][0] == 2
    code, out, err = served.before["users create x@example.com --role manager --password pw"]
    assert code == 2 and out == "" and "needs a department" in err


def test_writes_land_in_the_servers_store(served: Served, tmp_path: Path) -> None:
    folder = tmp_path / "work"
    (folder / "files").mkdir(parents=True)
    (folder / "files" / "org.yaml").write_text(ORG.replace("Home delivery", "Doorstep"))
    (folder / "files" / "events.csv").write_text(INTERACTIONS)
    applied = cxm(served.env, "org", "apply", "files/org.yaml", cwd=folder)
    assert applied.returncode == 0 and "updated: 1 touchpoints" in applied.stdout, applied
    imported = cxm(served.env, "import", "interactions", "files/events.csv", cwd=folder)
    assert imported.returncode == 0, imported.stderr
    user = cxm(served.env, "users", "create", "mia@example.com", "--role", "admin",
               "--password", "s3cret-pass")  # fmt: skip
    assert (user.returncode, user.stdout) == (0, "created admin mia@example.com\n")
    link = cxm(served.env, "surveys", "link", "delivery_csat", "--customer", "ann@example.com")
    assert link.returncode == 0 and link.stdout.startswith(served.url + "/s/"), link
    embed = cxm(served.env, "surveys", "embed", "delivery_csat")
    assert embed.returncode == 0 and f"{served.url}/s/open/delivery_csat" in embed.stdout

    token = _admin_key(served)
    status, touchpoints = _call(served, "/api/v1/touchpoints", token)
    assert status == 200 and [t["name"] for t in touchpoints] == ["Doorstep"]
    status, ann = _call(served, "/api/v1/customers?email=ann@example.com", token)
    assert status == 200 and ann["interaction_count"] == 2
    again = cxm(served.env, "users", "create", "mia@example.com", "--role", "viewer",
                "--password", "pw")  # fmt: skip
    assert again.returncode == 2 and "already exists" in again.stderr


def test_a_relative_path_that_does_not_exist_is_named_as_typed(
    served: Served, tmp_path: Path
) -> None:
    refused = cxm(served.env, "import", "interactions", "missing.csv", cwd=tmp_path)
    assert refused.returncode == 2 and "error: missing.csv: cannot read the file" in (
        refused.stderr
    )
    assert str(tmp_path) not in refused.stderr


def test_prompts_get_the_answers_typed_to_the_caller(served: Served) -> None:
    # No --password: asked (and confirmed) here; the server's run gets the same answers.
    created = cxm(served.env, "users", "create", "zoe@example.com", "--role", "viewer",
                  stdin="pass-word-1\npass-word-1\n")  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert created.stdout.count("Password") == 1 and "created viewer zoe@example.com" in (
        created.stdout
    )
    signed_in = cxm(served.env, "users", "create", "zoe@example.com", "--role", "viewer",
                    "--password", "pw")  # fmt: skip
    assert signed_in.returncode == 2 and "already exists" in signed_in.stderr


def test_the_route_refuses_any_other_key(served: Served) -> None:
    token = _admin_key(served)
    body = {"argv": ["org", "departments"], "cwd": "/"}
    status, answer = _call(served, "/api/v1/commands", token, body)
    assert status == 403 and "server's own local key" in answer["detail"]
    status, _ = _call(served, "/api/v1/commands", "cxm_nothing_valid", body)
    assert status == 401


def test_commands_that_never_run_in_a_server_are_refused(served: Served) -> None:
    server = running_server(served.data_dir)
    assert server is not None
    status, answer = _call(served, "/api/v1/commands", server.token,
                           {"argv": ["init"], "cwd": "/"})  # fmt: skip
    assert status == 400 and "stop 'cxm serve'" in answer["detail"]
    status, answer = _call(served, "/api/v1/commands", server.token,
                           {"argv": ["org", "departments"], "cwd": "relative"})  # fmt: skip
    assert status == 400 and "absolute" in answer["detail"]
    init = cxm(served.env, "init")
    assert init.returncode == 1
    (line,) = init.stderr.strip().splitlines()
    assert "'cxm serve'" in line and served.url in line


def test_a_server_that_does_not_answer_exits_1_in_one_line(
    served: Served, tmp_path: Path, refused_port: int
) -> None:
    # A copy of the store's folder whose server.json names a live process that does not
    # listen: this test's own.
    from cxm.console import RunningServer, write_running_server

    server = running_server(served.data_dir)
    assert server is not None
    silent = RunningServer(f"http://127.0.0.1:{refused_port}", os.getpid(), "cxm_x", "k")
    write_running_server(tmp_path, silent)
    env = {**served.env, "CXM_DATA_DIR": str(tmp_path)}  # the store: still the served one
    done = cxm(env, "org", "departments")
    assert done.returncode == 1 and done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert "did not answer" in line and silent.url in line


# ---- in-process: the runner's streams, one thread at a time ----


def test_forwarded_commands_and_other_threads_never_mix_their_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from typer._click import termui

    url = f"duckdb:///{tmp_path / 'cxm.duckdb'}"
    eng = migrated_duckdb(tmp_path / "cxm.duckdb")
    monkeypatch.setenv("CXM_DATABASE_URL", url)
    monkeypatch.setenv("CXM_DATA_DIR", str(tmp_path))
    (tmp_path / "org.yaml").write_text(ORG)
    assert CliRunner().invoke(app, ["org", "apply", str(tmp_path / "org.yaml")]).exit_code == 0
    for name in ("stdout", "stderr", "stdin"):
        monkeypatch.setattr(sys, name, getattr(sys, name))  # put back after the test
    for name in ("visible_prompt_func", "hidden_prompt_func"):
        monkeypatch.setattr(termui, name, getattr(termui, name))
    monkeypatch.setattr(console, "_served_engine", None)
    forward.install(eng)

    results: dict[str, dict[str, Any]] = {}
    stop = threading.Event()

    def chatter() -> None:  # a server thread printing while commands run
        while not stop.is_set():
            print("chatter")
            time.sleep(0.001)

    def run(name: str, argv: list[str]) -> None:
        results[name] = forward.run(argv, str(tmp_path))

    talker = threading.Thread(target=chatter)
    talker.start()
    runs = [
        threading.Thread(target=run, args=(f"json{i}", ["org", "touchpoints", "--json"]))
        for i in range(3)
    ] + [threading.Thread(target=run, args=("bad", ["customers", "list", "--limit", "0"]))]
    for t in runs:
        t.start()
    for t in runs:
        t.join()
    stop.set()
    talker.join()

    for i in range(3):
        got = results[f"json{i}"]
        assert got["exit_code"] == 0 and got["stderr"] == ""
        assert [t["key"] for t in json.loads(got["stdout"])] == ["delivery"]
    assert results["bad"] == {"exit_code": 2, "stdout": "",
                              "stderr": "error: --limit 0: give 1 or more\n"}  # fmt: skip
    printed = capfd.readouterr().out
    assert "chatter" in printed and "delivery" not in printed
    with eng.connect() as conn:  # the engine the commands shared is still usable
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1


def test_a_command_that_crashes_exits_1_with_its_message_and_the_route_checks_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from cxm.config import load_settings
    from cxm.org import auth
    from cxm.web.app import create_app

    for name in ("stdout", "stderr", "stdin"):
        monkeypatch.setattr(sys, name, getattr(sys, name))
    monkeypatch.setattr(console, "_served_engine", None)
    bare = create_engine(f"duckdb:///{tmp_path / 'bare.duckdb'}")  # no tables: a broken store
    forward.install(bare)
    crashed = forward.run(["org", "departments"], str(tmp_path))
    assert crashed["exit_code"] == 1 and crashed["stdout"] == ""
    (line,) = crashed["stderr"].splitlines()
    assert line.startswith("error: ") and "departments" in line
    refused = forward.run(["customers", "list", "--offset", "-1"], str(tmp_path))
    assert refused == {"exit_code": 2, "stdout": "",
                       "stderr": "error: --offset -1: give 0 or more\n"}  # fmt: skip

    url = f"duckdb:///{tmp_path / 'cxm.duckdb'}"
    eng = migrated_duckdb(tmp_path / "cxm.duckdb")
    with eng.begin() as conn:
        local = auth.create_api_key(conn, "admin", name="local")
    web = create_app(load_settings(data_dir=tmp_path, database_url=url), engine=eng,
                     run_worker=False)  # fmt: skip
    body = {"argv": ["org", "departments"], "cwd": str(tmp_path)}
    headers = {"Authorization": f"Bearer {local}"}
    with TestClient(web) as client:  # its client is not on the loopback address
        answer = client.post("/api/v1/commands", json=body, headers=headers)
        assert answer.status_code == 404 and "runs no cxm commands" in answer.json()["detail"]
        web.state.command_runner = forward.run
        web.state.local_cli_token = local
        answer = client.post("/api/v1/commands", json=body, headers=headers)
        assert answer.status_code == 403 and "this machine" in answer.json()["detail"]

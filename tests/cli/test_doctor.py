"""`cxm doctor` checks an installation and exits 0 (nothing failed) or 1 (something did)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cxm.cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _real_password_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite's cheap password profile fails its own check: these tests see the default."""
    monkeypatch.delenv("CXM_ARGON2_PROFILE", raising=False)


def test_a_working_store_passes_and_a_missing_mail_server_only_warns(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, refused_port: int
) -> None:
    monkeypatch.setenv("CXM_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CXM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CXM_SMTP_PORT", str(refused_port))
    out = runner.invoke(app, ["doctor"])
    assert out.exit_code == 0, out.output
    assert "ok   migrations: schema at the newest migration" in out.output
    assert "warn mail: no mail server at 127.0.0.1:" in out.output and "CXM_SMTP_HOST" in out.output


def test_a_store_without_its_schema_fails_and_says_to_run_init(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CXM_DATABASE_URL", f"duckdb:///{tmp_path / 'empty.duckdb'}")
    monkeypatch.setenv("CXM_DATA_DIR", str(tmp_path))
    out = runner.invoke(app, ["doctor"])
    assert out.exit_code == 1
    assert "FAIL migrations: the store has no schema yet" in out.output
    assert "fix: run: cxm init" in out.output and "1 check(s) failed" in out.output


def test_a_missing_postgres_database_fails_and_says_how_to_create_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from sqlalchemy.engine import make_url

    from tests.conftest import POSTGRES_URL

    url = make_url(POSTGRES_URL).set(database="cxm_doctor_nowhere")
    monkeypatch.setenv("CXM_DATABASE_URL", url.render_as_string(hide_password=False))
    monkeypatch.setenv("CXM_DATA_DIR", str(tmp_path))
    out = runner.invoke(app, ["doctor"])
    assert out.exit_code == 1
    (store,) = [line for line in out.output.splitlines() if line.startswith("FAIL store")]
    assert 'database "cxm_doctor_nowhere" does not exist' in store
    assert "OperationalError" not in out.output and "Traceback" not in out.output
    assert "fix: create it (createdb cxm_doctor_nowhere)" in out.output


def test_the_test_suites_password_profile_fails_and_the_default_passes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CXM_DATABASE_URL", f"duckdb:///{tmp_path / 'empty.duckdb'}")
    monkeypatch.setenv("CXM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CXM_ARGON2_PROFILE", "cheapest")
    out = runner.invoke(app, ["doctor"])
    assert out.exit_code == 1
    assert "FAIL passwords: argon2id, profile CHEAPEST (8 KiB, 1 pass, 1 lane): for test " in (
        out.output
    )
    assert "fix: unset CXM_ARGON2_PROFILE" in out.output
    monkeypatch.delenv("CXM_ARGON2_PROFILE")
    out = runner.invoke(app, ["doctor"])
    assert "ok   passwords: argon2id, profile RFC_9106_LOW_MEMORY (64 MiB, 3 passes, 4 lanes)" in (
        out.output
    )

"""docs/cli.md's worked example runs, and each line exits with the code the page states."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cxm.cli.main import app
from cxm.console import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK

PAGE = Path(__file__).parents[2] / "docs" / "cli.md"
LINE = re.compile(r"^\$ cxm (?P<args>.+?)\s+# exit (?P<code>\d)$", re.M)


def test_the_page_states_the_codes_the_cli_uses() -> None:
    text = PAGE.read_text(encoding="utf-8")
    for code, word in ((EXIT_OK, "done"), (EXIT_FAILURE, "failure"), (EXIT_BAD_INPUT, "bad")):
        assert re.search(rf"^\| {code} \| [^|]*{word}", text, re.M), code


def test_the_worked_example_exits_as_documented(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CXM_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CXM_DATA_DIR", str(tmp_path))
    # As on a fresh machine: the suite's cheap password hashes make `cxm doctor` fail by design.
    monkeypatch.delenv("CXM_ARGON2_PROFILE", raising=False)
    lines = LINE.findall(PAGE.read_text(encoding="utf-8"))
    assert len(lines) >= 6
    runner = CliRunner()
    for args, code in lines:
        out = runner.invoke(app, shlex.split(args))
        assert out.exit_code == int(code), (args, out.output)

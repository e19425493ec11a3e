"""'cxm --help' stays fast: starting the CLI or a group's help imports no heavy library."""

from __future__ import annotations

import json
import subprocess
import sys

import typer

from cxm.cli.main import LAZY, app, load_command

HEAVY = ("ibis", "pandas", "scipy", "numpy", "sklearn", "torch", "sqlalchemy", "alembic",
         "duckdb", "fastapi", "uvicorn", "plotly", "pyarrow", "numba")  # fmt: skip

PROBE = """
import json, sys
import cxm.cli.main as main
root = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
for name in main.LAZY:
    main.load_command(name)
groups = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
print(json.dumps({"root": root, "groups": groups}))
"""


def test_importing_the_cli_and_every_group_imports_no_heavy_library() -> None:
    probe = f"HEAVY = {HEAVY!r}\n{PROBE}"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60)  # fmt: skip
    loaded = json.loads(out.stdout)
    assert loaded["root"] == []
    assert loaded["groups"] == []


def test_help_lines_in_the_table_are_the_groups_own() -> None:
    for name, (line, _) in LAZY.items():
        command = load_command(name)
        assert (command.help or "").split("\n\n")[0].strip() == line, name


def test_root_help_lists_every_group_and_command() -> None:
    from typer.testing import CliRunner

    out = CliRunner().invoke(app, ["--help"])
    assert out.exit_code == 0
    for name in [*LAZY, "init", "serve"]:
        assert f" {name} " in out.output, name


def test_the_text_groups_defaults_match_the_models() -> None:
    from cxm.text import cli, jobs, sentiment

    assert cli.TIERS == sentiment.TIERS and cli.BATCH == jobs.BATCH


def test_each_groups_help_answers() -> None:
    from typer.testing import CliRunner

    runner = CliRunner()
    for name in LAZY:
        out = runner.invoke(app, [name, "--help"])
        assert out.exit_code == 0, (name, out.output)
    assert isinstance(typer.main.get_command(app), typer.core.TyperGroup)


def test_the_insights_window_default_is_the_analytics_one() -> None:
    from cxm.insights import analytics
    from cxm.insights import cli as insights_cli

    assert insights_cli.WINDOW_DAYS == analytics.WINDOW_DAYS


def test_the_insights_model_defaults_are_the_libraries_ones() -> None:
    from cxm.insights import cli as insights_cli
    from cxm.insights import drivers, predict

    assert insights_cli.TRAITS.split(",") == list(predict.TRAITS)
    assert insights_cli.PREDICT_WINDOW_DAYS == predict.WINDOW_DAYS
    assert insights_cli.LEAD_HOURS == predict.LEAD_HOURS
    assert insights_cli.SEED == predict.SEED == drivers.SEED
    assert insights_cli.BOOTSTRAP == drivers.BOOTSTRAP

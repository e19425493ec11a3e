"""CLI lists: whole ids that paste back, a total, pages, and CSV / JSON (DuckDB and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cxm.cli.main import app
from tests.actions.conftest import DETRACTOR_RULES, add_customer, add_response, setup_org

runner = CliRunner()
CASES = 5


@pytest.fixture
def with_org(engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Engine:
    monkeypatch.setenv("CXM_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CXM_DATA_DIR", str(tmp_path))
    with engine.begin() as conn:
        setup_org(conn)
    return engine


@pytest.fixture
def with_cases(with_org: Engine, tmp_path: Path) -> Engine:
    engine = with_org
    with engine.begin() as conn:
        for n in range(CASES):
            add_response(conn, add_customer(conn, f"c{n}@example.com"), "delivery", nps=n)
    rules = tmp_path / "rules.yaml"
    rules.write_text(DETRACTOR_RULES)
    assert runner.invoke(app, ["rules", "apply", str(rules)]).exit_code == 0
    opened = runner.invoke(app, ["rules", "run"])
    assert f"opened {CASES} case(s)" in opened.output, opened.output
    return engine


def _ids(fmt_args: list[str]) -> list[str]:
    listed = runner.invoke(app, ["cases", "list", "--format", "json", *fmt_args])
    assert listed.exit_code == 0, listed.output
    return [c["id"] for c in json.loads(listed.stdout)]


def test_every_case_id_the_table_prints_opens_with_cases_show(with_cases: Engine) -> None:
    table = runner.invoke(app, ["cases", "list"])  # 80 columns wide: the title gets cropped
    assert table.exit_code == 0, table.output
    ids = _ids([])
    assert len(ids) == CASES
    printed = [line.split("│")[1].strip() for line in table.stdout.splitlines()
               if line.startswith("│") and line.split("│")[1].strip() in ids]  # fmt: skip
    assert sorted(printed) == sorted(ids)
    for case_id in printed:
        shown = runner.invoke(app, ["cases", "show", case_id])
        assert shown.exit_code == 0 and json.loads(shown.stdout)["id"] == case_id


def test_cases_list_prints_the_total_and_the_next_page(with_cases: Engine) -> None:
    first = runner.invoke(app, ["cases", "list", "--limit", "2"])
    assert f"1-2 of {CASES} cases; next: --offset 2" in first.stdout
    last = runner.invoke(app, ["cases", "list", "--limit", "2", "--offset", "4"])
    assert f"5-5 of {CASES} cases" in last.stdout and "next" not in last.stdout
    every = runner.invoke(app, ["cases", "list"])
    assert f"all {CASES} cases" in every.stdout
    past = runner.invoke(app, ["cases", "list", "--offset", "99999"])
    assert past.exit_code == 0 and f"of {CASES} cases" in past.stdout, past.stdout


def test_pages_of_cases_cover_every_case_once(with_cases: Engine) -> None:
    pages = [_ids(["--limit", "2", "--offset", str(o)]) for o in (0, 2, 4)]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [i for p in pages for i in p] == _ids([])


def test_cases_list_as_csv_has_a_header_and_one_row_per_case(with_cases: Engine) -> None:
    out = runner.invoke(app, ["cases", "list", "--format", "csv"])
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert sorted(r["id"] for r in rows) == sorted(_ids([]))
    assert {r["touchpoint"] for r in rows} == {"Home delivery"}  # names, not keys


@pytest.mark.parametrize(
    "args",
    [
        ["org", "departments"],
        ["org", "touchpoints"],
        ["keys", "list"],
        ["rules", "list"],
        ["customers", "list"],
        ["surveys", "list"],
        ["metrics", "list"],
        ["privacy", "requests"],
    ],
)
def test_every_list_takes_format_limit_and_offset(with_org: Engine, args: list[str]) -> None:
    as_json = runner.invoke(app, [*args, "--format", "json", "--limit", "1000"])
    assert as_json.exit_code == 0, as_json.output
    total = len(json.loads(as_json.stdout))
    table = runner.invoke(app, [*args, "--limit", "1"])
    assert table.exit_code == 0, table.output
    assert (f"of {total} " in table.stdout) if total > 1 else (f"all {total} " in table.stdout)
    as_csv = runner.invoke(app, [*args, "--format", "csv", "--limit", "1", "--offset", "0"])
    assert len(list(csv.reader(io.StringIO(as_csv.stdout)))) == 1 + min(total, 1)
    wrong = runner.invoke(app, [*args, "--format", "xml"])
    assert wrong.exit_code == 2 and "--format 'xml' is unknown" in wrong.output

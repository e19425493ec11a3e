"""CLI tables as a person reads them: headings and statuses as the web pages word them, ids
whole at 80 and 100 columns, month and quarter periods as people say them; CSV and JSON keep
the keys (DuckDB and PostgreSQL)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cxm import console
from cxm.cli.main import app
from tests.actions.conftest import DETRACTOR_RULES, T0, add_customer, add_response, setup_org

runner = CliRunner()
CASES = 3
CASE_HEADINGS = ["ID", "Case", "Priority", "Status", "SLA", "Due (UTC)", "Touchpoint", "Team",
                 "Assignee"]  # fmt: skip


@pytest.fixture
def store(engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Engine:
    monkeypatch.setenv("CXM_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CXM_DATA_DIR", str(tmp_path))
    with engine.begin() as conn:
        setup_org(conn)
        # Detractors (cases) in March, April and May 2026 (a quarter and two months).
        for n, month in enumerate((3, 4, 5)):
            customer = add_customer(conn, f"c{n}@example.com")
            add_response(conn, customer, "delivery", nps=n, at=T0.replace(month=month))
        # Enough answers a month for a figure (the minimum sample is 30).
        for month in (3, 4, 5):
            for n in range(32):
                add_response(conn, None, "delivery", nps=(10, 9, 8, 7 + month % 2)[n % 4],
                             at=T0.replace(month=month))  # fmt: skip
    rules = tmp_path / "rules.yaml"
    rules.write_text(DETRACTOR_RULES)
    assert runner.invoke(app, ["rules", "apply", str(rules)]).exit_code == 0
    assert f"opened {CASES} case(s)" in runner.invoke(app, ["rules", "run"]).output
    return engine


def _width(monkeypatch: pytest.MonkeyPatch, columns: int) -> None:
    monkeypatch.setattr(console.console, "width", columns)


def _lines(output: str) -> list[str]:
    return output.splitlines()


def _cells(output: str) -> list[list[str]]:
    """The table's heading and body lines, each as its stripped cells."""
    return [[c.strip() for c in line.replace("┃", "│").split("│")[1:-1]]
            for line in output.splitlines() if line[:1] in ("│", "┃")]  # fmt: skip


def _case_ids() -> list[str]:
    listed = runner.invoke(app, ["cases", "list", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    return [c["id"] for c in json.loads(listed.stdout)]


def test_cases_list_heads_columns_and_names_statuses_as_the_inbox_does(
    store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _width(monkeypatch, 200)
    table = runner.invoke(app, ["cases", "list"])
    assert table.exit_code == 0, table.output
    header, *rows = _cells(table.stdout)
    assert header == CASE_HEADINGS
    as_json = {c["id"]: c for c in json.loads(runner.invoke(app, ["cases", "list", "--format",
                                                                  "json"]).stdout)}  # fmt: skip
    assert {c["status"] for c in as_json.values()} == {"new"}  # the key, in JSON
    for row in rows:
        case = as_json[row[0]]
        assert row[1] == case["title"]
        assert row[3] == "New"
        assert row[4] == case["sla_state"].replace("_", " ")
        assert row[8] == "—"  # unassigned
    # Moving a case on changes its label; CSV keeps the key that --status takes.
    first = next(iter(as_json))
    assert runner.invoke(app, ["cases", "resolve", first]).exit_code == 0
    rows = _cells(runner.invoke(app, ["cases", "list"]).stdout)[1:]
    assert {r[0]: r[3] for r in rows}[first] == "Resolved"
    as_csv = list(csv.DictReader(io.StringIO(
        runner.invoke(app, ["cases", "list", "--format", "csv"]).stdout)))  # fmt: skip
    assert {r["id"]: r["status"] for r in as_csv}[first] == "resolved"
    assert "sla_state" in as_csv[0]


@pytest.mark.parametrize("columns", [80, 100])
def test_cases_list_fits_the_terminal_with_headings_and_ids_whole(
    store: Engine, monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    _width(monkeypatch, columns)
    table = runner.invoke(app, ["cases", "list"])
    assert table.exit_code == 0, table.output
    assert all(len(line) <= columns for line in _lines(table.stdout)), table.stdout
    assert "…" not in table.stdout  # nothing cropped: headings, ids, statuses
    header, *rows = _cells(table.stdout)
    assert header[:2] == ["ID", "Case"] and "Status" in header  # always shown
    left_out = [h for h in CASE_HEADINGS if h not in header]
    assert header == [h for h in CASE_HEADINGS if h not in left_out]
    if left_out:
        assert f"too narrow for: {', '.join(reversed(left_out))}" in table.stdout
    ids = _case_ids()
    printed = [r[0] for r in rows if r[0]]
    assert sorted(printed) == sorted(ids)  # each id whole, on one line
    for case_id in printed:
        shown = runner.invoke(app, ["cases", "show", case_id])
        assert shown.exit_code == 0 and json.loads(shown.stdout)["id"] == case_id
    # The titles wrap inside their column: their lines, joined, are the titles.
    titles = {c["id"]: c["title"] for c in json.loads(
        runner.invoke(app, ["cases", "list", "--format", "json"]).stdout)}  # fmt: skip
    joined: dict[str, list[str]] = {}
    current = ""
    for row in rows:
        current = row[0] or current
        joined.setdefault(current, []).append(row[1].replace(" ", ""))
    assert {k: "".join(v) for k, v in joined.items()} == {
        k: t.replace(" ", "") for k, t in titles.items()
    }


def test_metrics_table_heads_columns_as_the_dashboards_and_keeps_keys_in_csv_and_json(
    store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _width(monkeypatch, 250)
    table = runner.invoke(app, ["metrics", "nps", "--grain", "month"])
    assert table.exit_code == 0, table.output
    header, *rows = _cells(table.stdout)
    assert header[:7] == ["Month", "Metric", "Value", "95% CI low", "95% CI high", "n",
                          "Weighted n"]  # fmt: skip
    assert not {"ci_low", "ci_high", "weighted_n", "month"} & set(header)
    as_json = json.loads(
        runner.invoke(app, ["metrics", "nps", "--grain", "month", "--format", "json"]).stdout
    )
    assert [r["month"] for r in as_json] == ["2026-03-01", "2026-04-01", "2026-05-01"]
    assert [r[0] for r in rows] == ["2026-03", "2026-04", "2026-05"]
    # The same numbers as the JSON, only rounded for the table.
    for row, r in zip(rows, as_json, strict=True):
        assert r["value"] is not None
        assert row[header.index("Value")] == f"{r['value']:.2f}"
        assert row[header.index("95% CI low")] == f"{r['ci_low']:.2f}"
        assert row[header.index("n")] == str(r["n"])
    as_csv = runner.invoke(app, ["metrics", "nps", "--grain", "month", "--format", "csv"])
    first = next(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert {"month", "ci_low", "ci_high", "weighted_n"} <= set(first)
    assert first["month"] == "2026-03-01"


def test_metrics_table_names_quarters_and_the_period_compared_with(
    store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _width(monkeypatch, 250)
    quarters = runner.invoke(app, ["metrics", "nps", "--grain", "quarter"])
    assert quarters.exit_code == 0, quarters.output
    header, *rows = _cells(quarters.stdout)
    assert header[0] == "Quarter" and [r[0] for r in rows] == ["2026 Q1", "2026 Q2"]
    compared = runner.invoke(app, ["metrics", "nps", "--grain", "month", "--compare",
                                   "previous"])  # fmt: skip
    assert compared.exit_code == 0, compared.output
    header, *rows = _cells(compared.stdout)
    assert {"Compared with", "p-value", "Change"} <= set(header)
    column = header.index("Compared with")
    assert [r[column] for r in rows] == ["", "2026-03", "2026-04"]


def test_period_labels_for_each_grain() -> None:
    from cxm.names import period_label

    day = dt.date(2026, 8, 3)
    assert [period_label(day, g) for g in ("day", "week", "month", "quarter", "year")] == [
        "2026-08-03", "2026-08-03", "2026-08", "2026 Q3", "2026"]  # fmt: skip
    assert period_label("2026-12-01", "quarter") == "2026 Q4"

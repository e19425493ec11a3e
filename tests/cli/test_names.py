"""CLI tables show display names; the keys a user types stay in JSON and CSV, and ids stay
whole beside the names (DuckDB and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cxm import console
from cxm.cli.main import app
from cxm.surveys import service as surveys
from cxm.yamldoc import read
from tests.actions.conftest import (
    DETRACTOR_RULES,
    ORG,
    T0,
    add_agent,
    add_customer,
    add_response,
    setup_org,
)
from tests.metrics.factories import events, nps_responses

runner = CliRunner()
_ORG = yaml.safe_load(ORG)
TEMPLATES = Path(surveys.__file__).parent / "templates"
# The names the org file gives each key (read from the file, not from the store).
DEPARTMENTS = {d["key"]: d["name"] for d in _ORG["departments"]}
TEAMS = {t["key"]: t["name"] for d in _ORG["departments"] for t in d["teams"]}
TOUCHPOINTS = {t["key"]: t["name"] for t in _ORG["touchpoints"]}


@pytest.fixture
def store(engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Engine:
    monkeypatch.setenv("CXM_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CXM_DATA_DIR", str(tmp_path))
    # A wide terminal, so that no name is wrapped inside its cell.
    monkeypatch.setattr(console.console, "width", 300)
    with engine.begin() as conn:
        setup_org(conn)
        ana = add_customer(conn, "ana@example.com", {"name": "Ana Novak"})
        bo = add_customer(conn, "bo@example.com", {"email": "bo@example.com"})
        add_customer(conn)  # no name, no email
        for score in (10, 9, 3):
            add_response(conn, ana, "delivery", nps=score)
        for score in (10, 0):
            add_response(conn, bo, "support_chat", nps=score)
        surveys.apply_definition(conn, read(TEMPLATES / "relationship_nps.yaml"))
        events(conn, [(ana, "order_delivered", T0, None)], touchpoint="delivery")
    return engine


def _cells(output: str) -> list[list[str]]:
    """The table's heading and body rows, each as its stripped cells."""
    return [[c.strip() for c in line.replace("┃", "│").split("│")[1:-1]]
            for line in output.splitlines() if line[:1] in ("│", "┃")]  # fmt: skip


@pytest.mark.parametrize(
    ("dimension", "names"),
    [("department", DEPARTMENTS), ("touchpoint", TOUCHPOINTS), ("team", TEAMS)],
)
def test_metric_slices_print_names_in_the_table_and_keys_in_json_and_csv(
    store: Engine, dimension: str, names: dict[str, str]
) -> None:
    as_json = runner.invoke(app, ["metrics", "nps", "--by", dimension, "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    keys = [r[dimension] for r in json.loads(as_json.stdout)]
    assert keys and set(keys) <= set(names)  # JSON keeps the keys that --filter takes
    as_csv = runner.invoke(app, ["metrics", "nps", "--by", dimension, "--format", "csv"])
    assert [r[dimension] for r in csv.DictReader(io.StringIO(as_csv.stdout))] == keys
    table = runner.invoke(app, ["metrics", "nps", "--by", dimension])
    assert table.exit_code == 0, table.output
    header, *rows = _cells(table.stdout)
    column = header.index(dimension.capitalize())
    assert [r[column] for r in rows] == [names[k] for k in keys]
    # Flags read as words (slices of 2 and 3 answers are below the minimum sample).
    flags = [r["flags"] for r in json.loads(as_json.stdout)]
    assert "below_min_sample" in flags
    shown = [r[header.index("Flags")] for r in rows]
    assert shown == ["Below min sample" if f == "below_min_sample" else (f or "") for f in flags]


def test_customers_list_names_each_customer_beside_its_whole_id(store: Engine) -> None:
    listed = json.loads(runner.invoke(app, ["customers", "list", "--format", "json"]).stdout)
    table = runner.invoke(app, ["customers", "list"])
    assert table.exit_code == 0, table.output
    header, *rows = _cells(table.stdout)
    assert header[:2] == ["ID", "Name"]
    shown = {r[0]: r[1] for r in rows}
    assert set(shown) == {c["id"] for c in listed}  # every id whole, so it pastes back
    assert sorted(shown.values()) == ["", "Ana Novak", "bo@example.com"]  # name, else email
    for customer_id, name in shown.items():
        pasted = runner.invoke(app, ["customers", "show", customer_id])
        assert pasted.exit_code == 0, pasted.output
        assert customer_id in pasted.stdout and name in pasted.stdout


def test_customer_show_names_identity_kinds_departments_and_touchpoints(store: Engine) -> None:
    listed = json.loads(runner.invoke(app, ["customers", "list", "--format", "json"]).stdout)
    ana = next(c["id"] for c in listed if c["name"] == "Ana Novak")
    out = runner.invoke(app, ["customers", "show", ana])
    assert out.exit_code == 0, out.output
    assert "Email: ana@example.com" in out.stdout
    assert f"by department: {DEPARTMENTS['supply_chain']} 1" in out.stdout
    header, *rows = _cells(out.stdout)
    assert {r[header.index("Touchpoint")] for r in rows} == {TOUCHPOINTS["delivery"]}
    assert {r[header.index("What")] for r in rows} == {"Relationship NPS", "Order delivered"}
    assert "supply_chain" not in out.stdout and "relationship_nps" not in out.stdout


def test_touchpoints_list_names_each_owner(store: Engine) -> None:
    table = runner.invoke(app, ["org", "touchpoints"])
    assert table.exit_code == 0, table.output
    header, *rows = _cells(table.stdout)
    owners = {r[0]: r[header.index("Owner")] for r in rows}
    assert owners["returns"] == f"{DEPARTMENTS['supply_chain']} / {TEAMS['returns_team']}"
    assert owners["delivery"] == f"{DEPARTMENTS['supply_chain']} / {TEAMS['delivery_team']}"


def test_survey_funnel_names_each_survey_beside_its_key(store: Engine) -> None:
    as_json = json.loads(runner.invoke(app, ["surveys", "funnel", "--format", "json"]).stdout)
    table = runner.invoke(app, ["surveys", "funnel"])
    assert table.exit_code == 0, table.output
    header, *rows = _cells(table.stdout)
    assert header[:2] == ["Survey key", "Survey"]
    assert [r[:2] for r in rows] == [[r["survey_key"], "Relationship NPS"] for r in as_json]
    assert rows  # the survey is listed even before anything was sent


def _fields(output: str) -> dict[str, str]:
    """The first table of ``cxm cases show`` as {field: value}."""
    header, *rows = _cells(output.split("History")[0])
    assert header == ["Field", "Value"]
    return {r[0]: r[1] for r in rows}


def test_case_show_names_status_sla_team_touchpoint_and_customer(
    store: Engine, tmp_path: Path
) -> None:
    with store.begin() as conn:
        add_agent(conn, "dee@example.com", "delivery_team")
    rules = tmp_path / "rules.yaml"
    rules.write_text(DETRACTOR_RULES)
    assert runner.invoke(app, ["rules", "apply", str(rules)]).exit_code == 0
    assert runner.invoke(app, ["rules", "run"]).exit_code == 0
    cases = json.loads(runner.invoke(app, ["cases", "list", "--format", "json"]).stdout)
    case = next(c for c in cases if c["touchpoint_key"] == "delivery")
    moved = runner.invoke(app, ["cases", "assign", case["id"], "dee@example.com"])
    assert moved.exit_code == 0, moved.output
    as_json = json.loads(runner.invoke(app, ["cases", "show", case["id"]]).stdout)
    shown = runner.invoke(app, ["cases", "show", case["id"], "--format", "table"])
    assert shown.exit_code == 0, shown.output
    facts = _fields(shown.stdout)
    assert facts["ID"] == case["id"]  # whole, so it pastes back
    assert facts["Touchpoint"] == TOUCHPOINTS["delivery"]
    assert facts["Team"] == TEAMS["delivery_team"]
    assert facts["Department"] == DEPARTMENTS[as_json["department_key"]]
    assert facts["Customer"] == f"Ana Novak {as_json['customer_id']}"
    assert facts["Status"] == {"new": "New", "in_progress": "In progress"}[as_json["status"]]
    assert facts["SLA"] == as_json["sla_state"].replace("_", " ")
    assert facts["Assignee"] == "dee@example.com"
    assert facts["Rule"] == "Detractor"  # the rule's name, as the case page shows it
    history_header, *history = _cells(shown.stdout.split("History")[1])
    assert history_header == ["When (UTC)", "By", "Change", "Field", "From", "To", "Reason"]
    assert ["Opened", "Status", "—", "New", "rule: Detractor"] in [r[2:] for r in history]
    (assigned,) = [r for r in history if r[3] == "Assignee"]
    assert assigned[4:6] == ["—", "dee@example.com"]
    assert assigned[0] == as_json["history"][-1]["occurred_at"][:16].replace("T", " ")
    # No key or column name of the store is left in what a person reads.
    for key in ("sla_state", "touchpoint_key", "team_key", "occurred_at", "delivery_team"):
        assert key not in shown.stdout


def test_metric_alerts_print_named_columns_and_periods(store: Engine) -> None:
    import datetime as dt

    march, april = dt.datetime(2025, 3, 10, tzinfo=dt.UTC), dt.datetime(2025, 4, 10, tzinfo=dt.UTC)
    with store.begin() as conn:
        nps_responses(conn, "support_chat", [10] * 30 + [0] * 5, when=march)
        nps_responses(conn, "support_chat", [0] * 30 + [10] * 5, when=april)
    out = runner.invoke(app, ["metrics", "alerts", "nps", "--by", "department"])
    assert out.exit_code == 0, out.output
    header, *rows = _cells(out.stdout)
    assert header[:4] == ["Metric", "Slice", "Period", "Value"]
    assert "Adjusted p (Holm)" in header and "p_adjusted" not in out.stdout
    (row,) = [r for r in rows if r[header.index("Period")] == "2025-04"]
    owner = {t["key"]: t["owner"]["department"] for t in _ORG["touchpoints"]}["support_chat"]
    assert row[header.index("Slice")] == DEPARTMENTS[owner]
    assert float(row[header.index("Value")]) < float(row[header.index("Previous value")])


def test_on_target_reads_yes_or_no_as_in_json(store: Engine) -> None:
    with store.begin() as conn:  # enough answers that each slice is judged against its target
        nps_responses(conn, "delivery", [10] * 40)
        nps_responses(conn, "support_chat", [0] * 40)
    assert runner.invoke(app, ["metrics", "target", "nps", "0"]).exit_code == 0
    as_json = json.loads(
        runner.invoke(app, ["metrics", "nps", "--by", "touchpoint", "--format", "json"]).stdout
    )
    table = runner.invoke(app, ["metrics", "nps", "--by", "touchpoint"])
    assert table.exit_code == 0, table.output
    header, *rows = _cells(table.stdout)
    shown = [r[header.index("On target")] for r in rows]
    expected = [{True: "yes", False: "no", None: ""}[r["on_target"]] for r in as_json]
    assert shown == expected and "yes" in shown and "no" in shown
    assert "True" not in table.stdout and "False" not in table.stdout

"""The employee directory: import (CSV, Parquet), moves kept as history, API and CLI."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.employees import directory, service
from cxm.employees.importer import import_employees
from cxm.employees.tables import employees
from cxm.errors import Invalid
from cxm.org import auth
from tests.conftest import make_key
from tests.employees.factories import answer, build_org

HEADER = "employee_id,name,email,team,role,manager_id,start_date,location\n"
ROWS = [
    "E1,Ada Lead,ada@example.com,ops_a,team lead,,2024-02-01,Berlin",
    "E2,Bo Member,bo@example.com,ops_a,team member,E1,2024-03-01,Berlin",
    "E3,Cy Member,cy@example.com,ops_b,team member,E1,2025-06-30,Leipzig",
]


@pytest.fixture
def org(engine: Engine) -> Engine:
    with engine.begin() as conn:
        build_org(conn)
    return engine


def _csv(tmp_path: Path, rows: list[str], name: str = "staff.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_import_creates_employees_with_their_team_from_the_start_date(
    org: Engine, tmp_path: Path
) -> None:
    with org.begin() as conn:
        result = import_employees(conn, _csv(tmp_path, ROWS))
    assert (result.created, result.moved) == (3, 0)
    with org.connect() as conn:
        e = directory.get_employee(conn, "E3")
    assert (e.name, e.team_key, e.department_key, e.manager_id) == (
        "Cy Member",
        "ops_b",
        "ops",
        "E1",
    )
    assert e.start_date == dt.date(2025, 6, 30)
    assert [(s.team_key, s.valid_from.date(), s.valid_to) for s in e.history] == [
        ("ops_b", dt.date(2025, 6, 30), None)
    ]


def test_parquet_with_a_mapped_column_imports_the_same(org: Engine, tmp_path: Path) -> None:
    path = tmp_path / "staff.parquet"
    pq.write_table(
        pa.table(
            {
                "id": ["E1", "E2"],
                "Abteilung": ["ops_a", "sales_a"],
                "start_date": [dt.date(2024, 1, 1), None],
            }
        ),
        path,
    )
    with org.begin() as conn:
        import_employees(conn, path, mapping={"team_key": "Abteilung"})
    with org.connect() as conn:
        total, rows = directory.list_employees(conn)
    assert total == 2
    assert {(e.employee_id, e.team_key) for e in rows} == {("E1", "ops_a"), ("E2", "sales_a")}


def test_a_move_keeps_history_in_the_old_team_up_to_the_move(org: Engine, tmp_path: Path) -> None:
    move = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    with org.begin() as conn:
        import_employees(conn, _csv(tmp_path, ROWS))
        answer(conn, "E2", 2, when=move - dt.timedelta(days=10))
        moved = ROWS[1].replace("ops_a", "sales_a")
        result = import_employees(
            conn, _csv(tmp_path, [ROWS[0], moved, ROWS[2]], "v2.csv"), as_of=move
        )
        answer(conn, "E2", 10, when=move + dt.timedelta(days=10))
    assert (result.moved, result.unchanged) == (1, 2)
    with org.connect() as conn:
        e = directory.get_employee(conn, "E2")
    assert [s.team_key for s in e.history] == ["ops_a", "sales_a"]
    assert e.history[0].valid_to == move and e.history[1].valid_from == move
    results = {r.key: r for r in service.pulse_results(org, "team", minimum=1)}
    assert results["ops_a"].score_mean == 2.0  # the answer before the move stays in ops_a
    assert results["sales_a"].score_mean == 10.0


def test_a_bad_row_refuses_the_whole_file_and_names_every_problem(
    org: Engine, tmp_path: Path
) -> None:
    rows = [*ROWS, "E4,,,nowhere,,,2024-01-01,", "E5,,,ops_a,,E99,2024-01-01,"]
    with org.begin() as conn, pytest.raises(Invalid) as err:
        import_employees(conn, _csv(tmp_path, rows))
    assert "team 'nowhere' does not exist" in str(err.value)
    assert "manager 'E99'" in str(err.value)
    with org.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(employees)).scalar_one() == 0


def test_a_file_without_a_team_column_says_how_to_map_one(org: Engine, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("employee_id,Abteilung\nE1,ops_a\n", encoding="utf-8")
    with org.begin() as conn, pytest.raises(Invalid, match="--map team_key=COLUMN"):
        import_employees(conn, path)


def test_api_directory_is_scoped_and_pulse_is_confidential(
    app_client: TestClient, seeded: Engine, tmp_path: Path
) -> None:
    with seeded.begin() as conn:
        build_org(conn)
        import_employees(conn, _csv(tmp_path, ROWS))
        for e in ("E1", "E2"):
            answer(conn, e, 9)
        auth.create_user(
            conn, "m@example.com", "manager", password="pw-manager-123", department_key="sales"
        )
        auth.create_user(conn, "a@example.com", "agent", password="pw-agent-1234", team_key="ops_a")
    admin = make_key(seeded, "admin")
    page = app_client.get("/api/v1/employees?department=ops", headers=admin).json()
    assert page["total"] == 3 and page["items"][0]["employee_id"] == "E1"
    one = app_client.get("/api/v1/employees/E3", headers=admin).json()
    assert one["history"][0]["team"] == "ops_b"
    assert app_client.get("/api/v1/employees/nobody", headers=admin).status_code == 404
    pulse = app_client.get("/api/v1/employees/pulse?by=team", headers=admin).json()
    assert pulse["minimum_group"] == 5
    assert next(g for g in pulse["groups"] if g["key"] == "ops_a")["hidden"] is True
    assert all(g["enps"] is None for g in pulse["groups"] if g["hidden"])
    bad = app_client.put(
        "/api/v1/employees", headers=admin, json=[{"employee_id": "E9", "team": "nowhere"}]
    )
    assert bad.status_code == 422 and "nowhere" in bad.json()["detail"]
    moved = app_client.put(
        "/api/v1/employees", headers=admin, json=[{"employee_id": "E3", "team": "ops_a"}]
    )
    assert moved.json()["moved"] == 1


def test_agents_cannot_read_the_directory(seeded: Engine) -> None:
    from cxm.employees.scope import directory_scope
    from cxm.errors import Forbidden
    from cxm.org.auth import Principal

    with pytest.raises(Forbidden):
        directory_scope(Principal(scope="read", role="agent", team_key="ops_a"))
    assert (
        directory_scope(Principal(scope="read", role="manager", department_key="sales")).department
        == "sales"
    )


def test_a_reimport_without_a_column_keeps_the_stored_value(org: Engine, tmp_path: Path) -> None:
    with org.begin() as conn:
        import_employees(conn, _csv(tmp_path, ROWS))
        bare = tmp_path / "bare.csv"
        bare.write_text("employee_id,team\nE1,ops_a\nE2,ops_a\nE3,ops_b\n", encoding="utf-8")
        result = import_employees(conn, bare)
    assert (result.updated, result.unchanged) == (0, 3)
    with org.connect() as conn:
        assert directory.get_employee(conn, "E2").name == "Bo Member"

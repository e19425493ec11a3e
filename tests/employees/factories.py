"""A small company for employee tests: two departments, their teams, employees and answers."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy.engine import Connection

from cxm.employees.directory import EmployeeIn, apply
from cxm.org import schemas, service
from cxm.surveys.facts import responses_table

T0 = dt.datetime(2026, 1, 15, 9, tzinfo=dt.UTC)
# department -> team -> head count: ops has 11 people in a team of 6, a team of 3 and a team
# of 2; sales has one team of 12.
COMPANY = {"ops": {"ops_a": 6, "ops_b": 3, "ops_c": 2}, "sales": {"sales_a": 12}}


def build_org(conn: Connection, company: dict[str, dict[str, int]] = COMPANY) -> None:
    for dept, teams in company.items():
        if dept not in {d.key for d in service.list_departments(conn)}:
            service.create_department(conn, schemas.DepartmentCreate(key=dept, name=dept.title()))
        for team in teams:
            service.create_team(
                conn, schemas.TeamCreate(key=team, department_key=dept, name=team.title())
            )


def hire(conn: Connection, company: dict[str, dict[str, int]] = COMPANY) -> dict[str, list[str]]:
    """Everyone from 2025-01-01; returns team -> employee ids."""
    people: list[EmployeeIn] = []
    ids: dict[str, list[str]] = {}
    for teams in company.values():
        for team, size in teams.items():
            for i in range(size):
                e = f"{team}-{i}"
                ids.setdefault(team, []).append(e)
                people.append(
                    EmployeeIn(e, team, email=f"{e}@example.com", start_date=dt.date(2025, 1, 1))
                )
    apply(conn, people)
    return ids


def answer(
    conn: Connection,
    employee_id: str,
    score: int,
    when: dt.datetime = T0,
    comment: str | None = None,
    survey: str = "employee_pulse",
) -> str:
    rid = secrets.token_hex(8)
    conn.execute(
        responses_table.insert().values(
            id=rid,
            survey_key=survey,
            survey_version=1,
            respondent_kind="employee",
            employee_id=employee_id,
            started_at=when,
            submitted_at=when,
            completed=True,
            nps=score,
            comment=comment,
            source="web",
        )
    )
    return rid

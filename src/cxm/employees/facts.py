"""Employee facts for every reader: the directory, team membership over time, pulse answers.

Pulse answers are the employee population of the survey responses, each placed in the team
(and its department) its employee belonged to when they answered.
"""

from __future__ import annotations

import ibis.expr.types as ir
from ibis.backends import BaseBackend

from cxm.employees.tables import employee_teams, employees
from cxm.org.facts import teams_expr
from cxm.surveys.facts import EMPLOYEE
from cxm.surveys.facts import responses as survey_responses

__all__ = ["directory", "employee_teams", "employees", "memberships", "pulse_answers"]


def directory(con: BaseBackend) -> ir.Table:
    """Employees: ``employee_id, email, name, role, manager_id, start_date, location, user_id``."""
    return con.table("employees")


def memberships(con: BaseBackend) -> ir.Table:
    """Team stints: ``employee_id, team_key, valid_from, valid_to`` (null: still there)."""
    return con.table("employee_teams")


def pulse_answers(con: BaseBackend) -> ir.Table:
    """Completed employee responses with the team and department of the employee at the time.

    Columns: the response columns plus ``team_key`` and ``department_key``. An answer whose
    employee is not in the directory (or not in any team then) has null team and department.
    """
    r = survey_responses(con, EMPLOYEE)
    r = r.filter(r.completed)
    m = memberships(con)
    m = m.select(_emp=m.employee_id, team_key=m.team_key, _from=m.valid_from, _to=m.valid_to)
    j = r.left_join(
        m,
        [
            r.employee_id == m._emp,
            m._from <= r.submitted_at,
            m._to.isnull() | (r.submitted_at < m._to),
        ],
    )
    t = teams_expr(con)
    t = t.select(_team=t.key, department_key=t.department_key)
    j = j.left_join(t, j.team_key == t._team)
    return j.drop("_emp", "_from", "_to", "_team")

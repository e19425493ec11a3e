"""The employee directory: create, update and move employees (team membership over time)."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cxm.employees.tables import employee_teams, employees
from cxm.errors import Invalid, NotFound
from cxm.org.facts import teams, users
from cxm.store import as_utc, is_duckdb, utcnow
from cxm.store.bulk import insert_rows

FIELDS = ("email", "name", "role", "manager_id", "start_date", "location", "user_id")


@dataclass(frozen=True)
class EmployeeIn:
    """One employee as a file row or API body gives it (the team is the current one)."""

    employee_id: str
    team_key: str
    email: str | None = None
    name: str | None = None
    role: str | None = None
    manager_id: str | None = None
    start_date: dt.date | None = None
    location: str | None = None
    user_email: str | None = None


@dataclass
class ApplyResult:
    created: int = 0
    updated: int = 0
    moved: int = 0
    unchanged: int = 0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.created} created, {self.updated} updated, {self.moved} moved team, "
            f"{self.unchanged} unchanged"
        )


def _known(conn: Connection, column: sa.Column[str], values: Iterable[str]) -> set[str]:
    wanted = sorted(set(values))
    if not wanted:
        return set()
    return set(conn.execute(sa.select(column).where(column.in_(wanted))).scalars())


def apply(
    conn: Connection, people: Sequence[EmployeeIn], as_of: dt.datetime | None = None
) -> ApplyResult:
    """Create or update ``people``; an employee whose team differs from their open stint moves
    at ``as_of`` (default now; naive means UTC): the old stint ends there and a new one starts.

    A new employee's first stint starts at their ``start_date`` (or ``as_of``). All or nothing:
    any unknown team, manager or user, or a repeated id, raises Invalid naming every problem
    (the first ten) and writes nothing.
    """
    now = utcnow()
    as_of = as_utc(as_of) or now
    problems: list[str] = []
    seen: set[str] = set()
    for i, p in enumerate(people, start=1):
        if not p.employee_id.strip():
            problems.append(f"row {i}: employee_id is empty")
        if p.employee_id in seen:
            problems.append(f"row {i}: employee {p.employee_id!r} appears twice")
        seen.add(p.employee_id)
    known_teams = set(conn.execute(sa.select(teams.c.key)).scalars())
    for i, p in enumerate(people, start=1):
        if p.team_key not in known_teams:
            problems.append(
                f"row {i}: team {p.team_key!r} does not exist; known: "
                f"{', '.join(sorted(known_teams)[:20])}"
            )
    stored = _known(conn, employees.c.employee_id, [p.manager_id for p in people if p.manager_id])
    for i, p in enumerate(people, start=1):
        if p.manager_id and p.manager_id not in seen | stored:
            problems.append(
                f"row {i}: manager {p.manager_id!r} is neither in this file nor in the directory"
            )
        if p.manager_id and p.manager_id == p.employee_id:
            problems.append(f"row {i}: {p.employee_id!r} cannot be their own manager")
    user_ids = dict(
        conn.execute(
            sa.select(users.c.email, users.c.id).where(
                users.c.email.in_(sorted({p.user_email.lower() for p in people if p.user_email}))
            )
        ).all()
    )
    for i, p in enumerate(people, start=1):
        if p.user_email and p.user_email.lower() not in user_ids:
            problems.append(
                f"row {i}: no user signs in as {p.user_email!r} (create the user "
                "first, or leave user_email empty)"
            )
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise Invalid("nothing imported: " + "; ".join(problems[:10]) + more)

    ids = [p.employee_id for p in people]
    current = {
        r.employee_id: r
        for r in conn.execute(sa.select(employees).where(employees.c.employee_id.in_(ids))).all()
    }
    stints = {
        r.employee_id: r
        for r in conn.execute(
            sa.select(employee_teams).where(
                employee_teams.c.employee_id.in_(ids), employee_teams.c.valid_to.is_(None)
            )
        )
    }
    result = ApplyResult()
    new_rows: list[dict[str, object]] = []
    new_stints: list[dict[str, object]] = []
    for p in people:
        values = {
            "email": p.email.strip().lower() if p.email else None,
            "name": p.name,
            "role": p.role,
            "manager_id": p.manager_id or None,
            "start_date": p.start_date,
            "location": p.location,
            "user_id": user_ids.get(p.user_email.lower()) if p.user_email else None,
        }
        old = current.get(p.employee_id)
        if old is None:
            new_rows.append(
                {"employee_id": p.employee_id, **values, "created_at": now, "updated_at": now}
            )
            start = dt.datetime.combine(p.start_date, dt.time(), dt.UTC) if p.start_date else as_of
            new_stints.append(_stint(p.employee_id, p.team_key, min(start, as_of)))
            result.created += 1
            continue
        # A value the file does not give (empty or no column) keeps the stored one.
        changed = {k: v for k, v in values.items() if v is not None and getattr(old, k) != v}
        stint = stints.get(p.employee_id)
        if stint is None or stint.team_key != p.team_key:
            if stint is not None:
                if as_of <= (as_utc(stint.valid_from) or as_of):
                    raise Invalid(
                        f"{p.employee_id}: a move at {as_of.isoformat()} would end the "
                        f"stint in {stint.team_key} before it began "
                        f"({stint.valid_from.isoformat()})"
                    )
                conn.execute(
                    employee_teams.update()
                    .where(employee_teams.c.id == stint.id)
                    .values(valid_to=as_of)
                )
            new_stints.append(_stint(p.employee_id, p.team_key, as_of))
            result.moved += 1
        if changed:
            conn.execute(
                employees.update()
                .where(employees.c.employee_id == p.employee_id)
                .values(**changed, updated_at=now)
            )
            result.updated += 1
        elif stint is not None and stint.team_key == p.team_key:
            result.unchanged += 1
    if is_duckdb(conn):
        # The Arrow path carries dates as ISO text; DuckDB casts it into the DATE column.
        for row in new_rows:
            began = row["start_date"]
            row["start_date"] = began.isoformat() if isinstance(began, dt.date) else None
        insert_rows(conn, employees, new_rows)
    elif new_rows:
        conn.execute(employees.insert(), new_rows)
    insert_rows(conn, employee_teams, new_stints)
    return result


def _stint(employee_id: str, team_key: str, start: dt.datetime) -> dict[str, object]:
    return {
        "id": secrets.token_hex(16),
        "employee_id": employee_id,
        "team_key": team_key,
        "valid_from": start,
        "valid_to": None,
    }


@dataclass(frozen=True)
class Stint:
    team_key: str
    valid_from: dt.datetime
    valid_to: dt.datetime | None


@dataclass(frozen=True)
class Employee:
    employee_id: str
    email: str | None
    name: str | None
    role: str | None
    manager_id: str | None
    start_date: dt.date | None
    location: str | None
    user_id: str | None
    team_key: str | None
    department_key: str | None
    history: list[Stint]


def _open_team(conn: Connection) -> sa.Subquery:
    return (
        sa.select(employee_teams.c.employee_id, employee_teams.c.team_key, teams.c.department_key)
        .join(teams, teams.c.key == employee_teams.c.team_key, isouter=True)
        .where(employee_teams.c.valid_to.is_(None))
        .subquery()
    )


def list_employees(
    conn: Connection,
    *,
    team: str | None = None,
    department: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[int, list[Employee]]:
    """(total, one page of employees by id) now in ``team`` / ``department`` when given."""
    cur = _open_team(conn)
    q = sa.select(employees, cur.c.team_key, cur.c.department_key).join(
        cur, cur.c.employee_id == employees.c.employee_id, isouter=True
    )
    if team:
        q = q.where(cur.c.team_key == team)
    if department:
        q = q.where(cur.c.department_key == department)
    total = conn.execute(sa.select(sa.func.count()).select_from(q.subquery())).scalar_one()
    rows = conn.execute(q.order_by(employees.c.employee_id).limit(limit).offset(offset)).all()
    return int(total), [_employee(r, []) for r in rows]


def get_employee(conn: Connection, employee_id: str) -> Employee:
    """One employee with their team history (oldest first); NotFound when absent."""
    cur = _open_team(conn)
    row = conn.execute(
        sa.select(employees, cur.c.team_key, cur.c.department_key)
        .join(cur, cur.c.employee_id == employees.c.employee_id, isouter=True)
        .where(employees.c.employee_id == employee_id)
    ).first()
    if row is None:
        raise NotFound(f"employee {employee_id!r} is not in the directory")
    history = [
        Stint(r.team_key, r.valid_from, r.valid_to)
        for r in conn.execute(
            sa.select(employee_teams)
            .where(employee_teams.c.employee_id == employee_id)
            .order_by(employee_teams.c.valid_from)
        )
    ]
    return _employee(row, history)


def _employee(r: sa.Row[tuple[object, ...]], history: list[Stint]) -> Employee:
    m = r._mapping
    return Employee(
        m["employee_id"],
        m["email"],
        m["name"],
        m["role"],
        m["manager_id"],
        m["start_date"],
        m["location"],
        m["user_id"],
        m["team_key"],
        m["department_key"],
        history,
    )


def employee_of_user(conn: Connection, user_id: str) -> str | None:
    """The employee id linked to a staff user, if any."""
    return conn.execute(
        sa.select(employees.c.employee_id).where(employees.c.user_id == user_id)
    ).scalar()


def link_user(conn: Connection, employee_id: str, user_email: str) -> None:
    """Link the staff user who signs in as ``user_email`` to ``employee_id`` (their own figures
    follow the link); NotFound for an unknown employee or user."""
    user_id = conn.execute(
        sa.select(users.c.id).where(users.c.email == user_email.lower())
    ).scalar()
    if user_id is None:
        raise NotFound(f"no user signs in as {user_email!r}")
    done = conn.execute(
        employees.update().where(employees.c.employee_id == employee_id).values(user_id=user_id)
    )
    if not done.rowcount:
        raise NotFound(f"employee {employee_id!r} is not in the directory")

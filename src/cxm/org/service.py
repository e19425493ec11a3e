"""Org logic: apply and export the org file, and read or change departments, teams, touchpoints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cxm.errors import Conflict, Invalid, NotFound
from cxm.org import schemas
from cxm.org.tables import (
    company,
    departments,
    partners,
    teams,
    touchpoint_contributors,
    touchpoints,
)
from cxm.store import utcnow
from cxm.yamldoc import YamlDoc, validate

DEFAULT_DEPARTMENTS: list[tuple[str, str, str]] = [
    ("executive", "Executive", "exec_office"),
    ("marketing", "Marketing & Brand", "marketing_team"),
    ("sales", "Sales", "sales_team"),
    ("product", "Product", "product_team"),
    ("service", "Customer Service", "service_team"),
    ("operations", "Operations", "operations_team"),
    ("supply_chain", "Supply Chain & Delivery", "delivery_team"),
    ("billing", "Billing & Finance", "billing_team"),
    ("it", "Tech & IT", "it_team"),
    ("people", "People (HR)", "people_team"),
]


@dataclass
class ApplySummary:
    """What ``apply_org`` changed, per kind of thing."""

    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, outcome: str) -> None:
        bucket = getattr(self, outcome)
        bucket[kind] = bucket.get(kind, 0) + 1


def _known(conn: Connection, table: sa.Table) -> set[str]:
    return set(conn.execute(sa.select(table.c.key)).scalars())


def _listing(keys: set[str]) -> str:
    return ", ".join(sorted(keys)) or "none"


def seed_defaults(conn: Connection, company_name: str = "My company") -> bool:
    """Create the company row and the default departments (each with one default team) once."""
    if conn.execute(sa.select(sa.func.count()).select_from(departments)).scalar_one():
        return False
    if conn.execute(sa.select(company.c.id)).first() is None:
        conn.execute(company.insert().values(id=1, name=company_name))
    for position, (key, name, team_key) in enumerate(DEFAULT_DEPARTMENTS):
        conn.execute(departments.insert().values(key=key, name=name, position=position))
        conn.execute(
            teams.insert().values(
                key=team_key, department_key=key, name=f"{name} team", is_default=True
            )
        )
    return True


def check_org(conn: Connection, doc: YamlDoc) -> schemas.OrgFile:
    """Validate an org document against its schema and against what the store holds.

    Every reference must resolve to the file or to the store; every problem is reported with
    its line, and nothing is written.
    """
    org = validate(doc, schemas.OrgFile)
    problems: list[str] = []
    dept_keys = _known(conn, departments)
    team_dept: dict[str, str] = {
        r.key: r.department_key
        for r in conn.execute(sa.select(teams.c.key, teams.c.department_key))
    }
    seen_depts: set[str] = set()
    seen_teams: set[str] = set()
    for i, dept in enumerate(org.departments):
        path: tuple[str | int, ...] = ("departments", i)
        if dept.key in seen_depts:
            problems.append(
                f"{doc.where((*path, 'key'))}: department key '{dept.key}' appears twice"
            )
        seen_depts.add(dept.key)
        defaults = [t.key for t in dept.teams if t.default]
        if len(defaults) > 1:
            problems.append(
                f"{doc.where((*path, 'teams'))}: department '{dept.key}' has "
                f"{len(defaults)} default teams ({', '.join(defaults)}); mark exactly one"
            )
        for j, team in enumerate(dept.teams):
            if team.key in seen_teams:
                problems.append(
                    f"{doc.where((*path, 'teams', j, 'key'))}: team key '{team.key}' appears twice"
                )
            seen_teams.add(team.key)
            team_dept[team.key] = dept.key
    dept_keys |= seen_depts
    partner_keys = _known(conn, partners)
    seen_partners: set[str] = set()
    for i, partner in enumerate(org.partners):
        if partner.key in seen_partners:
            problems.append(
                f"{doc.where(('partners', i, 'key'))}: partner key '{partner.key}' appears twice"
            )
        seen_partners.add(partner.key)
    partner_keys |= seen_partners
    seen_tps: set[str] = set()
    for i, tp in enumerate(org.touchpoints):
        path = ("touchpoints", i)
        if tp.key in seen_tps:
            problems.append(f"{doc.where((*path, 'key'))}: touchpoint key '{tp.key}' appears twice")
        seen_tps.add(tp.key)
        if tp.owner.department not in dept_keys:
            problems.append(
                f"{doc.where((*path, 'owner', 'department'))}: touchpoint '{tp.key}' names "
                f"department '{tp.owner.department}', which does not exist; "
                f"known: {_listing(dept_keys)}"
            )
        if tp.owner.team is not None:
            owner_dept = team_dept.get(tp.owner.team)
            if owner_dept is None:
                problems.append(
                    f"{doc.where((*path, 'owner', 'team'))}: touchpoint '{tp.key}' names team "
                    f"'{tp.owner.team}', which does not exist; known: {_listing(set(team_dept))}"
                )
            elif owner_dept != tp.owner.department:
                problems.append(
                    f"{doc.where((*path, 'owner', 'team'))}: team '{tp.owner.team}' belongs to "
                    f"department '{owner_dept}', not '{tp.owner.department}'"
                )
        if tp.partner is not None and tp.partner not in partner_keys:
            problems.append(
                f"{doc.where((*path, 'partner'))}: touchpoint '{tp.key}' names partner "
                f"'{tp.partner}', which does not exist; declare it under 'partners:' "
                f"(known: {_listing(partner_keys)})"
            )
        if tp.partner_runs == "marked" and tp.partner is None:
            problems.append(
                f"{doc.where((*path, 'partner_runs'))}: touchpoint '{tp.key}' says a partner "
                "runs the marked interactions there but names no partner; add 'partner: KEY'"
            )
        for j, contributor in enumerate(tp.contributors):
            if contributor not in dept_keys:
                problems.append(
                    f"{doc.where((*path, 'contributors', j))}: contributing department "
                    f"'{contributor}' does not exist; known: {_listing(dept_keys)}"
                )
    if problems:
        raise Invalid("; ".join(problems))
    return org


def _default_team(conn: Connection, department_key: str) -> str | None:
    return conn.execute(
        sa.select(teams.c.key)
        .where(teams.c.department_key == department_key)
        .order_by(teams.c.is_default.desc(), teams.c.key)
        .limit(1)
    ).scalar()


def _upsert(
    conn: Connection, table: sa.Table, key: str, values: dict[str, Any], summary: ApplySummary,
    kind: str, insert_extra: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    current = conn.execute(sa.select(table).where(table.c.key == key)).mappings().first()
    if current is None:
        conn.execute(table.insert().values(key=key, **values, **(insert_extra or {})))
        summary.count(kind, "created")
    elif any(current[k] != v for k, v in values.items()):
        conn.execute(table.update().where(table.c.key == key).values(**values))
        summary.count(kind, "updated")
    else:
        summary.count(kind, "unchanged")


def apply_org(conn: Connection, doc: YamlDoc) -> ApplySummary:
    """Create or update everything the org file names; idempotent. Validates before writing."""
    org = check_org(conn, doc)
    summary = ApplySummary()
    if org.company is not None:
        if conn.execute(sa.select(company.c.id)).first() is None:
            conn.execute(company.insert().values(id=1, name=org.company.name))
        else:
            conn.execute(company.update().values(name=org.company.name))
    next_position = (
        conn.execute(
            sa.select(sa.func.coalesce(sa.func.max(departments.c.position), -1))
        ).scalar_one()
        + 1
    )
    for dept in org.departments:
        _upsert(
            conn, departments, dept.key, {"name": dept.name, "description": dept.description},
            summary, "departments", {"position": next_position},
        )  # fmt: skip
        next_position += 1
        has_default = any(t.default for t in dept.teams)
        for team in dept.teams:
            if has_default:
                is_default = team.default
            else:  # keep the store's default when the file does not say
                existing = conn.execute(
                    sa.select(teams.c.is_default).where(teams.c.key == team.key)
                ).scalar()
                is_default = bool(existing)
            values = {
                "department_key": dept.key,
                "name": team.name,
                "is_default": is_default,
                "lead_email": team.lead_email,
            }
            _upsert(conn, teams, team.key, values, summary, "teams")
        if has_default:
            named = [t.key for t in dept.teams]
            conn.execute(
                teams.update()
                .where(teams.c.department_key == dept.key, teams.c.key.not_in(named))
                .values(is_default=False)
            )
    for partner in org.partners:
        _upsert(
            conn, partners, partner.key, {"name": partner.name, "kind": partner.kind},
            summary, "partners",
        )  # fmt: skip
    for tp in org.touchpoints:
        team_key = tp.owner.team or _default_team(conn, tp.owner.department)
        values = {
            "partner_key": tp.partner,
            "partner_runs": tp.partner_runs if tp.partner else None,
            "name": tp.name,
            "channel": tp.channel,
            "stage": tp.stage,
            "department_key": tp.owner.department,
            "team_key": team_key,
            "description": tp.description,
        }
        _upsert(conn, touchpoints, tp.key, values, summary, "touchpoints", {"created_at": utcnow()})
        _set_contributors(conn, tp.key, tp.contributors)
    return summary


def _set_contributors(conn: Connection, touchpoint_key: str, contributors: list[str]) -> None:
    conn.execute(
        touchpoint_contributors.delete().where(
            touchpoint_contributors.c.touchpoint_key == touchpoint_key
        )
    )
    for dept in dict.fromkeys(contributors):
        conn.execute(
            touchpoint_contributors.insert().values(
                touchpoint_key=touchpoint_key, department_key=dept
            )
        )


def export_org(conn: Connection) -> dict[str, Any]:
    """The store's org as the org-file structure (round-trips through ``apply_org``)."""
    name = conn.execute(sa.select(company.c.name)).scalar()
    out: dict[str, Any] = {"company": {"name": name}} if name else {}
    team_rows = conn.execute(sa.select(teams).order_by(teams.c.key)).mappings().all()
    out["departments"] = []
    for dept in conn.execute(sa.select(departments).order_by(departments.c.position)).mappings():
        entry: dict[str, Any] = {"key": dept["key"], "name": dept["name"]}
        if dept["description"]:
            entry["description"] = dept["description"]
        entry["teams"] = [
            {"key": t["key"], "name": t["name"], "default": bool(t["is_default"])}
            | ({"lead_email": t["lead_email"]} if t["lead_email"] else {})
            for t in team_rows
            if t["department_key"] == dept["key"]
        ]
        out["departments"].append(entry)
    partner_rows = list_partners(conn)
    if partner_rows:
        out["partners"] = [{"key": p.key, "name": p.name, "kind": p.kind} for p in partner_rows]
    out["touchpoints"] = []
    for tp in list_touchpoints(conn):
        if not tp.owned:
            continue  # unowned touchpoints are not valid org entries until an admin assigns them
        entry = {
            "key": tp.key,
            "name": tp.name,
            "channel": tp.channel,
            "stage": tp.stage,
            "owner": {"department": tp.department_key, "team": tp.team_key},
        }
        if tp.partner_key:
            entry["partner"] = tp.partner_key
            if tp.partner_runs == "marked":
                entry["partner_runs"] = "marked"
        if tp.contributors:
            entry["contributors"] = tp.contributors
        if tp.description:
            entry["description"] = tp.description
        out["touchpoints"].append(entry)
    return out


# Partners


def list_partners(conn: Connection) -> list[schemas.Partner]:
    """Every partner with the keys of the touchpoints it runs, by key."""
    run: dict[str, list[str]] = {}
    rows = conn.execute(
        sa.select(touchpoints.c.key, touchpoints.c.partner_key)
        .where(touchpoints.c.partner_key.is_not(None))
        .order_by(touchpoints.c.key)
    )
    for row in rows:
        run.setdefault(row.partner_key, []).append(row.key)
    return [
        schemas.Partner(key=r.key, name=r.name, kind=r.kind, touchpoints=run.get(r.key, []))
        for r in conn.execute(sa.select(partners).order_by(partners.c.key))
    ]


def get_partner(conn: Connection, key: str) -> schemas.Partner:
    for partner in list_partners(conn):
        if partner.key == key:
            return partner
    raise NotFound(f"partner '{key}' does not exist; known: {_listing(_known(conn, partners))}")


def _check_run(conn: Connection, key: str, run: list[str]) -> None:
    """Invalid/NotFound/Conflict unless partner ``key`` may run every touchpoint in ``run``:
    no repeats, each one known and not run by another partner."""
    repeated = sorted({t for t in run if run.count(t) > 1})
    if repeated:
        raise Invalid(f"touchpoints: {', '.join(repeated)} given more than once")
    if not run:
        return
    rows = conn.execute(
        sa.select(touchpoints.c.key, touchpoints.c.partner_key).where(touchpoints.c.key.in_(run))
    ).all()
    found = {r.key: r.partner_key for r in rows}
    missing = sorted(set(run) - set(found))
    if missing:
        raise NotFound(
            f"touchpoint(s) {', '.join(missing)} do not exist; known: "
            f"{_listing(_known(conn, touchpoints))}"
        )
    taken = sorted(f"'{t}' (by '{p}')" for t, p in found.items() if p not in (None, key))
    if taken:
        raise Conflict(
            f"touchpoint(s) {', '.join(taken)} are run by another partner; take them off "
            "that partner first (PATCH its touchpoints)"
        )


def create_partner(conn: Connection, body: schemas.PartnerCreate) -> schemas.Partner:
    """Declare partner ``body.key`` and hand it the touchpoints it runs. Conflict when the key
    exists or a touchpoint is run by another partner; NotFound for an unknown touchpoint.
    Everything is checked before anything is written."""
    if body.key in _known(conn, partners):
        raise Conflict(f"partner '{body.key}' already exists; change it with PATCH")
    _check_run(conn, body.key, body.touchpoints)
    conn.execute(partners.insert().values(key=body.key, name=body.name, kind=body.kind))
    if body.touchpoints:
        conn.execute(
            touchpoints.update()
            .where(touchpoints.c.key.in_(body.touchpoints))
            .values(partner_key=body.key)
        )
    return get_partner(conn, body.key)


def update_partner(conn: Connection, key: str, body: schemas.PartnerUpdate) -> schemas.Partner:
    """Rename partner ``key``, change its kind, or replace the touchpoints it runs (those
    left out go back in-house). Errors as ``create_partner``; nothing is half-written."""
    get_partner(conn, key)
    values = body.model_dump(exclude_unset=True)
    run = values.pop("touchpoints", None)
    if run is not None:
        _check_run(conn, key, run)
    if values:
        conn.execute(partners.update().where(partners.c.key == key).values(**values))
    if run is not None:
        conn.execute(
            touchpoints.update()
            .where(touchpoints.c.partner_key == key, touchpoints.c.key.not_in(run))
            .values(partner_key=None, partner_runs=None)
        )
        if run:
            conn.execute(
                touchpoints.update().where(touchpoints.c.key.in_(run)).values(partner_key=key)
            )
    return get_partner(conn, key)


def partner_touchpoints(conn: Connection, key: str) -> list[str]:
    """Keys of the touchpoints the partner runs (empty when it runs none or is unknown)."""
    rows = conn.execute(
        sa.select(touchpoints.c.key)
        .where(touchpoints.c.partner_key == key)
        .order_by(touchpoints.c.key)
    )
    return list(rows.scalars())


def company_name(conn: Connection) -> str:
    return conn.execute(sa.select(company.c.name)).scalar() or "My company"


# Departments


def list_departments(conn: Connection) -> list[schemas.Department]:
    rows = conn.execute(sa.select(departments).order_by(departments.c.position)).mappings()
    return [schemas.Department.model_validate(dict(r)) for r in rows]


def get_department(conn: Connection, key: str) -> schemas.Department:
    row = conn.execute(sa.select(departments).where(departments.c.key == key)).mappings().first()
    if row is None:
        raise NotFound(
            f"department '{key}' does not exist; known: {_listing(_known(conn, departments))}"
        )
    return schemas.Department.model_validate(dict(row))


def create_department(conn: Connection, body: schemas.DepartmentCreate) -> schemas.Department:
    if body.key in _known(conn, departments):
        raise Conflict(f"department '{body.key}' already exists")
    position = conn.execute(
        sa.select(sa.func.coalesce(sa.func.max(departments.c.position), -1))
    ).scalar_one()
    conn.execute(departments.insert().values(**body.model_dump(), position=position + 1))
    return get_department(conn, body.key)


def update_department(
    conn: Connection, key: str, body: schemas.DepartmentUpdate
) -> schemas.Department:
    get_department(conn, key)
    values = body.model_dump(exclude_unset=True)
    if values:
        conn.execute(departments.update().where(departments.c.key == key).values(**values))
    return get_department(conn, key)


# Teams


def list_teams(conn: Connection, department_key: str | None = None) -> list[schemas.Team]:
    query = sa.select(teams).order_by(teams.c.department_key, teams.c.key)
    if department_key:
        query = query.where(teams.c.department_key == department_key)
    return [schemas.Team.model_validate(dict(r)) for r in conn.execute(query).mappings()]


def get_team(conn: Connection, key: str) -> schemas.Team:
    row = conn.execute(sa.select(teams).where(teams.c.key == key)).mappings().first()
    if row is None:
        raise NotFound(f"team '{key}' does not exist; known: {_listing(_known(conn, teams))}")
    return schemas.Team.model_validate(dict(row))


def _make_sole_default(conn: Connection, department_key: str, team_key: str) -> None:
    conn.execute(
        teams.update()
        .where(teams.c.department_key == department_key, teams.c.key != team_key)
        .values(is_default=False)
    )


def create_team(conn: Connection, body: schemas.TeamCreate) -> schemas.Team:
    get_department(conn, body.department_key)
    if body.key in _known(conn, teams):
        raise Conflict(f"team '{body.key}' already exists")
    first = not list_teams(conn, body.department_key)
    conn.execute(
        teams.insert().values(**(body.model_dump() | {"is_default": body.is_default or first}))
    )
    if body.is_default:
        _make_sole_default(conn, body.department_key, body.key)
    return get_team(conn, body.key)


def update_team(conn: Connection, key: str, body: schemas.TeamUpdate) -> schemas.Team:
    team = get_team(conn, key)
    values = body.model_dump(exclude_unset=True)
    if values.get("is_default") is False and team.is_default:
        raise Invalid(
            f"team '{key}' is the default team of '{team.department_key}'; "
            "make another team the default instead"
        )
    if values:
        conn.execute(teams.update().where(teams.c.key == key).values(**values))
    if values.get("is_default"):
        _make_sole_default(conn, team.department_key, key)
    return get_team(conn, key)


# Touchpoints


def _contributors(conn: Connection) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    rows = conn.execute(
        sa.select(touchpoint_contributors).order_by(touchpoint_contributors.c.department_key)
    )
    for row in rows:
        out.setdefault(row.touchpoint_key, []).append(row.department_key)
    return out


def _touchpoint(row: Any, contributors: list[str]) -> schemas.Touchpoint:
    fields = {k: v for k, v in row.items() if k in schemas.Touchpoint.model_fields}
    return schemas.Touchpoint(
        **fields, contributors=contributors, owned=row["department_key"] is not None
    )


def list_touchpoints(
    conn: Connection, department_key: str | None = None
) -> list[schemas.Touchpoint]:
    query = sa.select(touchpoints).order_by(touchpoints.c.key)
    if department_key:
        query = query.where(touchpoints.c.department_key == department_key)
    contributors = _contributors(conn)
    return [_touchpoint(r, contributors.get(r["key"], [])) for r in conn.execute(query).mappings()]


def get_touchpoint(conn: Connection, key: str) -> schemas.Touchpoint:
    for tp in list_touchpoints(conn):
        if tp.key == key:
            return tp
    raise NotFound(
        f"touchpoint '{key}' does not exist; known: {_listing(_known(conn, touchpoints))}"
    )


def _check_owner(conn: Connection, department_key: str, team_key: str | None) -> str:
    """Validate an owner and return the owning team (the department's default when not given)."""
    get_department(conn, department_key)
    if team_key is None:
        default = _default_team(conn, department_key)
        if default is None:
            raise Invalid(f"department '{department_key}' has no team to own the touchpoint")
        return default
    team = get_team(conn, team_key)
    if team.department_key != department_key:
        raise Invalid(
            f"team '{team_key}' belongs to department '{team.department_key}', "
            f"not '{department_key}'"
        )
    return team_key


def create_touchpoint(conn: Connection, body: schemas.TouchpointCreate) -> schemas.Touchpoint:
    if body.key in _known(conn, touchpoints):
        raise Conflict(f"touchpoint '{body.key}' already exists")
    team_key = _check_owner(conn, body.department_key, body.team_key)
    for dept in body.contributors:
        get_department(conn, dept)
    values = body.model_dump(exclude={"contributors"}) | {"team_key": team_key}
    conn.execute(touchpoints.insert().values(**values, created_at=utcnow()))
    _set_contributors(conn, body.key, body.contributors)
    return get_touchpoint(conn, body.key)


def update_touchpoint(
    conn: Connection, key: str, body: schemas.TouchpointUpdate
) -> schemas.Touchpoint:
    current = get_touchpoint(conn, key)
    values = body.model_dump(exclude_unset=True)
    contributors = values.pop("contributors", None)
    for dept in contributors or []:  # validate everything before writing anything
        get_department(conn, dept)
    if "department_key" in values or "team_key" in values:
        department = values.get("department_key") or current.department_key
        if department is None:
            raise Invalid(f"touchpoint '{key}' needs an owning department")
        values["team_key"] = _check_owner(conn, department, values.get("team_key"))
        values["department_key"] = department
    if values:
        conn.execute(touchpoints.update().where(touchpoints.c.key == key).values(**values))
    if contributors is not None:
        _set_contributors(conn, key, contributors)
    return get_touchpoint(conn, key)


def ensure_touchpoints(conn: Connection, keys: set[str]) -> set[str]:
    """Record touchpoints seen in data but missing from the org as unowned; returns the new ones."""
    missing = keys - _known(conn, touchpoints)
    now = utcnow()
    for key in sorted(missing):
        conn.execute(touchpoints.insert().values(key=key, name=key, created_at=now))
    return missing


def ownership(conn: Connection) -> dict[str, str | None]:
    """touchpoint key → owning department key (None when unowned)."""
    rows = conn.execute(sa.select(touchpoints.c.key, touchpoints.c.department_key))
    return {r.key: r.department_key for r in rows}

"""``cxm import employees``: the directory from a CSV or Parquet file, with column mapping."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from sqlalchemy.engine import Connection

from cxm.employees.directory import ApplyResult, EmployeeIn, apply
from cxm.errors import Invalid

# Target field -> the column names a file may use for it (the first present wins).
COLUMNS: dict[str, tuple[str, ...]] = {
    "employee_id": ("employee_id", "id"),
    "team_key": ("team", "team_key"),
    "email": ("email",),
    "name": ("name", "full_name"),
    "role": ("role", "title"),
    "manager_id": ("manager_id", "reports_to"),
    "start_date": ("start_date", "started", "hire_date"),
    "location": ("location", "site"),
    "user_email": ("user_email", "login"),
}
REQUIRED = ("employee_id", "team_key")


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``.csv`` (UTF-8, header line) or ``.parquet`` file as dicts."""
    if not path.exists():
        raise Invalid(f"{path}: no such file")
    if path.suffix.lower() == ".parquet":
        return list(pq.read_table(path).to_pylist())
    if path.suffix.lower() == ".csv":
        try:
            with path.open(newline="", encoding="utf-8-sig") as fh:
                return list(csv.DictReader(fh))
        except UnicodeDecodeError as exc:
            raise Invalid(f"{path}: not UTF-8 text ({exc.reason})") from exc
    raise Invalid(f"{path}: use a .csv or .parquet file")


def _date(value: Any, line: int) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip()[:10])
    except ValueError as exc:
        raise Invalid(f"row {line}: start_date {value!r} is not a date (YYYY-MM-DD)") from exc


def to_people(
    rows: list[dict[str, Any]], mapping: Mapping[str, str] | None = None
) -> list[EmployeeIn]:
    """File rows as ``EmployeeIn``; ``mapping`` names the file column of a target field
    ({"team_key": "Abteilung"}). Invalid when a required column is missing."""
    mapping = dict(mapping or {})
    unknown = set(mapping) - set(COLUMNS)
    if unknown:
        raise Invalid(
            f"mapping names unknown fields {sorted(unknown)}; known: {', '.join(COLUMNS)}"
        )
    header = set(rows[0]) if rows else set()
    cols: dict[str, str | None] = {}
    for target, names in COLUMNS.items():
        if target in mapping:
            if rows and mapping[target] not in header:
                raise Invalid(
                    f"mapping: column {mapping[target]!r} (for {target}) is not in "
                    f"the file; columns: {', '.join(sorted(header))}"
                )
            cols[target] = mapping[target]
        else:
            cols[target] = next((n for n in names if n in header), None)
    for target in REQUIRED:
        if rows and cols[target] is None:
            raise Invalid(
                f"the file has no {target} column (looked for "
                f"{', '.join(COLUMNS[target])}; map one with --map {target}=COLUMN)"
            )

    def get(row: dict[str, Any], target: str) -> str | None:
        col = cols[target]
        value = row.get(col) if col else None
        text = "" if value is None else str(value).strip()
        return text or None

    people = []
    for line, row in enumerate(rows, start=2):
        people.append(
            EmployeeIn(
                employee_id=get(row, "employee_id") or "",
                team_key=get(row, "team_key") or "",
                email=get(row, "email"),
                name=get(row, "name"),
                role=get(row, "role"),
                manager_id=get(row, "manager_id"),
                start_date=_date(row.get(cols["start_date"]) if cols["start_date"] else None, line),
                location=get(row, "location"),
                user_email=get(row, "user_email"),
            )
        )
    return people


def import_employees(
    conn: Connection,
    path: Path,
    *,
    mapping: Mapping[str, str] | None = None,
    as_of: dt.datetime | None = None,
) -> ApplyResult:
    """Apply the directory in ``path``: new employees created, changes updated, team changes
    recorded as moves at ``as_of`` (naive UTC, default now). All or nothing."""
    return apply(conn, to_people(read_rows(path), mapping), as_of)

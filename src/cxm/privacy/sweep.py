"""The last pass of an erasure: every text and JSON column of every table, found in the
information schema (so a table added later is covered without being named here), is searched
for the person's identifiers and free text, and each occurrence is replaced by a token.

Domain erasure comes first (it knows what a row means: a comment is cleared, a case note
blanked, an interaction anonymised); this sweep catches the copies nobody planned for: an
address in an SMTP error text, a job payload, a webhook log, a hidden field of an invitation.
Matching ignores case. Each needle gets its own random token, so two values that differed
still differ (a primary key stays unique) and the same value is replaced alike everywhere
(an event id and the rows that name it stay linked). Values shorter than ``MIN_SUBSTRING``
characters are not swept: "42" cannot be told from every other 42 in the store (the domain
erasure still removes them where they are identifiers).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

MIN_SUBSTRING = 4
TEXT_TYPES = {"varchar", "character varying", "text", "character", "char", "string", "bpchar"}
JSON_TYPES = {"json", "jsonb"}
SKIP_TABLES = {"alembic_version"}

_columns = sa.table(
    "columns",
    sa.column("table_schema"), sa.column("table_name"), sa.column("column_name"),
    sa.column("data_type"),
    schema="information_schema",
)  # fmt: skip
_tables = sa.table(
    "tables", sa.column("table_schema"), sa.column("table_name"), sa.column("table_type"),
    schema="information_schema",
)  # fmt: skip


@dataclass(frozen=True)
class Column:
    table: str
    name: str
    kind: str  # text | json


def personal_columns(conn: Connection) -> list[Column]:
    """Every text and JSON column of every base table in the store's schema, from the
    information schema (DuckDB and PostgreSQL both have it)."""
    rows = conn.execute(
        sa.select(_columns.c.table_name, _columns.c.column_name, _columns.c.data_type)
        .select_from(
            _columns.join(
                _tables,
                sa.and_(
                    _tables.c.table_name == _columns.c.table_name,
                    _tables.c.table_schema == _columns.c.table_schema,
                ),
            )
        )
        .where(
            _columns.c.table_schema == sa.func.current_schema(),
            _tables.c.table_type == "BASE TABLE",
        )
        .order_by(_columns.c.table_name, _columns.c.column_name)
    ).all()
    out: list[Column] = []
    for table, name, data_type in rows:
        if table in SKIP_TABLES:
            continue
        base = str(data_type).lower().split("(")[0].strip()
        if base in TEXT_TYPES:
            out.append(Column(str(table), str(name), "text"))
        elif base in JSON_TYPES:
            out.append(Column(str(table), str(name), "json"))
    return out


class Replacer:
    """Replaces each needle (case-insensitively) by its own random token."""

    def __init__(self, needles: Iterable[str]) -> None:
        clean = {n.strip() for n in needles if n and len(n.strip()) >= MIN_SUBSTRING}
        self.long = sorted(clean, key=len, reverse=True)
        self.tokens = {n.lower(): self._token() for n in clean}
        self.pattern = (
            re.compile("|".join(re.escape(n) for n in self.long), re.IGNORECASE)
            if self.long
            else None
        )

    def _token(self) -> str:
        """A fresh token that holds none of the needles (so replacing never re-creates one)."""
        lowered = [n.lower() for n in self.long]
        while True:
            for token in (f"[erased-{secrets.token_hex(4)}]", f"[{secrets.token_hex(6)}]"):
                if not any(n in token for n in lowered):
                    return token

    def __bool__(self) -> bool:
        return bool(self.long)

    def text(self, value: str) -> str:
        if self.pattern is None:
            return value
        return self.pattern.sub(lambda m: self.tokens[m.group(0).lower()], value)

    def json(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.json(v) for v in value]
        if isinstance(value, dict):
            return {self.text(str(k)): self.json(v) for k, v in value.items()}
        return value

    def condition(self, expr: Any) -> Any:
        """Rows of ``expr`` (a text expression) that may hold a needle."""
        lowered = sa.func.lower(expr)
        return sa.or_(*(lowered.contains(n.lower(), autoescape=True) for n in self.long))


def scrub(conn: Connection, needles: Iterable[str]) -> dict[str, int]:
    """Replace every occurrence of ``needles`` in every text and JSON column of every table;
    returns ``{"table.column": values changed}`` for the columns that held any."""
    replacer = Replacer(needles)
    changed: dict[str, int] = {}
    if not replacer:
        return changed
    for col in personal_columns(conn):
        updates: list[tuple[Any, Any]]
        if col.kind == "text":
            column = sa.column(col.name, sa.Text)
            table = sa.table(col.table, column)
            olds = conn.execute(
                sa.select(column).distinct().where(replacer.condition(column))
            ).scalars()
            updates = [(old, replacer.text(old)) for old in olds if isinstance(old, str)]
            for old, new in updates:
                if new != old:
                    conn.execute(table.update().where(column == old).values({col.name: new}))
        else:
            data = sa.column(col.name, sa.JSON)
            as_text = sa.cast(sa.column(col.name), sa.Text)
            table = sa.table(col.table, data)
            # No DISTINCT: PostgreSQL's json type has no equality; duplicates are skipped here.
            found: dict[str, Any] = dict(
                conn.execute(sa.select(as_text, data).where(replacer.condition(as_text))).all()
            )
            updates = []
            for old_text, value in found.items():
                new = replacer.json(value)
                if new != value:
                    updates.append((old_text, new))
                    conn.execute(
                        table.update()
                        .where(sa.cast(sa.column(col.name), sa.Text) == old_text)
                        .values({col.name: new})
                    )
        n = sum(1 for old, new in updates if new != old)
        if n:
            changed[f"{col.table}.{col.name}"] = n
    return changed

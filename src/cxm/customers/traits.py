"""The types of customer traits: number, date, boolean or string.

Trait values are stored as text (long form, one row per trait). Each trait name has a type
so that slices sort and bin by value rather than alphabetically (``tenure_months`` 0, 1, 2,
..., 10, not 0, 1, 10, 11):

* **inferred on first sight**: the first values written under a name decide its type, once
  (``set_traits`` calls ``record``); later values never change it, so a slice reads the same
  way next month;
* **declared** by an administrator (``declare``; ``cxm customers trait-type NAME TYPE`` or
  ``PUT /api/v1/customers/traits/NAME``), which replaces the inferred type and is never
  re-inferred.

A value that does not read as its trait's type (``"n/a"`` under a number) slices as
``(none)``, as a missing value does.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cxm.customers.tables import trait_types
from cxm.errors import Invalid
from cxm.store import insert_ignore, utcnow

TYPES = ("number", "date", "boolean", "string")
# What a number looks like in a trait: optional sign, digits, optional decimals and exponent.
# The same pattern guards the cast in the metrics layer, on every engine.
NUMBER = r"^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$"
# A calendar date (ISO 8601), optionally with a time: what 'date' traits must look like.
DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]+)?(Z|[+-][0-9:]+)?$"
BOOLEANS = {"true": True, "false": False}

_NUMBER = re.compile(NUMBER)
_DATE = re.compile(DATE)


def _is_date(value: str) -> bool:
    if not _DATE.match(value):
        return False
    try:
        dt.date.fromisoformat(value[:10])
    except ValueError:
        return False
    return True


def infer(values: Iterable[str | None]) -> str:
    """The type that every non-empty value in ``values`` reads as.

    ``number`` when each is a decimal number, ``date`` when each is an ISO 8601 date (or date
    and time), ``boolean`` when each is true or false (any case), else ``string`` (also when
    there is no value at all).
    """
    seen = [v.strip() for v in values if v is not None and v.strip()]
    if not seen:
        return "string"
    if all(_NUMBER.match(v) for v in seen):
        return "number"
    if all(_is_date(v) for v in seen):
        return "date"
    if all(v.lower() in BOOLEANS for v in seen):
        return "boolean"
    return "string"


def record(conn: Connection, values: Mapping[str, Iterable[str | None]]) -> None:
    """Infer and store the type of each trait name not typed yet (first sight wins).

    ``values``: trait name -> the values being written under it now.
    """
    known = set(types(conn))
    rows = [
        {"name": name, "type": infer(vals), "declared": False, "set_at": utcnow()}
        for name, vals in values.items()
        if name not in known
    ]
    if not rows:
        return
    # Two writers seeing a name first at once: the first insert wins, the other is ignored.
    conn.execute(insert_ignore(trait_types), rows)


def declare(conn: Connection, name: str, kind: str) -> None:
    """Set the type of trait ``name`` (Invalid for a type not in ``TYPES``)."""
    if kind not in TYPES:
        raise Invalid(f"trait type {kind!r} is unknown; use one of: {', '.join(TYPES)}")
    if not name or len(name) > 64:
        raise Invalid("a trait name is 1 to 64 characters")
    conn.execute(trait_types.delete().where(trait_types.c.name == name))
    conn.execute(trait_types.insert().values(name=name, type=kind, declared=True,
                                             set_at=utcnow()))  # fmt: skip


def types(conn: Connection) -> dict[str, str]:
    """Every typed trait name and its type."""
    rows = conn.execute(sa.select(trait_types.c.name, trait_types.c.type)).all()
    return {r.name: r.type for r in rows}


def listing(conn: Connection) -> list[dict[str, object]]:
    """Trait names with their type, whether it was declared, and how many customers have one."""
    from cxm.customers.tables import customer_traits

    counts: dict[str, int] = dict(
        conn.execute(
            sa.select(customer_traits.c.name, sa.func.count())
            .where(customer_traits.c.value.is_not(None))
            .group_by(customer_traits.c.name)
        ).all()
    )
    typed = {r.name: r for r in conn.execute(sa.select(trait_types)).all()}
    out: list[dict[str, object]] = []
    for name in sorted(set(counts) | set(typed)):
        row = typed.get(name)
        out.append({
            "name": name,
            "type": row.type if row else "string",
            "declared": bool(row.declared) if row else False,
            "customers": int(counts.get(name, 0)),
        })  # fmt: skip
    return out

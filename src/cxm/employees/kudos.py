"""Kudos: positive customer comments routed to the employee they are about, and their manager.

A comment is about an employee when the answer was triggered by an interaction the employee
handled (``properties.agent_id``) or when it names them (their full name, any case). It is
positive when its score is: CSAT 4-5 or NPS 9-10 (the promoter and top-two definitions of the
metrics). The feed shows the comment, when and where; never the customer.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from ibis.backends import BaseBackend
from sqlalchemy.engine import Connection, Engine

from cxm.employees.tables import employees
from cxm.interactions.facts import log
from cxm.store.analytics import reading
from cxm.surveys.facts import responses


@dataclass(frozen=True)
class Kudos:
    employee_id: str
    comment: str
    submitted_at: str
    touchpoint_key: str | None
    why: str  # handled | named


def _positive(con: BaseBackend) -> pd.DataFrame:
    r = responses(con)
    good = (r.csat >= 4).fill_null(False) | (r.nps >= 9).fill_null(False)
    r = r.filter(r.completed, good, r.comment.notnull(), r.comment.strip() != "")
    ix = log(con)
    raw = ix.properties["agent_id"].cast("string")
    ix = ix.filter(raw.notnull(), raw != "null").select(_eid=ix.event_id,
                                                         agent_id=raw.replace('"', ""))  # fmt: skip
    j = r.left_join(ix, r.trigger_event_id == ix._eid)
    return j.select("id", "comment", "submitted_at", "touchpoint_key", "agent_id").to_pandas()


def feed(source: Engine | BaseBackend, conn: Connection, employee_id: str,
         limit: int = 50) -> list[Kudos]:  # fmt: skip
    """Kudos for ``employee_id`` and for everyone who reports to them, newest first."""
    people = conn.execute(
        sa.select(employees.c.employee_id, employees.c.name).where(
            (employees.c.employee_id == employee_id) | (employees.c.manager_id == employee_id)
        )
    ).all()
    names = {e: (n or "").strip().lower() for e, n in people}
    with reading(source) as con:
        df = _positive(con)
    out: list[Kudos] = []
    for row in df.sort_values("submitted_at", ascending=False).to_dict("records"):
        text = str(row["comment"])
        for e, name in names.items():
            why = "handled" if row["agent_id"] == e else (
                "named" if name and " " in name and name in text.lower() else None)  # fmt: skip
            if why:
                tp = row["touchpoint_key"] if isinstance(row["touchpoint_key"], str) else None
                out.append(Kudos(e, text, str(row["submitted_at"])[:19], tp, why))
    return out[:limit]

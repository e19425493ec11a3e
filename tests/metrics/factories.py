"""Row factories for metric tests: a tiny org and hand-countable facts, written with Core."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence

import sqlalchemy as sa

from cxm.customers.tables import customer_traits, customers
from cxm.interactions.tables import interactions
from cxm.org.tables import departments, teams, touchpoints
from cxm.surveys.tables import responses

_ids = itertools.count()
T0 = dt.datetime(2025, 3, 10, 12, tzinfo=dt.UTC)


def org(conn: sa.Connection) -> None:
    """Two departments owning three touchpoints: delivery (operations), chat and phone (service)."""
    conn.execute(departments.insert(), [
        {"key": "operations", "name": "Operations", "position": 1},
        {"key": "service", "name": "Service", "position": 2},
    ])  # fmt: skip
    conn.execute(teams.insert(), [
        {"key": "ops_default", "department_key": "operations", "name": "Ops", "is_default": True},
        {"key": "chat_team", "department_key": "service", "name": "Chat", "is_default": False},
        {"key": "phone_team", "department_key": "service", "name": "Phone", "is_default": False},
    ])  # fmt: skip
    conn.execute(touchpoints.insert(), [
        {"key": k, "name": k, "channel": c, "stage": s, "department_key": d, "team_key": t,
         "created_at": T0}
        for k, c, s, d, t in [
            ("delivery", "logistics", "delivery", "operations", "ops_default"),
            ("support_chat", "chat", "service", "service", "chat_team"),
            ("support_phone", "phone", "service", "service", "phone_team"),
        ]
    ])  # fmt: skip


def customer(conn: sa.Connection, cid: str, **traits: str) -> None:
    conn.execute(customers.insert().values(id=cid, created_at=T0, interaction_count=0))
    if traits:
        conn.execute(customer_traits.insert(), [
            {"customer_id": cid, "name": k, "value": v, "set_at": T0} for k, v in traits.items()
        ])  # fmt: skip


def nps_responses(conn: sa.Connection, touchpoint: str, scores: Sequence[int],
                  when: dt.datetime = T0, customer_id: str | None = None,
                  kind: str = "customer", csat: int | None = None) -> None:  # fmt: skip
    rows = []
    for s in scores:
        i = next(_ids)
        cat = "promoter" if s >= 9 else "passive" if s >= 7 else "detractor"
        rows.append({
            "id": f"r{i}", "survey_key": "relationship", "survey_version": 1,
            "respondent_kind": kind, "customer_id": customer_id, "touchpoint_key": touchpoint,
            "channel": "web", "started_at": when, "submitted_at": when, "completed": True,
            "nps": s, "nps_category": cat, "csat": csat, "source": "web",
        })  # fmt: skip
    conn.execute(responses.insert(), rows)


def events(conn: sa.Connection, rows: Sequence[tuple[str, str, dt.datetime, float | None]],
           touchpoint: str = "support_chat") -> None:  # fmt: skip
    """(customer_id, name, event_time, revenue) rows."""
    conn.execute(interactions.insert(), [
        {"event_id": f"e{next(_ids)}", "type": "track", "name": n, "event_time": t,
         "received_at": t, "customer_id": c, "touchpoint_key": touchpoint, "channel": "chat",
         "revenue": r, "source": "api"}
        for c, n, t, r in rows
    ])  # fmt: skip

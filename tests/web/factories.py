"""Rows for page tests: an org with touchpoints and survey responses at them."""

from __future__ import annotations

import datetime as dt
import itertools

from sqlalchemy.engine import Engine

from cxm.org import service as org
from cxm.surveys.tables import responses
from cxm.yamldoc import parse

ORG = """\
touchpoints:
  - {key: delivery, name: Home delivery, channel: delivery, stage: receive,
     owner: {department: supply_chain}}
  - {key: invoice, name: Invoice, channel: billing, stage: pay, owner: {department: billing}}
  - {key: support_chat, name: Support chat, channel: chat, stage: get help,
     owner: {department: service}}
"""

_ids = itertools.count()


def category(score: int) -> str:
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"


def add_responses(
    engine: Engine,
    touchpoint: str,
    nps_scores: list[int],
    month: int = 9,
    comment: str | None = None,
    customer_id: str | None = None,
) -> None:
    rows = []
    for i, score in enumerate(nps_scores):
        at = dt.datetime(2026, month, 1 + i % 27, 12, tzinfo=dt.UTC)
        rows.append({
            "id": f"r{next(_ids)}", "survey_key": "relationship_nps", "survey_version": 1,
            "respondent_kind": "customer", "customer_id": customer_id, "employee_id": None,
            "invitation_id": None, "trigger_event_id": None, "touchpoint_key": touchpoint,
            "channel": None, "language": "en", "started_at": at, "submitted_at": at,
            "completed": True, "nps": score, "nps_category": category(score),
            "csat": None, "ces": None, "comment": comment, "source": "import",
        })  # fmt: skip
    with engine.begin() as conn:
        conn.execute(responses.insert(), rows)


def company(engine: Engine) -> None:
    """Three departments' touchpoints; delivery is poor, billing middling, service good."""
    with engine.begin() as conn:
        org.apply_org(conn, parse(ORG))
    add_responses(engine, "delivery", [2, 3, 5, 6, 8, 9, 10] * 6, month=8)
    add_responses(engine, "delivery", [1, 2, 3, 4, 6, 9] * 8, month=9, comment="late again")
    add_responses(engine, "invoice", [6, 7, 8, 9, 10] * 8, month=9, comment="charged twice")
    add_responses(engine, "support_chat", [9, 10, 10, 8, 9] * 8, month=9, comment="so friendly")

"""Erase one person in every table that holds something personal about them.

The customer 360 erases identities, traits and personal fields of interactions and
responses; text analytics drops the stored sentences of their comments; the closed loop
blanks their case notes. Scores, times and counts stay, so every aggregate stays right.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from cxm.actions import service as actions
from cxm.customer360 import service as c360
from cxm.customers import service as customers
from cxm.text import service as text
from cxm.text.analytics import SOURCE as TEXT_SOURCE


def erase(conn: Connection, identifier: str, requested_by: str) -> dict[str, int]:
    """Erase the person behind ``identifier``; returns what was done, per kind of record."""
    customer_id = c360.lookup(conn, identifier)
    ids = customers.merged_ids(conn, customer_id)
    answered = c360.response_ids(conn, ids)
    counts = c360.erase(conn, customer_id, requested_by, record=False)
    counts["text_annotations_cleared"] = text.forget(conn, TEXT_SOURCE, answered)
    counts["case_notes_cleared"] = actions.forget_customers(conn, ids)
    c360.record_request(conn, "erase", customer_id, requested_by, counts)
    return counts

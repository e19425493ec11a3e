"""Survey facts for every reader: responses, answers, invitations; each on the current customer.

Readers above this domain (metrics, text, journeys, actions, feedback, the 360) read these
expressions or, for SQLAlchemy Core point lookups, the tables re-exported here; they never
name the tables themselves.
"""

from __future__ import annotations

import ibis.expr.types as ir
from ibis.backends import BaseBackend

from cxm.customers.facts import current_customer
from cxm.surveys.tables import invitations as invitations_table
from cxm.surveys.tables import response_answers
from cxm.surveys.tables import responses as responses_table

__all__ = [
    "CUSTOMER",
    "EMPLOYEE",
    "PARTNER",
    "answers",
    "invitations",
    "invitations_table",
    "response_answers",
    "responses",
    "responses_table",
]

CUSTOMER = "customer"
EMPLOYEE = "employee"
PARTNER = "partner"  # people at a partner answering a partner pulse


def responses(
    con: BaseBackend, population: str | None = CUSTOMER, *, customer: bool = True
) -> ir.Table:
    """Responses (one row each) on the current customer id.

    ``population``: ``"customer"`` (the default: customers' answers only), ``"employee"``
    (employee pulse answers) or None (both). Employee answers never enter a customer figure
    unless a reader asks for them. ``customer=False`` leaves out ``customer_id`` (and the
    join that maps it to the current customer) for readers that never slice by customer:
    the same rows, read faster.
    """
    raw = con.table("responses")
    r = current_customer(con, raw) if customer else raw.drop("customer_id")
    if population is not None:
        r = r.filter(r.respondent_kind == population)
    return r


def answers(con: BaseBackend) -> ir.Table:
    """Answers to each question, ``(response_id, question_id, ...)``."""
    return con.table("response_answers")


def invitations(con: BaseBackend) -> ir.Table:
    """Survey invitations (one row per invitation, every channel) on the current customer id."""
    return current_customer(con, con.table("survey_invitations"))

"""Closed-loop facts for every reader: cases (on the current customer) and their root causes."""

from __future__ import annotations

import ibis.expr.types as ir
from ibis.backends import BaseBackend

from cxm.actions.tables import case_events, case_root_causes, cases
from cxm.customers.facts import current_customer

__all__ = ["case_events", "case_events_expr", "case_root_causes", "cases", "cases_expr"]


def cases_expr(con: BaseBackend) -> ir.Table:
    """Cases (one row each): ``id, status, team_key, department_key, customer_id, source_id,
    opened_at, first_response_at, resolved_at, ...`` on the current customer id."""
    return current_customer(con, con.table("cases"))


def case_events_expr(con: BaseBackend) -> ir.Table:
    """Every change to a case: ``id, case_id, occurred_at, actor`` (a user's email or
    ``system``), ``kind, field, old_value, new_value, reason``."""
    return con.table("case_events")

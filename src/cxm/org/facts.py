"""The org model for analytics readers: touchpoints with their owning department and team."""

from __future__ import annotations

import ibis.expr.types as ir
from ibis.backends import BaseBackend

from cxm.org.tables import departments, teams, touchpoints, users

__all__ = ["departments", "teams", "teams_expr", "touchpoints", "touchpoints_expr", "users"]


def touchpoints_expr(con: BaseBackend) -> ir.Table:
    """Touchpoints: ``key, name, channel, stage, department_key, team_key, ...``."""
    return con.table("touchpoints")


def teams_expr(con: BaseBackend) -> ir.Table:
    """Teams: ``key, department_key, name, is_default, lead_email``."""
    return con.table("teams")

"""The interaction log for every reader: one row per event, already on the current customer.

Identity resolution re-points the log in the transaction that merges two customers, and every
ingest path stores the resolved (current) id, so the log needs no mapping when read: at ten
million rows a join per read would cost more than every other part of a page.
"""

from __future__ import annotations

import ibis.expr.types as ir
from ibis.backends import BaseBackend

from cxm.interactions.tables import interactions

__all__ = ["interactions", "log"]


def log(con: BaseBackend) -> ir.Table:
    """The interaction log: ``event_id, type, name, event_time, received_at, customer_id,
    touchpoint_key, channel, revenue, properties, ...`` (times naive UTC)."""
    return con.table("interactions")

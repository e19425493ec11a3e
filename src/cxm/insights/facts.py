"""Insight facts for every reader: the latest churn risk and predicted NPS of each customer.

``cxm insights predict`` writes them (``replace_predictions``); the customer 360, the rules and
the API read them here, never the table itself.
"""

from __future__ import annotations

from typing import Any

import ibis.expr.types as ir
import pyarrow as pa
import sqlalchemy as sa
from ibis.backends import BaseBackend
from sqlalchemy.engine import Connection

from cxm.customers.facts import current_customer
from cxm.insights.tables import customer_predictions
from cxm.store import bulk

__all__ = [
    "customer_predictions",
    "forget",
    "prediction_for",
    "predictions",
    "replace_prediction_table",
    "replace_predictions",
]


def predictions(con: BaseBackend) -> ir.Table:
    """Predictions, one row per customer: ``customer_id, churn_risk, predicted_nps, reasons,
    nps_reasons, model_version, feature_set, seed, as_of, scored_at`` (current customer ids)."""
    return current_customer(con, con.table(customer_predictions.name))


def prediction_for(conn: Connection, customer_id: str) -> dict[str, Any] | None:
    """One customer's prediction as a dict (the columns above), or None when they have none."""
    row = conn.execute(
        sa.select(customer_predictions).where(customer_predictions.c.customer_id == customer_id)
    ).first()
    return None if row is None else dict(row._mapping)


def replace_predictions(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Replace every stored prediction with ``rows`` (in the caller's transaction, so readers
    see either the old set or the new one); returns the rows written."""
    conn.execute(customer_predictions.delete())
    for start in range(0, len(rows), 5000):
        conn.execute(customer_predictions.insert(), rows[start : start + 5000])
    return len(rows)


def replace_prediction_table(conn: Connection, data: pa.Table) -> int:
    """``replace_predictions`` for an Arrow table with the table's columns (times naive UTC,
    reasons as JSON text): one bulk insert (DuckDB: one ``INSERT ... SELECT``; PostgreSQL:
    ``COPY``); returns the rows written."""
    conn.execute(customer_predictions.delete())
    bulk.insert_table(conn, customer_predictions, data)
    return data.num_rows


def forget(conn: Connection, customer_ids: list[str]) -> int:
    """Delete the predictions of ``customer_ids`` (an erasure); returns the rows deleted."""
    done = conn.execute(
        customer_predictions.delete().where(customer_predictions.c.customer_id.in_(customer_ids))
    )
    return int(done.rowcount or 0)

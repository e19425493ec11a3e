"""Interactions keep only the indexes that some query scans.

DuckDB scans an ART index only for a filter on the index's single column, so the (name,
event_time) index never served a query there (EXPLAIN ANALYZE of the trigger, journey and
name filters: a sequential scan with or without it) while every insert and commit maintained
it; on DuckDB it goes. PostgreSQL indexed customer_id twice: alone (0007) and leading
(customer_id, event_time), which serves every lookup by customer id as well; there the lone
one goes. Each engine keeps one index that reads one customer's log and the primary key on
event_id (the idempotency key of every write).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-01
"""

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "duckdb":
        op.drop_index("ix_interactions_name_time", "interactions")
    else:
        op.drop_index("ix_interactions_customer", "interactions")


def downgrade() -> None:
    if op.get_bind().dialect.name == "duckdb":
        op.create_index("ix_interactions_name_time", "interactions", ["name", "event_time"])
    else:
        op.create_index("ix_interactions_customer", "interactions", ["customer_id"])

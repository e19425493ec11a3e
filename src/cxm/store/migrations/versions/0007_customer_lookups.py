"""One customer's interactions by index on DuckDB: a single-column index on customer_id.

DuckDB's planner scans an ART index only for a predicate on the index's single column, so
the (customer_id, event_time) index never served the customer 360 page there: every profile
read the whole log. On DuckDB that index is replaced by one on customer_id alone; PostgreSQL
keeps it (its planner uses a composite index for the leading column) and gets the new one too,
so the schema is the same index by name on both.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "duckdb":
        op.drop_index("ix_interactions_customer_time", "interactions")
    op.create_index("ix_interactions_customer", "interactions", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_interactions_customer", "interactions")
    if op.get_bind().dialect.name == "duckdb":
        op.create_index(
            "ix_interactions_customer_time", "interactions", ["customer_id", "event_time"]
        )

"""Interactions and customers: the interaction log, identities, traits, merges.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "interactions",
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column("event_time", sa.DateTime(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("customer_id", sa.String(32)),
        sa.Column("user_id", sa.String(200)),
        sa.Column("anonymous_id", sa.String(200)),
        sa.Column("email", sa.String(320)),
        sa.Column("phone", sa.String(32)),
        sa.Column("external_ids", sa.JSON),
        sa.Column("touchpoint_key", sa.String(64)),
        sa.Column("channel", sa.String(32)),
        sa.Column("revenue", sa.Double()),
        sa.Column("properties", sa.JSON),
        sa.Column("context", sa.JSON),
        sa.Column("source", sa.String(16), nullable=False),
    )
    op.create_index("ix_interactions_customer_time", "interactions", ["customer_id", "event_time"])
    op.create_index("ix_interactions_name_time", "interactions", ["name", "event_time"])
    op.create_table(
        "customers",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("first_seen", sa.DateTime()),
        sa.Column("last_seen", sa.DateTime()),
        sa.Column("interaction_count", sa.Integer, nullable=False),
        sa.Column("merged_into", sa.String(32)),
        sa.Column("erased_at", sa.DateTime()),
    )
    op.create_table(
        "customer_identities",
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("value", sa.String(320), primary_key=True),
        sa.Column("customer_id", sa.String(32), nullable=False),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_customer_identities_customer", "customer_identities", ["customer_id"])
    op.create_table(
        "customer_traits",
        sa.Column("customer_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text),
        sa.Column("set_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "customer_merges",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("from_customer_id", sa.String(32), nullable=False),
        sa.Column("into_customer_id", sa.String(32), nullable=False),
        sa.Column("identifier_kind", sa.String(32), nullable=False),
        sa.Column("identifier_value", sa.String(320), nullable=False),
        sa.Column("event_id", sa.String(200)),
        sa.Column("merged_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "privacy_requests",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("customer_id", sa.String(32), nullable=False),
        sa.Column("requested_by", sa.String(320), nullable=False),
        sa.Column("counts", sa.JSON),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "privacy_requests",
        "customer_merges",
        "customer_traits",
        "customer_identities",
        "customers",
    ):
        op.drop_table(table)
    op.drop_index("ix_interactions_name_time", "interactions")
    op.drop_index("ix_interactions_customer_time", "interactions")
    op.drop_table("interactions")

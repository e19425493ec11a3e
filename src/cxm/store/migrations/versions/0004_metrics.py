"""Metrics: targets and alerts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_targets",
        sa.Column("metric", sa.String(64), primary_key=True),
        sa.Column("dimension", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(200), primary_key=True),
        sa.Column("target", sa.Float, nullable=False),
        sa.Column("set_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "metric_alerts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("grain", sa.String(16), nullable=False),
        sa.Column("slice", sa.String(400), nullable=False),
        sa.Column("period", sa.String(10), nullable=False),
        sa.Column("previous_period", sa.String(10), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("previous_value", sa.Float, nullable=False),
        sa.Column("p_value", sa.Float, nullable=False),
        sa.Column("p_adjusted", sa.Float, nullable=False),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_metric_alerts_metric_period", "metric_alerts", ["metric", "period"])


def downgrade() -> None:
    op.drop_index("ix_metric_alerts_metric_period", "metric_alerts")
    op.drop_table("metric_alerts")
    op.drop_table("metric_targets")

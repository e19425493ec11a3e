"""Insights: the latest churn risk and predicted NPS for every customer, with their reasons,
model version, feature set and seed.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_predictions",
        sa.Column("customer_id", sa.String(32), primary_key=True),
        sa.Column("churn_risk", sa.Float, nullable=False),
        sa.Column("predicted_nps", sa.Float),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("nps_reasons", sa.JSON, nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("feature_set", sa.String(64), nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("as_of", sa.DateTime(), nullable=False),
        sa.Column("scored_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_customer_predictions_churn_risk", "customer_predictions", ["churn_risk"])


def downgrade() -> None:
    op.drop_index("ix_customer_predictions_churn_risk", "customer_predictions")
    op.drop_table("customer_predictions")

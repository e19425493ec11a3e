"""Partners: the couriers, resellers and installers that run touchpoints for the company.

A touchpoint may name the partner that runs it (it stays owned by a department); a user with
the role ``partner`` is bound to one partner.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partners",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
    )
    op.add_column("touchpoints", sa.Column("partner_key", sa.String(64)))
    op.add_column("users", sa.Column("partner_key", sa.String(64)))


def downgrade() -> None:
    op.drop_column("users", "partner_key")
    op.drop_column("touchpoints", "partner_key")
    op.drop_table("partners")

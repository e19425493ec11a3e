"""Partners running part of a touchpoint: only the interactions that name them.

``touchpoints.partner_runs``: null or ``all`` (the partner runs every interaction there) or
``marked`` (it runs only the interactions whose ``properties.partner`` names it; the rest
are run in-house).

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("touchpoints", sa.Column("partner_runs", sa.String(8)))


def downgrade() -> None:
    op.drop_column("touchpoints", "partner_runs")

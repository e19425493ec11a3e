"""Partner pulse surveys: the people at a partner who answer them, and each round's sends.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partner_contacts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("partner_key", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(100)),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("partner_key", "email", name="uq_partner_contacts_email"),
    )
    op.create_index("ix_partner_contacts_partner_key", "partner_contacts", ["partner_key"])
    op.create_table(
        "partner_pulse_sends",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("survey_key", sa.String(64), nullable=False),
        sa.Column("round_at", sa.DateTime(), nullable=False),
        sa.Column("contact_id", sa.String(32), nullable=False),
        sa.Column("invitation_id", sa.String(32), nullable=False),
        sa.Column("sent_at", sa.DateTime()),
        sa.Column("reminded_at", sa.DateTime()),
        sa.Column("error", sa.String(200)),
    )


def downgrade() -> None:
    op.drop_table("partner_pulse_sends")
    op.drop_index("ix_partner_contacts_partner_key", "partner_contacts")
    op.drop_table("partner_contacts")

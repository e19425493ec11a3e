"""The contact-suppression ledger: unsubscribed customers and bounced addresses, one table.

Existing unsubscribes are copied into it (reason ``unsubscribed``, every channel); the old
``survey_unsubscribes`` table is left in place, no longer written.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contact_suppressions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("customer_id", sa.String(32)),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("address", sa.String(320)),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("status_code", sa.String(16)),
        sa.Column("survey_key", sa.String(64)),
        sa.Column("invitation_id", sa.String(32)),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_contact_suppressions_customer", "contact_suppressions", ["customer_id"])
    op.create_index("ix_contact_suppressions_address", "contact_suppressions", ["address"])
    old = sa.table(
        "survey_unsubscribes",
        sa.column("customer_id", sa.String), sa.column("source", sa.String),
        sa.column("unsubscribed_at", sa.DateTime),
    )  # fmt: skip
    new = sa.table(
        "contact_suppressions",
        *(sa.column(c) for c in ("id", "customer_id", "channel", "reason", "source", "created_at")),
    )
    op.execute(
        new.insert().from_select(
            ["id", "customer_id", "channel", "reason", "source", "created_at"],
            sa.select(
                old.c.customer_id, old.c.customer_id, sa.literal("all"),
                sa.literal("unsubscribed"), old.c.source, old.c.unsubscribed_at,
            ),
        )
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_contact_suppressions_address", "contact_suppressions")
    op.drop_index("ix_contact_suppressions_customer", "contact_suppressions")
    op.drop_table("contact_suppressions")

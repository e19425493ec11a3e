"""Channels: survey waves with one reminder; department digests and page exports by email,
subscribed per user; outgoing webhooks that carry responses and metric alerts as well as cases,
in the receiver's own format (cxm's signed JSON, a Slack or a Microsoft Teams message).

``webhook_subjects`` is the ledger of facts already announced to each webhook: the periodic scan
finds what is new with one anti-join, and its primary key keeps a retried scan from announcing a
fact twice.

Revision ID: 0020
Revises: 0016
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A hook made before this revision speaks cxm's own signed JSON (a null format reads so).
    op.add_column("webhooks", sa.Column("format", sa.String(16), server_default="cxm"))
    op.add_column("webhooks", sa.Column("name", sa.String(200)))
    op.add_column("webhook_deliveries", sa.Column("subject_kind", sa.String(16)))
    op.add_column("webhook_deliveries", sa.Column("subject_id", sa.String(64)))
    op.create_table(
        "webhook_subjects",
        sa.Column("webhook_id", sa.String(32), primary_key=True),
        sa.Column("subject_kind", sa.String(16), primary_key=True),
        sa.Column("subject_id", sa.String(64), primary_key=True),
        sa.Column("queued_at", sa.DateTime(), nullable=False),
    )

    op.create_table(
        "report_subscriptions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("report", sa.String(32), nullable=False),
        sa.Column("department_key", sa.String(64)),
        sa.Column("weekday", sa.Integer, nullable=False),
        sa.Column("path", sa.String(2000)),
        sa.Column("format", sa.String(8)),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "report_sends",
        sa.Column("subscription_id", sa.String(32), primary_key=True),
        sa.Column("period_start", sa.Date, primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
    )

    op.create_table(
        "survey_waves",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("survey_key", sa.String(64), nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("planned", sa.Integer, nullable=False),
        sa.Column("eligible", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("survey_key", "period_start", name="uq_survey_waves_period"),
    )
    op.create_table(
        "survey_reminders",
        sa.Column("invitation_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("survey_reminders")
    op.drop_table("survey_waves")
    op.drop_table("report_sends")
    op.drop_table("report_subscriptions")
    op.drop_table("webhook_subjects")
    op.drop_column("webhook_deliveries", "subject_id")
    op.drop_column("webhook_deliveries", "subject_kind")
    op.drop_column("webhooks", "name")
    op.drop_column("webhooks", "format")

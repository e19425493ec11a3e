"""Surveys: responses and answers (the facts metrics read), definitions and distribution.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "responses",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("survey_key", sa.String(64), nullable=False),
        sa.Column("survey_version", sa.Integer, nullable=False),
        sa.Column("respondent_kind", sa.String(16), nullable=False),
        sa.Column("customer_id", sa.String(32)),
        sa.Column("employee_id", sa.String(64)),
        sa.Column("invitation_id", sa.String(64)),
        sa.Column("trigger_event_id", sa.String(200)),
        sa.Column("touchpoint_key", sa.String(64)),
        sa.Column("channel", sa.String(32)),
        sa.Column("language", sa.String(16)),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("submitted_at", sa.DateTime()),
        sa.Column("completed", sa.Boolean, nullable=False),
        sa.Column("nps", sa.Integer),
        sa.Column("nps_category", sa.String(16)),
        sa.Column("csat", sa.Integer),
        sa.Column("ces", sa.Integer),
        sa.Column("comment", sa.Text),
        sa.Column("source", sa.String(16), nullable=False),
    )
    op.create_index("ix_responses_survey_time", "responses", ["survey_key", "submitted_at"])
    op.create_index("ix_responses_customer", "responses", ["customer_id"])
    op.create_table(
        "response_answers",
        sa.Column("response_id", sa.String(64), primary_key=True),
        sa.Column("question_id", sa.String(64), primary_key=True),
        sa.Column("question_type", sa.String(32), nullable=False),
        sa.Column("value_number", sa.Float),
        sa.Column("value_text", sa.Text),
        sa.Column("answered_at", sa.DateTime(), nullable=False),
    )
    # SURVEYS-DOMAIN TABLES BELOW (definitions, versions, invitations, suppressions, ...)


def downgrade() -> None:
    op.drop_table("response_answers")
    op.drop_index("ix_responses_customer", "responses")
    op.drop_index("ix_responses_survey_time", "responses")
    op.drop_table("responses")

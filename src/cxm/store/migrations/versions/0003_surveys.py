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
    op.create_table(
        "surveys",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("current_version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "survey_versions",
        sa.Column("survey_key", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("published_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "survey_invitations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("token", sa.String(64), unique=True),
        sa.Column("survey_key", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(32)),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("language", sa.String(16)),
        sa.Column("touchpoint_key", sa.String(64)),
        sa.Column("trigger_event_id", sa.String(200)),
        sa.Column("trigger_rule_id", sa.String(32)),
        sa.Column("hidden", sa.JSON),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32)),
        sa.Column("response_id", sa.String(64)),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime()),
        sa.Column("opened_at", sa.DateTime()),
        sa.Column("expires_at", sa.DateTime()),
    )
    op.create_index(
        "ix_survey_invitations_customer", "survey_invitations", ["customer_id", "created_at"]
    )
    op.create_index("ix_survey_invitations_trigger", "survey_invitations", ["trigger_event_id"])
    op.create_table(
        "survey_email_deliveries",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("invitation_id", sa.String(32), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("attempted_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "survey_unsubscribes",
        sa.Column("customer_id", sa.String(32), primary_key=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("unsubscribed_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "survey_trigger_rules",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("survey_key", sa.String(64), nullable=False),
        sa.Column("event", sa.String(200), nullable=False),
        sa.Column("touchpoint_key", sa.String(64)),
        sa.Column("filters", sa.JSON),
        sa.Column("delay_seconds", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("sample_rate", sa.Float, nullable=False),
    )
    op.create_table(
        "survey_contact_rules",
        sa.Column("scope", sa.String(16), primary_key=True),
        sa.Column("min_days", sa.Integer, nullable=False),
        sa.Column("quiet_start_hour", sa.Integer),
        sa.Column("quiet_end_hour", sa.Integer),
    )
    op.create_table(
        "survey_trigger_watermark",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    for name in (
        "survey_trigger_watermark", "survey_contact_rules", "survey_trigger_rules",
        "survey_unsubscribes", "survey_email_deliveries",
    ):  # fmt: skip
        op.drop_table(name)
    op.drop_index("ix_survey_invitations_trigger", "survey_invitations")
    op.drop_index("ix_survey_invitations_customer", "survey_invitations")
    op.drop_table("survey_invitations")
    op.drop_table("survey_versions")
    op.drop_table("surveys")
    op.drop_table("response_answers")
    op.drop_index("ix_responses_customer", "responses")
    op.drop_index("ix_responses_survey_time", "responses")
    op.drop_table("responses")

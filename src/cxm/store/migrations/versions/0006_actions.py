"""Closed loop: rules, cases, history, notes, root causes, webhooks, notifications, initiatives.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "action_rules",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("dedupe_key", sa.String(300), nullable=False, unique=True),
        sa.Column("rule_key", sa.String(64), nullable=False),
        sa.Column("source_kind", sa.String(16), nullable=False),
        sa.Column("source_id", sa.String(200), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("customer_id", sa.String(32)),
        sa.Column("touchpoint_key", sa.String(64)),
        sa.Column("department_key", sa.String(64)),
        sa.Column("team_key", sa.String(64)),
        sa.Column("assignee_id", sa.String(32)),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("sla_state", sa.String(16), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("first_response_due", sa.DateTime(), nullable=False),
        sa.Column("resolution_due", sa.DateTime(), nullable=False),
        sa.Column("first_response_at", sa.DateTime()),
        sa.Column("resolved_at", sa.DateTime()),
        sa.Column("closed_at", sa.DateTime()),
        sa.Column("escalated_at", sa.DateTime()),
        sa.Column("followup_status", sa.String(24)),
        sa.Column("followup_response_id", sa.String(64)),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_cases_team_status", "cases", ["team_key", "status"])
    op.create_index("ix_cases_customer", "cases", ["customer_id"])
    op.create_table(
        "case_events",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("field", sa.String(32)),
        sa.Column("old_value", sa.String(300)),
        sa.Column("new_value", sa.String(300)),
        sa.Column("reason", sa.Text),
    )
    op.create_index("ix_case_events_case", "case_events", ["case_id", "occurred_at"])
    op.create_table(
        "case_notes",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("author", sa.String(320), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "root_causes",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("department_key", sa.String(64)),
    )
    op.create_table(
        "case_root_causes",
        sa.Column("case_id", sa.String(32), primary_key=True),
        sa.Column("root_cause_key", sa.String(64), primary_key=True),
        sa.Column("tagged_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("events", sa.JSON, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("webhook_id", sa.String(32), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("case_id", sa.String(32)),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("attempted_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "case_notifications",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("case_id", sa.String(32), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(300)),
        sa.Column("error", sa.Text),
        sa.Column("attempted_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "initiatives",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("owner_department", sa.String(64), nullable=False),
        sa.Column("root_causes", sa.JSON, nullable=False),
        sa.Column("touchpoints", sa.JSON, nullable=False),
        sa.Column("metric", sa.String(16), nullable=False),
        sa.Column("start_date", sa.Date, nullable=False),
        sa.Column("expected_effect", sa.Float),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    for name in (
        "initiatives", "case_notifications", "webhook_deliveries", "webhooks",
        "case_root_causes", "root_causes", "case_notes", "case_events", "cases", "action_rules",
    ):  # fmt: skip
        op.drop_table(name)

"""The employee directory (employees, team membership over time) and scheduled pulse rounds.

Revision ID: 0014
Revises: 0012
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "employees",
        sa.Column("employee_id", sa.String(64), primary_key=True),
        sa.Column("email", sa.String(320)),
        sa.Column("name", sa.String(200)),
        sa.Column("role", sa.String(100)),
        sa.Column("manager_id", sa.String(64)),
        sa.Column("start_date", sa.Date),
        sa.Column("location", sa.String(200)),
        sa.Column("user_id", sa.String(32)),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "employee_teams",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("employee_id", sa.String(64), nullable=False),
        sa.Column("team_key", sa.String(64), nullable=False),
        sa.Column("valid_from", sa.DateTime(), nullable=False),
        sa.Column("valid_to", sa.DateTime()),
    )
    op.create_index("ix_employee_teams_employee_id", "employee_teams", ["employee_id"])
    op.create_table(
        "pulse_schedules",
        sa.Column("survey_key", sa.String(64), primary_key=True),
        sa.Column("cadence", sa.String(16), nullable=False),
        sa.Column("reminder_days", sa.Integer, nullable=False),
        sa.Column("next_run_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "pulse_sends",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("survey_key", sa.String(64), nullable=False),
        sa.Column("round_at", sa.DateTime(), nullable=False),
        sa.Column("employee_id", sa.String(64), nullable=False),
        sa.Column("invitation_id", sa.String(32), nullable=False),
        sa.Column("sent_at", sa.DateTime()),
        sa.Column("reminded_at", sa.DateTime()),
        sa.Column("error", sa.String(200)),
    )


def downgrade() -> None:
    op.drop_table("pulse_sends")
    op.drop_table("pulse_schedules")
    op.drop_index("ix_employee_teams_employee_id", "employee_teams")
    op.drop_table("employee_teams")
    op.drop_table("employees")

"""Jobs report progress and keep a result, so long work (theme discovery) is a resource to poll;
sign-in attempts are appended, so the lockout never updates a row concurrently.

Progress lives in its own table because it is written in short transactions of its own while
the job's transaction is still open; on DuckDB two transactions updating the same jobs row
would conflict. The result is written by the job's own transaction.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_progress",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("stage", sa.String(200), nullable=False),
        sa.Column("done", sa.Integer, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "job_results",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("result", sa.JSON, nullable=False),
    )
    op.create_table(
        "sign_in_attempts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("attempted_at", sa.DateTime(), nullable=False),
        sa.Column("succeeded", sa.Boolean, nullable=False),
    )
    op.create_index("ix_sign_in_attempts_user_id", "sign_in_attempts", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_sign_in_attempts_user_id", "sign_in_attempts")
    op.drop_table("sign_in_attempts")
    op.drop_table("job_results")
    op.drop_table("job_progress")

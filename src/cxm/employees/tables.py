"""SQLAlchemy Core tables of the employee directory."""

import sqlalchemy as sa

from cxm.store.base import metadata, utc_timestamp

employees = sa.Table(
    "employees",
    metadata,
    sa.Column("employee_id", sa.String(64), primary_key=True),
    sa.Column("email", sa.String(320)),
    sa.Column("name", sa.String(200)),
    sa.Column("role", sa.String(100)),
    sa.Column("manager_id", sa.String(64)),
    sa.Column("start_date", sa.Date),
    sa.Column("location", sa.String(200)),
    # The staff user (sign-in) this employee is, when they have one.
    sa.Column("user_id", sa.String(32)),
    utc_timestamp("created_at", nullable=False),
    utc_timestamp("updated_at", nullable=False),
)

# Team membership over time: one row per stint, the open one has no ``valid_to``. A move closes
# the old stint at the move and opens a new one, so history stays with the old team.
employee_teams = sa.Table(
    "employee_teams",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("employee_id", sa.String(64), nullable=False, index=True),
    sa.Column("team_key", sa.String(64), nullable=False),
    utc_timestamp("valid_from", nullable=False),
    utc_timestamp("valid_to"),
)

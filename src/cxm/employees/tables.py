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

# Pulse surveys sent on a schedule: the next round's time, and how long before one reminder.
pulse_schedules = sa.Table(
    "pulse_schedules",
    metadata,
    sa.Column("survey_key", sa.String(64), primary_key=True),
    sa.Column("cadence", sa.String(16), nullable=False),  # monthly | quarterly
    sa.Column("reminder_days", sa.Integer, nullable=False),
    utc_timestamp("next_run_at", nullable=False),
    utc_timestamp("created_at", nullable=False),
)

# One row per employee asked in a round: the invitation, when it was mailed and reminded.
pulse_sends = sa.Table(
    "pulse_sends",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("survey_key", sa.String(64), nullable=False),
    utc_timestamp("round_at", nullable=False),
    sa.Column("employee_id", sa.String(64), nullable=False),
    sa.Column("invitation_id", sa.String(32), nullable=False),
    utc_timestamp("sent_at"),
    utc_timestamp("reminded_at"),
    sa.Column("error", sa.String(200)),
)


# People at a partner who answer the partner pulse (their staff, not the company's employees,
# not customers). One row per person and partner; the email is unique within a partner.
partner_contacts = sa.Table(
    "partner_contacts",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("partner_key", sa.String(64), nullable=False, index=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("role", sa.String(100)),
    utc_timestamp("created_at", nullable=False),
    utc_timestamp("updated_at", nullable=False),
    sa.UniqueConstraint("partner_key", "email", name="uq_partner_contacts_email"),
)

# One row per partner contact asked in a round of a partner pulse (as ``pulse_sends``).
partner_pulse_sends = sa.Table(
    "partner_pulse_sends",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("survey_key", sa.String(64), nullable=False),
    utc_timestamp("round_at", nullable=False),
    sa.Column("contact_id", sa.String(32), nullable=False),
    sa.Column("invitation_id", sa.String(32), nullable=False),
    utc_timestamp("sent_at"),
    utc_timestamp("reminded_at"),
    sa.Column("error", sa.String(200)),
)

"""SQLAlchemy Core tables of the organization model."""

import sqlalchemy as sa

from cxm.store.base import metadata, utc_timestamp

company = sa.Table(
    "company",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
)

departments = sa.Table(
    "departments",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("position", sa.Integer, nullable=False),
)

teams = sa.Table(
    "teams",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("department_key", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("is_default", sa.Boolean, nullable=False),
    sa.Column("lead_email", sa.String(320)),
)

touchpoints = sa.Table(
    "touchpoints",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    # Null channel, stage and owner = an unknown touchpoint seen in ingest, waiting for an
    # admin to describe and assign it (nothing is dropped for want of an org entry).
    sa.Column("channel", sa.String(32)),
    sa.Column("stage", sa.String(32)),
    sa.Column("department_key", sa.String(64)),
    sa.Column("team_key", sa.String(64)),
    sa.Column("description", sa.Text),
    utc_timestamp("created_at", nullable=False),
    # The partner that runs the touchpoint for the owning department (None: run in-house).
    sa.Column("partner_key", sa.String(64)),
    # "marked": the partner runs only the interactions whose ``properties.partner`` names it
    # (a courier carrying part of the deliveries); null or "all": every interaction there.
    sa.Column("partner_runs", sa.String(8)),
)

# Couriers, resellers, installers: companies that run touchpoints on the company's behalf.
partners = sa.Table(
    "partners",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
)

touchpoint_contributors = sa.Table(
    "touchpoint_contributors",
    metadata,
    sa.Column("touchpoint_key", sa.String(64), primary_key=True),
    sa.Column("department_key", sa.String(64), primary_key=True),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.String(200)),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("department_key", sa.String(64)),
    sa.Column("team_key", sa.String(64)),
    # The partner a user of role "partner" works for.
    sa.Column("partner_key", sa.String(64)),
    sa.Column("password_hash", sa.String(200)),
    sa.Column("is_active", sa.Boolean, nullable=False),
    sa.Column("failed_logins", sa.Integer, nullable=False),
    utc_timestamp("locked_until"),
    utc_timestamp("created_at", nullable=False),
)

# Every sign-in attempt, appended: the lockout is computed from these rows, so concurrent
# attempts never update one row (DuckDB refuses concurrent updates of a row).
sign_in_attempts = sa.Table(
    "sign_in_attempts",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.String(32), nullable=False, index=True),
    utc_timestamp("attempted_at", nullable=False),
    sa.Column("succeeded", sa.Boolean, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.String(32)),
    sa.Column("name", sa.String(200)),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("secret_hash", sa.String(128), nullable=False, unique=True),
    utc_timestamp("created_at", nullable=False),
    utc_timestamp("last_used_at"),
    utc_timestamp("revoked_at"),
)

# Signed-in sessions, server-side so sign-out and a password change end them; the cookie
# carries a random token, the store only its SHA-256 digest.
user_sessions = sa.Table(
    "user_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(32), nullable=False, index=True),
    sa.Column("csrf", sa.String(64), nullable=False),
    utc_timestamp("created_at", nullable=False),
    utc_timestamp("expires_at", nullable=False),
)

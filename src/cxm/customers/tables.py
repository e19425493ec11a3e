"""Customer profiles, the identifiers that point at them, their traits, and merges."""

import sqlalchemy as sa

from cxm.store.base import metadata, utc_timestamp

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    utc_timestamp("created_at", nullable=False),
    utc_timestamp("first_seen"),
    utc_timestamp("last_seen"),
    sa.Column("interaction_count", sa.Integer, nullable=False),
    sa.Column("merged_into", sa.String(32)),  # set when this profile was merged into another
    utc_timestamp("erased_at"),
)

# kind: email, phone, user_id, anonymous_id, or an external id name such as crm_id.
customer_identities = sa.Table(
    "customer_identities",
    metadata,
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("value", sa.String(320), primary_key=True),
    sa.Column("customer_id", sa.String(32), nullable=False),
    utc_timestamp("first_seen", nullable=False),
)
sa.Index("ix_customer_identities_customer", customer_identities.c.customer_id)

# Long form (one row per trait) so every engine can slice by a trait without JSON functions.
customer_traits = sa.Table(
    "customer_traits",
    metadata,
    sa.Column("customer_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text),
    utc_timestamp("set_at", nullable=False),
)

customer_merges = sa.Table(
    "customer_merges",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("from_customer_id", sa.String(32), nullable=False),
    sa.Column("into_customer_id", sa.String(32), nullable=False),
    sa.Column("identifier_kind", sa.String(32), nullable=False),
    sa.Column("identifier_value", sa.String(320), nullable=False),
    sa.Column("event_id", sa.String(200)),
    utc_timestamp("merged_at", nullable=False),
)

# Who asked for what on whose data, and what was touched (counts only: no personal data).
privacy_requests = sa.Table(
    "privacy_requests",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # export | erase
    sa.Column("customer_id", sa.String(32), nullable=False),
    sa.Column("requested_by", sa.String(320), nullable=False),
    sa.Column("counts", sa.JSON),
    utc_timestamp("requested_at", nullable=False),
)

# The type of each trait name: inferred from the first values written (declared False), or
# set by an administrator (declared True, never re-inferred). Slices cast and sort by it.
trait_types = sa.Table(
    "trait_types",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("type", sa.String(16), nullable=False),  # number | date | boolean | string
    sa.Column("declared", sa.Boolean, nullable=False),
    utc_timestamp("set_at", nullable=False),
)

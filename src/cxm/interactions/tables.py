"""The interaction log (append-only; one row per event, keyed by its event id)."""

import sqlalchemy as sa

from cxm.store.base import metadata, utc_timestamp

interactions = sa.Table(
    "interactions",
    metadata,
    sa.Column("event_id", sa.String(200), primary_key=True),
    sa.Column("type", sa.String(16), nullable=False),  # track identify page screen group alias
    sa.Column("name", sa.String(200)),  # order_placed, ticket_closed, ... (page/screen name)
    utc_timestamp("event_time", nullable=False),
    utc_timestamp("received_at", nullable=False),
    sa.Column("customer_id", sa.String(32)),  # resolved profile (null until resolved)
    sa.Column("user_id", sa.String(200)),
    sa.Column("anonymous_id", sa.String(200)),
    sa.Column("email", sa.String(320)),  # normalised
    sa.Column("phone", sa.String(32)),  # E.164
    sa.Column("external_ids", sa.JSON),  # {"crm_id": "...", ...}
    sa.Column("touchpoint_key", sa.String(64)),
    sa.Column("channel", sa.String(32)),
    # Money attached to the event (properties.revenue / amount / value), typed so every
    # engine can sum it without JSON functions.
    sa.Column("revenue", sa.Double),
    sa.Column("properties", sa.JSON),
    sa.Column("context", sa.JSON),
    sa.Column("source", sa.String(16), nullable=False),  # api, segment, import
)
# One customer's log (customer 360, privacy) and the log by name and time (triggers, journeys).
# Each engine has only the indexes its planner scans (migrations 0007 and 0025): DuckDB scans
# an index only for a filter on its single column, so it has ix_interactions_customer alone;
# PostgreSQL has the two composite ones (the first serves lookups by customer_id too).
sa.Index("ix_interactions_customer", interactions.c.customer_id)  # DuckDB
sa.Index("ix_interactions_customer_time", interactions.c.customer_id, interactions.c.event_time)
sa.Index("ix_interactions_name_time", interactions.c.name, interactions.c.event_time)

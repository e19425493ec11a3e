"""SQLAlchemy Core tables of the metrics layer: per-installation targets and movement alerts."""

import sqlalchemy as sa

from cxm.store.base import metadata, utc_timestamp

# A target for a metric overall (dimension = value = "") or for one slice
# (dimension "department", value "service"); overrides the target in the definition.
metric_targets = sa.Table(
    "metric_targets",
    metadata,
    sa.Column("metric", sa.String(64), primary_key=True),
    sa.Column("dimension", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(200), primary_key=True),
    sa.Column("target", sa.Float, nullable=False),
    utc_timestamp("set_at", nullable=False),
)

# A significant drop against the previous period; the closed-loop domain routes them.
metric_alerts = sa.Table(
    "metric_alerts",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # hash of metric, slice and period
    sa.Column("metric", sa.String(64), nullable=False),
    sa.Column("grain", sa.String(16), nullable=False),
    sa.Column("slice", sa.String(400), nullable=False),  # "department=service" or ""
    sa.Column("period", sa.String(10), nullable=False),  # ISO date the period starts
    sa.Column("previous_period", sa.String(10), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("previous_value", sa.Float, nullable=False),
    sa.Column("p_value", sa.Float, nullable=False),
    sa.Column("p_adjusted", sa.Float, nullable=False),
    sa.Column("method", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open | routed | closed
    utc_timestamp("created_at", nullable=False),
)
sa.Index("ix_metric_alerts_metric_period", metric_alerts.c.metric, metric_alerts.c.period)

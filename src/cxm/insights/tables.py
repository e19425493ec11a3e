"""SQLAlchemy Core tables of insights: the latest prediction for every customer."""

import sqlalchemy as sa

from cxm.store.base import metadata, utc_timestamp

# One row per customer who had not churned at the prediction date; ``cxm insights predict``
# replaces every row in one transaction, so all rows come from one model and feature set.
customer_predictions = sa.Table(
    "customer_predictions",
    metadata,
    sa.Column("customer_id", sa.String(32), primary_key=True),
    sa.Column("churn_risk", sa.Float, nullable=False),  # probability of churning, 0-1
    sa.Column("predicted_nps", sa.Float),  # expected 0-10 score; null without NPS answers
    sa.Column("reasons", sa.JSON, nullable=False),  # top three towards churn
    sa.Column("nps_reasons", sa.JSON, nullable=False),  # top three towards a lower score
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("feature_set", sa.String(64), nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
    utc_timestamp("as_of", nullable=False),  # the prediction date: features stop here
    utc_timestamp("scored_at", nullable=False),
)
sa.Index("ix_customer_predictions_churn_risk", customer_predictions.c.churn_risk)

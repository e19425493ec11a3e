"""SQLAlchemy Core tables of the closed loop: rules, cases and their history, notifications."""

import sqlalchemy as sa

from cxm.store.base import metadata, utc_timestamp

action_rules = sa.Table(
    "action_rules",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column(
        "trigger", sa.String(16), nullable=False
    ),  # response | interaction | metric_alert | churn_risk
    sa.Column("definition", sa.JSON, nullable=False),  # the validated rule, as written
    sa.Column("enabled", sa.Boolean, nullable=False),
    utc_timestamp("updated_at", nullable=False),
)

cases = sa.Table(
    "cases",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    # rule key + source kind + source id: one event opens at most one case per rule.
    sa.Column("dedupe_key", sa.String(300), nullable=False, unique=True),
    sa.Column("rule_key", sa.String(64), nullable=False),
    sa.Column(
        "source_kind", sa.String(16), nullable=False
    ),  # response | interaction | alert | prediction
    sa.Column("source_id", sa.String(200), nullable=False),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("customer_id", sa.String(32)),
    sa.Column("touchpoint_key", sa.String(64)),
    sa.Column("department_key", sa.String(64)),
    sa.Column("team_key", sa.String(64)),  # null: the CX lead's queue
    sa.Column("assignee_id", sa.String(32)),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("priority", sa.String(8), nullable=False),  # p1 .. p4
    sa.Column("sla_state", sa.String(16), nullable=False),  # ok | at_risk | breached | met
    utc_timestamp("opened_at", nullable=False),
    utc_timestamp("first_response_due", nullable=False),
    utc_timestamp("resolution_due", nullable=False),
    utc_timestamp("first_response_at"),
    utc_timestamp("resolved_at"),
    utc_timestamp("closed_at"),
    utc_timestamp("escalated_at"),
    sa.Column("followup_status", sa.String(24)),  # requested, then answered
    sa.Column("followup_response_id", sa.String(64)),
    utc_timestamp("updated_at", nullable=False),
)
sa.Index("ix_cases_team_status", cases.c.team_key, cases.c.status)
sa.Index("ix_cases_customer", cases.c.customer_id)

# Who changed what, when: every change to a case, its opening included.
case_events = sa.Table(
    "case_events",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("case_id", sa.String(32), nullable=False),
    utc_timestamp("occurred_at", nullable=False),
    sa.Column("actor", sa.String(320), nullable=False),  # user email, or "system"
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("field", sa.String(32)),
    sa.Column("old_value", sa.String(300)),
    sa.Column("new_value", sa.String(300)),
    sa.Column("reason", sa.Text),
)
sa.Index("ix_case_events_case", case_events.c.case_id, case_events.c.occurred_at)

case_notes = sa.Table(
    "case_notes",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("case_id", sa.String(32), nullable=False),
    sa.Column("author", sa.String(320), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    utc_timestamp("created_at", nullable=False),
)

root_causes = sa.Table(
    "root_causes",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("category", sa.String(64), nullable=False),
    sa.Column("department_key", sa.String(64)),
)

case_root_causes = sa.Table(
    "case_root_causes",
    metadata,
    sa.Column("case_id", sa.String(32), primary_key=True),
    sa.Column("root_cause_key", sa.String(64), primary_key=True),
    utc_timestamp("tagged_at", nullable=False),
)

webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("secret", sa.String(200), nullable=False),
    sa.Column("events", sa.JSON, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    utc_timestamp("created_at", nullable=False),
    # cxm (signed JSON) | slack | teams; null on hooks made before formats existed reads as cxm.
    sa.Column("format", sa.String(16), server_default="cxm"),
    sa.Column("name", sa.String(200)),
)

# The facts (responses, metric alerts) already queued for each webhook: the scan's anti-join.
webhook_subjects = sa.Table(
    "webhook_subjects",
    metadata,
    sa.Column("webhook_id", sa.String(32), primary_key=True),
    sa.Column("subject_kind", sa.String(16), primary_key=True),  # response | alert
    sa.Column("subject_id", sa.String(64), primary_key=True),
    utc_timestamp("queued_at", nullable=False),
)

# Every attempt to deliver a webhook, failed ones included.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("webhook_id", sa.String(32), nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("case_id", sa.String(32)),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # delivered | failed | gave_up
    sa.Column("status_code", sa.Integer),
    sa.Column("error", sa.Text),
    utc_timestamp("attempted_at", nullable=False),
    sa.Column("subject_kind", sa.String(16)),  # case | response | alert
    sa.Column("subject_id", sa.String(64)),
)

# Emails sent (or not) about cases.
notifications = sa.Table(
    "case_notifications",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("case_id", sa.String(32), nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # sent | failed
    sa.Column("message_id", sa.String(300)),
    sa.Column("error", sa.Text),
    utc_timestamp("attempted_at", nullable=False),
)

initiatives = sa.Table(
    "initiatives",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("owner_department", sa.String(64), nullable=False),
    sa.Column("root_causes", sa.JSON, nullable=False),
    sa.Column("touchpoints", sa.JSON, nullable=False),
    sa.Column("metric", sa.String(16), nullable=False),  # nps | csat | ces
    sa.Column("start_date", sa.Date, nullable=False),
    sa.Column("expected_effect", sa.Float),
    sa.Column("status", sa.String(16), nullable=False),  # planned | active | done
    utc_timestamp("created_at", nullable=False),
)

# Who receives which scheduled report (a weekly department digest) on which weekday.
report_subscriptions = sa.Table(
    "report_subscriptions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.String(32), nullable=False),
    sa.Column("report", sa.String(32), nullable=False),  # department_digest | page_export
    sa.Column("department_key", sa.String(64)),  # the digest's department
    sa.Column("weekday", sa.Integer, nullable=False),  # 0 Monday .. 6 Sunday
    sa.Column("path", sa.String(2000)),  # page_export: the page, e.g. /departments/service
    sa.Column("format", sa.String(8)),  # page_export: pdf | png
    utc_timestamp("created_at", nullable=False),
)

# One row per subscription and reported week: sent, or failed with the reason (shown, retried).
report_sends = sa.Table(
    "report_sends",
    metadata,
    sa.Column("subscription_id", sa.String(32), primary_key=True),
    sa.Column("period_start", sa.Date, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),  # sent | failed
    sa.Column("error", sa.Text),
    utc_timestamp("sent_at", nullable=False),
)

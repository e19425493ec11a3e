"""Survey responses in two forms: one row per response (with derived scores) and long answers."""

import sqlalchemy as sa

from cxm.store.base import metadata, utc_timestamp

responses = sa.Table(
    "responses",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("survey_key", sa.String(64), nullable=False),
    sa.Column("survey_version", sa.Integer, nullable=False),
    sa.Column("respondent_kind", sa.String(16), nullable=False),  # customer | employee
    sa.Column("customer_id", sa.String(32)),
    sa.Column("employee_id", sa.String(64)),
    sa.Column("invitation_id", sa.String(64)),
    sa.Column("trigger_event_id", sa.String(200)),
    sa.Column("touchpoint_key", sa.String(64)),  # the owning department follows from the org
    sa.Column("channel", sa.String(32)),
    sa.Column("language", sa.String(16)),
    utc_timestamp("started_at", nullable=False),
    utc_timestamp("submitted_at"),  # null while partial
    sa.Column("completed", sa.Boolean, nullable=False),
    # Derived on write from the answers, so metrics never re-derive them.
    sa.Column("nps", sa.Integer),  # 0..10
    sa.Column("nps_category", sa.String(16)),  # promoter | passive | detractor
    sa.Column("csat", sa.Integer),  # 1..5
    sa.Column("ces", sa.Integer),  # 1..7
    sa.Column("comment", sa.Text),  # the open-text answers joined, for text analytics
    sa.Column("source", sa.String(16), nullable=False),  # web, email, import, api
)
sa.Index("ix_responses_survey_time", responses.c.survey_key, responses.c.submitted_at)
sa.Index("ix_responses_customer", responses.c.customer_id)

response_answers = sa.Table(
    "response_answers",
    metadata,
    sa.Column("response_id", sa.String(64), primary_key=True),
    sa.Column("question_id", sa.String(64), primary_key=True),
    sa.Column("question_type", sa.String(32), nullable=False),
    sa.Column("value_number", sa.Float),
    sa.Column("value_text", sa.Text),
    utc_timestamp("answered_at", nullable=False),
)

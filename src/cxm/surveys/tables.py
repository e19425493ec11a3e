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
    sa.Column("value_text", sa.Text),  # multiple choice: a line for people, never parsed back
    # Multiple choice: the chosen option values (they may contain any separator).
    sa.Column("value_list", sa.JSON),
    utc_timestamp("answered_at", nullable=False),
)

# ---- definitions and distribution (owned by the surveys domain) ----

surveys = sa.Table(
    "surveys",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("title", sa.String(300), nullable=False),  # in the default language
    sa.Column("kind", sa.String(16), nullable=False),  # relationship | transactional | employee
    sa.Column("current_version", sa.Integer, nullable=False),
    utc_timestamp("created_at", nullable=False),
    utc_timestamp("updated_at", nullable=False),
)

# Every published change is a new row; responses keep the version they answered.
survey_versions = sa.Table(
    "survey_versions",
    metadata,
    sa.Column("survey_key", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("definition", sa.JSON, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    utc_timestamp("published_at", nullable=False),
)

# One row per invitation, including suppressed ones (token null, reason set), so the funnel
# counts what was held back and why.
invitations = sa.Table(
    "survey_invitations",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("token", sa.String(64), unique=True),
    sa.Column("survey_key", sa.String(64), nullable=False),
    sa.Column("customer_id", sa.String(32)),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("language", sa.String(16)),
    sa.Column("touchpoint_key", sa.String(64)),
    sa.Column("trigger_event_id", sa.String(200)),
    sa.Column("trigger_rule_id", sa.String(32)),
    sa.Column("hidden", sa.JSON),
    sa.Column("status", sa.String(16), nullable=False),  # created sent failed suppressed
    sa.Column("reason", sa.String(32)),  # why suppressed / failed
    sa.Column("response_id", sa.String(64)),
    utc_timestamp("created_at", nullable=False),
    utc_timestamp("sent_at"),
    utc_timestamp("opened_at"),
    utc_timestamp("expires_at"),
)
sa.Index("ix_survey_invitations_customer", invitations.c.customer_id, invitations.c.created_at)
sa.Index("ix_survey_invitations_trigger", invitations.c.trigger_event_id)

# Each attempt to hand an email to the SMTP server, failed ones included.
email_deliveries = sa.Table(
    "survey_email_deliveries",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("invitation_id", sa.String(32), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # sent | failed | bounced
    sa.Column("error", sa.Text),
    utc_timestamp("attempted_at", nullable=False),
)

unsubscribes = sa.Table(
    "survey_unsubscribes",
    metadata,
    sa.Column("customer_id", sa.String(32), primary_key=True),
    sa.Column("source", sa.String(32), nullable=False),  # link | api | cli
    utc_timestamp("unsubscribed_at", nullable=False),
)

trigger_rules = sa.Table(
    "survey_trigger_rules",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # survey key + position, stable on re-apply
    sa.Column("survey_key", sa.String(64), nullable=False),
    sa.Column("event", sa.String(200), nullable=False),
    sa.Column("touchpoint_key", sa.String(64)),
    sa.Column("filters", sa.JSON),  # property name -> required value
    sa.Column("delay_seconds", sa.Integer, nullable=False),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("sample_rate", sa.Float, nullable=False),
)

# Contact-fatigue rules: scope "all" applies across every survey, or a survey kind.
contact_rules = sa.Table(
    "survey_contact_rules",
    metadata,
    sa.Column("scope", sa.String(16), primary_key=True),
    sa.Column("min_days", sa.Integer, nullable=False),
    sa.Column("quiet_start_hour", sa.Integer),
    sa.Column("quiet_end_hour", sa.Integer),
)

trigger_watermark = sa.Table(
    "survey_trigger_watermark",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    utc_timestamp("received_at", nullable=False),
    sa.Column("event_id", sa.String(200), nullable=False),
)

# The contact-suppression ledger: addresses (or whole channels) of a customer that no
# invitation may go to, and why (bounced: the mail server refused the address for good).
# Keyed by customer (so a merge moves it) and by address (so a new address is not held back,
# and an address stays held back whoever it belongs to).
contact_suppressions = sa.Table(
    "contact_suppressions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("customer_id", sa.String(32)),
    sa.Column("channel", sa.String(32), nullable=False),  # email | sms
    sa.Column("address", sa.String(320)),  # null: every address of the channel
    sa.Column("reason", sa.String(32), nullable=False),  # bounced | unsubscribed | complained
    sa.Column("source", sa.String(32), nullable=False),  # smtp | dsn | api | cli
    sa.Column("status_code", sa.String(16)),  # SMTP reply / RFC 3463 status, e.g. 550 or 5.1.1
    sa.Column("survey_key", sa.String(64)),  # the survey whose invitation bounced
    sa.Column("invitation_id", sa.String(32)),
    utc_timestamp("created_at", nullable=False),
)
sa.Index("ix_contact_suppressions_customer", contact_suppressions.c.customer_id)
sa.Index("ix_contact_suppressions_address", contact_suppressions.c.address)

# One row per survey and period a wave went out in: the unique pair keeps a wave from being
# planned twice, however often the scheduler runs.
survey_waves = sa.Table(
    "survey_waves",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # the invitations' trigger_rule_id
    sa.Column("survey_key", sa.String(64), nullable=False),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("planned", sa.Integer, nullable=False),  # invitations planned
    sa.Column("eligible", sa.Integer, nullable=False),  # customers it was drawn from
    utc_timestamp("created_at", nullable=False),
    sa.UniqueConstraint("survey_key", "period_start", name="uq_survey_waves_period"),
)

# The one reminder an invitation of a wave may get.
survey_reminders = sa.Table(
    "survey_reminders",
    metadata,
    sa.Column("invitation_id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),  # sent | failed | skipped
    utc_timestamp("sent_at", nullable=False),
)

"""The causal structure of the demo company, Northwind Living.

This module owns every number the demo generator uses: who the customers are, how often they do
things, which frictions they can meet (late delivery, damaged item, billing error, repeat contact,
long wait), how likely each friction is, and how much it moves transactional CSAT, relationship NPS,
the odds of churning and the eNPS of the team that owns the touchpoint. It also owns the shape of
the company itself (departments, teams, touchpoints), because frictions are attributed to the team
that owns the touchpoint where they happen.

``generator.py`` only executes this model; ``docs/demo.md`` documents it. Change a number here and
the docs table must change with it: ``effect_table()`` renders the rows the docs show.

Conventions, so the numbers read the same everywhere:

* Scores are drawn as ``latent = base + shifts + effects + noise``, then rounded and clipped to
  the scale (NPS 0-10, CSAT 1-5, CES 1-7, higher is better everywhere). Clipping at the top of the
  scale makes observed drops slightly smaller than the stated effects.
* A friction's CSAT effect applies to the transactional survey about the very delivery or ticket
  where it happened. Its NPS effect applies to a relationship NPS answer when the customer met that
  friction at least once in the ``NPS_MEMORY_DAYS`` before answering (effects of several frictions
  add up). Its churn effect is added to the log-odds of churning within the window when met at
  least once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

COMPANY_NAME = "Northwind Living"
# A fixed end so that output never depends on today's date.
WINDOW_END = datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)
# Phone numbers are German (mobile for consumers, landline for businesses).
PHONE_REGION = "DE"

# --------------------------------------------------------------------------------------------
# Customers
# --------------------------------------------------------------------------------------------
SEGMENTS = ("consumer", "small_business", "enterprise")
SEGMENT_SHARE = (0.78, 0.18, 0.04)
REGIONS = ("north", "south", "east", "west")
REGION_SHARE = (0.24, 0.26, 0.22, 0.28)
PLANS = ("basic", "plus", "premium")
PLAN_SHARE = {
    "consumer": (0.55, 0.33, 0.12),
    "small_business": (0.30, 0.45, 0.25),
    "enterprise": (0.10, 0.40, 0.50),
}
# Mostly English; the German and French shares also set the share of non-English comments.
LANGUAGES = ("en", "de", "fr")
LANGUAGE_SHARE = (0.92, 0.05, 0.03)
# Share of customers acquired during the window (tenure 0): their journey starts with a campaign.
NEW_CUSTOMER_SHARE = 0.25
# Existing customers' tenure at window start: 1 + geometric with this mean, capped.
TENURE_MEAN_MONTHS = 24
TENURE_MAX_MONTHS = 120
# Annual revenue per customer (EUR): log-normal around a median per segment.
VALUE_MEDIAN = {"consumer": 450.0, "small_business": 6_000.0, "enterprise": 80_000.0}
VALUE_SIGMA = 0.6
# Monthly subscription fee (EUR) by plan, times a factor per segment (business seats).
MONTHLY_FEE = {"basic": 9.90, "plus": 19.90, "premium": 39.90}
SEGMENT_FEE_FACTOR = {"consumer": 1.0, "small_business": 4.0, "enterprise": 25.0}

# --------------------------------------------------------------------------------------------
# Activity (rates are per customer per month of activity)
# --------------------------------------------------------------------------------------------
CAMPAIGN_EMAILS_PER_MONTH = 1.0
CAMPAIGN_CLICK_RATE = 0.25  # an opened campaign email that leads to a web visit
WEB_SESSIONS_PER_MONTH = 1.0
EXTRA_PAGES_PER_SESSION = 1.0  # pages per session = 1 + Poisson(this)
ORDERS_PER_MONTH = {"consumer": 0.30, "small_business": 0.50, "enterprise": 0.80}
STORE_SHOPPER_SHARE = 0.30  # customers who also shop in stores ...
STORE_ORDER_SHARE = 0.60  # ... place this share of their orders there
STORE_ORDER_DELIVERED = 0.60  # store orders that are delivered home (the rest is carried home)
PROMISED_DELIVERY_DAYS = (2, 6)  # uniform integer range, inclusive
PRODUCT_REGISTRATION_RATE = 0.30  # deliveries followed by an in-product registration
APP_USER_SHARE = 0.45
APP_SESSIONS_PER_MONTH = 2.0
SELF_SERVICE_PER_MONTH = 0.30
SELF_SERVICE_IN_APP = 0.60  # share of an app user's self-service done in the app
TICKETS_PER_MONTH = {"consumer": 0.12, "small_business": 0.20, "enterprise": 0.30}
PHONE_TICKET_SHARE = 0.55  # the rest is chat
SALES_CALLS_PER_MONTH = {"consumer": 0.02, "small_business": 0.30, "enterprise": 0.60}
# Frictions that make customers contact support (probability of a ticket about it).
TICKET_AFTER_FRICTION = {"late_delivery": 0.25, "damaged_item": 0.70, "billing_error": 0.60}
RETURN_AFTER_DAMAGE = 0.90
MAX_CONTACTS = 4  # a support case is given up after this many contacts
# Identity: 1-3 devices; app users have an app device on top of their browser.
EXTRA_BROWSER_SHARE = 0.25
ALIAS_SHARE = 0.03  # customers whose last device is linked by an alias event instead of a login
LOGGED_OUT_CHAT_SHARE = 0.30  # chat tickets with only an email (not logged in)

# --------------------------------------------------------------------------------------------
# Frictions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Friction:
    """One kind of friction: where it happens, how often, and what it causes."""

    key: str
    label: str
    touchpoints: tuple[str, ...]  # where it is attributed (the owner team "owns" it)
    per: str  # the opportunity the rate applies to: delivery, invoice or ticket
    rate: float  # base probability per opportunity
    segment_multiplier: dict[str, float] = field(default_factory=dict)
    region_multiplier: dict[str, float] = field(default_factory=dict)
    csat_survey: str = ""  # the transactional survey the CSAT effect lands on
    csat_effect: float = 0.0  # on the 1-5 CSAT scale, for the affected delivery/ticket
    nps_effect: float = 0.0  # on the 0-10 relationship NPS scale, once met before answering
    churn_log_odds: float = 0.0  # added to the log-odds of churning within the window

    def probability(self, segment: str, region: str) -> float:
        return (
            self.rate
            * self.segment_multiplier.get(segment, 1.0)
            * self.region_multiplier.get(region, 1.0)
        )


FRICTIONS: tuple[Friction, ...] = (
    Friction(
        key="late_delivery",
        label="Late delivery",
        touchpoints=("delivery",),
        per="delivery",
        rate=0.10,
        # The southern depot is understaffed: twice the late deliveries.
        region_multiplier={"south": 2.0},
        csat_survey="delivery_csat",
        csat_effect=-1.5,
        nps_effect=-1.0,
        churn_log_odds=0.5,
    ),
    Friction(
        key="damaged_item",
        label="Damaged item",
        touchpoints=("delivery",),
        per="delivery",
        rate=0.04,
        # Consumer parcels go through the cheap carrier.
        segment_multiplier={"consumer": 1.25, "enterprise": 0.5},
        csat_survey="delivery_csat",
        csat_effect=-2.0,
        nps_effect=-1.5,
        churn_log_odds=0.6,
    ),
    Friction(
        key="billing_error",
        label="Billing error",
        touchpoints=("invoice",),
        per="invoice",
        rate=0.025,
        # Multi-seat business invoices go wrong more often.
        segment_multiplier={"small_business": 1.8, "enterprise": 1.4},
        csat_survey="support_csat",  # on the ticket raised about the error
        csat_effect=-1.0,
        nps_effect=-2.0,
        churn_log_odds=0.7,
    ),
    Friction(
        key="repeat_contact",
        label="Repeat contact",
        touchpoints=("support_phone", "support_chat"),
        per="ticket",
        rate=0.20,  # a contact is closed unresolved and the customer must come back
        # Enterprise accounts have a named agent.
        segment_multiplier={"enterprise": 0.5},
        csat_survey="support_csat",  # on the unresolved contact and on every repeat
        csat_effect=-1.2,
        nps_effect=-1.5,
        churn_log_odds=0.8,
    ),
    Friction(
        key="long_wait",
        label="Long wait",
        touchpoints=("support_phone", "support_chat"),
        per="ticket",
        rate=0.12,  # waited 25-75 minutes in the queue
        # The eastern call centre is short of agents; enterprise has a priority line.
        region_multiplier={"east": 1.8},
        segment_multiplier={"enterprise": 0.4},
        csat_survey="support_csat",
        csat_effect=-1.0,
        nps_effect=-0.5,
        churn_log_odds=0.3,
    ),
)
FRICTION_KEYS = tuple(f.key for f in FRICTIONS)
# Long waits are a phone problem first: multiplier by ticket channel.
LONG_WAIT_CHANNEL_MULTIPLIER = {"phone": 1.5, "chat": 0.4}
LONG_WAIT_MINUTES = (25, 75)  # uniform, for contacts that met the friction
NORMAL_WAIT_MEDIAN_MINUTES = {"phone": 3.0, "chat": 1.5}  # log-normal, capped at 20
LATE_DAYS_MEAN = 2.0  # late by 1 + Poisson(this) days
REPEAT_WITHIN_DAYS = 14  # a repeat contact comes back within this many days

# --------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------
# Relationship NPS: latent 0-10 score. The base is high so that, after frictions, company NPS
# lands around +20 (promoters 9-10 minus detractors 0-6).
NPS_BASE_MEAN = 9.0
NPS_NOISE_SD = 1.6
NPS_SEGMENT_SHIFT = {"consumer": 0.0, "small_business": -0.2, "enterprise": -0.4}
NPS_PLAN_SHIFT = {"basic": -0.2, "plus": 0.0, "premium": 0.3}
# A friction weighs on relationship NPS while remembered: met in the 180 days before answering.
NPS_MEMORY_DAYS = 180
# Transactional CSAT 1-5.
CSAT_BASE_MEAN = {"delivery_csat": 4.4, "support_csat": 4.3}
CSAT_NOISE_SD = 0.7
# Customer effort 1-7 (7 = very easy). Web self-service is harder than in the app.
CES_BASE_MEAN = 5.8
CES_WEB_SHIFT = -0.6
CES_NOISE_SD = 1.0

# Churn within the window: base log-odds from a monthly hazard, plus plan and friction effects.
CHURN_MONTHLY_HAZARD = {"consumer": 0.012, "small_business": 0.009, "enterprise": 0.005}
CHURN_PLAN_LOG_ODDS = {"basic": 0.2, "plus": 0.0, "premium": -0.3}

# --------------------------------------------------------------------------------------------
# Surveys
# --------------------------------------------------------------------------------------------
# Share of triggers that get an invitation, and share of invitations answered.
SURVEY_INVITE_RATE = {
    "relationship_nps": 1.0,
    "delivery_csat": 0.60,
    "support_csat": 0.70,
    "self_service_ces": 0.40,
}
SURVEY_RESPONSE_RATE = {
    "relationship_nps": 0.25,
    "delivery_csat": 0.30,
    "support_csat": 0.30,
    "self_service_ces": 0.30,
}
# Relationship NPS is sent in waves: one every this many months, in the last quarter of it.
RELATIONSHIP_WAVE_MONTHS = 6
RESPONSE_DELAY_HOURS = 10.0  # exponential delay from invitation to answer
# Share of respondents who write a comment, by the tone of their score.
COMMENT_RATE = {"negative": 0.65, "neutral": 0.35, "positive": 0.45}
# Share of comments from respondents who met a friction that talk about it.
FRICTION_MENTION_RATE = 0.85
RESPONSE_CRM_ID_RATE = 0.85  # responses that carry the crm_id from the invitation link

# --------------------------------------------------------------------------------------------
# Shared identifiers (for the identity guard rails to catch)
# --------------------------------------------------------------------------------------------
CUSTOMERS_PER_SHARED_EMAIL = 500  # one family email shared by 2 customers per this many
CUSTOMERS_PER_SHARED_PHONE = 2000  # one office switchboard shared by 4 customers per this many
SHARED_PHONE_SIZE = 4
CUSTOMERS_PER_KIOSK_USER = 300  # one store kiosk device used by 1 customer per this many (>= 3)

# --------------------------------------------------------------------------------------------
# Employees
# --------------------------------------------------------------------------------------------
# eNPS latent = base + effect * friction share of the team's touchpoints + noise. The friction
# share is the share of the team's owned deliveries, invoices or tickets that met a friction.
PULSE_BASE_MEAN = 8.0
PULSE_NOISE_SD = 1.6
PULSE_FRICTION_EFFECT = -8.0
PULSE_RESPONSE_RATE = 0.70
PULSE_COMMENT_RATE = 0.35

# --------------------------------------------------------------------------------------------
# The company: departments, teams (with head count) and touchpoints
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Team:
    key: str
    name: str
    size: int
    default: bool = False


@dataclass(frozen=True)
class Department:
    key: str
    name: str
    teams: tuple[Team, ...]


@dataclass(frozen=True)
class Touchpoint:
    key: str
    name: str
    channel: str
    stage: str
    department: str
    team: str
    contributors: tuple[str, ...] = ()
    partner: str | None = None  # the partner that runs it for the owning department
    # "marked": the partner runs only the interactions whose properties.partner names it.
    partner_runs: str = "all"


# A courier carries part of the home deliveries for Supply Chain & Delivery, whose own fleet
# carries the rest: each delivery event of an order SwiftPost carries names it
# (``properties.partner``). Which orders it carries is drawn from a random stream of its own,
# so the other events, answers and planted effects are the same as without the courier.
PARTNERS: tuple[tuple[str, str, str], ...] = (("swiftpost", "SwiftPost Couriers", "courier"),)
SWIFTPOST_SHARE = 0.4  # of home deliveries
# SwiftPost's own people answer a monthly partner pulse (their own random stream): a partner
# NPS around the latent mean, ease of working together and communication on 1-5.
PARTNER_CONTACTS = 9
PARTNER_PULSE_RESPONSE_RATE = 0.8
PARTNER_PULSE_MEAN = 7.2  # latent 0-10 answer
PARTNER_PULSE_SD = 1.8
PARTNER_PULSE_ITEM_MEANS = {"ease": 3.6, "communication": 2.9}  # latent 1-5 answers
PARTNER_PULSE_COMMENT_RATE = 0.4

DEPARTMENTS: tuple[Department, ...] = (
    Department(
        "executive",
        "Executive",
        (Team("leadership", "Leadership", 5, True), Team("cx_office", "CX Office", 4)),
    ),
    Department(
        "marketing",
        "Marketing & Brand",
        (
            Team("brand", "Brand & Campaigns", 8, True),
            Team("web_content", "Web & Content", 6),
        ),
    ),
    Department(
        "sales",
        "Sales",
        (
            Team("stores", "Stores", 24, True),
            Team("business_sales", "Business Sales", 9),
            Team("renewals", "Renewals & Accounts", 6),
        ),
    ),
    Department(
        "product",
        "Product",
        (
            Team("app_product", "Mobile App", 8, True),
            Team("product_experience", "Product Experience", 7),
        ),
    ),
    Department(
        "service",
        "Customer Service",
        (
            Team("frontline", "Frontline Support", 30, True),
            Team("self_service", "Self-Service & Knowledge", 5),
            Team("retention", "Retention", 6),
        ),
    ),
    Department(
        "operations",
        "Operations",
        (Team("returns_ops", "Returns", 10, True), Team("quality", "Quality", 5)),
    ),
    Department(
        "supply_chain",
        "Supply Chain & Delivery",
        (Team("last_mile", "Last Mile", 26, True), Team("warehouse", "Warehouse", 18)),
    ),
    Department(
        "billing",
        "Billing & Finance",
        (Team("billing_ops", "Billing Operations", 9, True), Team("finance", "Finance", 6)),
    ),
    Department(
        "it",
        "Tech & IT",
        (
            Team("web_platform", "Web Platform", 10, True),
            Team("infrastructure", "Infrastructure", 6),
        ),
    ),
    Department("people", "People (HR)", (Team("hr_partners", "HR Partners", 5, True),)),
)

TOUCHPOINTS: tuple[Touchpoint, ...] = (
    Touchpoint("campaign_email", "Campaign emails", "email", "discover", "marketing", "brand"),
    Touchpoint("website_browse", "Website", "web", "consider", "marketing", "web_content", ("it",)),
    Touchpoint("sales_call", "Sales calls", "phone", "consider", "sales", "business_sales"),
    Touchpoint("checkout_web", "Web checkout", "web", "buy", "it", "web_platform", ("billing",)),
    Touchpoint("store_visit", "Store visit", "store", "buy", "sales", "stores"),
    Touchpoint(
        "delivery",
        "Home delivery",
        "delivery",
        "receive",
        "supply_chain",
        "last_mile",
        ("operations",),
        partner="swiftpost",
        partner_runs="marked",
    ),
    Touchpoint(
        "returns",
        "Returns & replacements",
        "delivery",
        "get help",
        "operations",
        "returns_ops",
        ("supply_chain",),
    ),
    Touchpoint("mobile_app", "Mobile app", "app", "use", "product", "app_product", ("it",)),
    Touchpoint("product_use", "Product use", "in-product", "use", "product", "product_experience"),
    Touchpoint("help_center", "Online help centre", "web", "get help", "service", "self_service"),
    Touchpoint("support_chat", "Support chat", "chat", "get help", "service", "frontline"),
    Touchpoint("support_phone", "Support hotline", "phone", "get help", "service", "frontline"),
    Touchpoint("invoice", "Monthly invoice", "billing", "pay", "billing", "billing_ops"),
    Touchpoint(
        "renewal", "Subscription renewal", "email", "renew", "sales", "renewals", ("billing",)
    ),
    Touchpoint("cancellation", "Cancellation", "web", "leave", "service", "retention"),
)

CHANNELS = (
    "web",
    "app",
    "email",
    "phone",
    "chat",
    "store",
    "social",
    "mail",
    "delivery",
    "billing",
    "in-product",
)
STAGES = ("discover", "consider", "buy", "receive", "use", "get help", "pay", "renew", "leave")


def friction(key: str) -> Friction:
    """The friction with this key."""
    for f in FRICTIONS:
        if f.key == key:
            return f
    raise KeyError(key)


def effect_table() -> list[dict[str, object]]:
    """One row per friction with every stated number; used for ground_truth.json and the docs."""
    return [
        {
            "friction": f.key,
            "label": f.label,
            "touchpoints": list(f.touchpoints),
            "per": f.per,
            "rate": f.rate,
            "segment_multiplier": dict(f.segment_multiplier),
            "region_multiplier": dict(f.region_multiplier),
            "csat_survey": f.csat_survey,
            "csat_effect": f.csat_effect,
            "nps_effect": f.nps_effect,
            "churn_log_odds": f.churn_log_odds,
        }
        for f in FRICTIONS
    ]

"""Load a generated demo company through the same importers a user runs."""

from __future__ import annotations

import datetime as dt
import smtplib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.actions import digest
from cxm.actions import service as actions
from cxm.actions.schemas import InitiativeIn
from cxm.config import Settings, load_settings
from cxm.employees import directory
from cxm.employees.importer import import_employees
from cxm.employees.partner_pulse import SURVEY as PARTNER_SURVEY
from cxm.employees.partner_pulse import import_contacts
from cxm.interactions.importer import import_file
from cxm.mail import send_mail
from cxm.org import auth
from cxm.org import service as org
from cxm.org.facts import users
from cxm.org.scope import Scope
from cxm.surveys.facts import responses_table
from cxm.surveys.importer import import_responses
from cxm.surveys.loading import load_demo_surveys
from cxm.surveys.sends import record_sends
from cxm.text import taxonomy
from cxm.text.jobs import annotate_bulk
from cxm.yamldoc import read

Progress = Callable[[str], None]


# One sign-in per role, so every view of the web app can be tried. Demo only: these
# passwords are public, so never load the demo into a store that holds real data.
DEMO_USERS: list[tuple[str, str, str | None, str | None, str]] = [
    ("admin@northwind.example", "admin", None, None, "demo-admin"),
    ("cx.lead@northwind.example", "cx_lead", None, None, "demo-cxlead"),
    ("delivery.manager@northwind.example", "manager", "supply_chain", None, "demo-manager"),
    ("chat.agent@northwind.example", "agent", None, "service_default", "demo-agent"),
    ("viewer@northwind.example", "viewer", None, None, "demo-viewer"),
    ("dispatch@swiftpost.example", "partner", None, None, "demo-partner"),
]
# The partner each demo partner user works for (the courier that runs home delivery).
DEMO_PARTNER_OF = {"dispatch@swiftpost.example": "swiftpost"}


def demo_logins(conn: sa.Connection) -> list[tuple[str, str, str]]:
    """(email, role, password) of the demo users present in the store."""
    present = set(conn.execute(sa.select(users.c.email)).scalars())
    return [(email, role, pw) for email, role, _, _, pw in DEMO_USERS if email in present]


def _create_demo_users(conn: sa.Connection) -> int:
    present = set(conn.execute(sa.select(users.c.email)).scalars())
    created = 0
    for email, role, department, team, password in DEMO_USERS:
        if email in present:
            continue
        if team == "service_default":  # the agent works in Customer Service's default team
            team = next((t.key for t in org.list_teams(conn, "service") if t.is_default), None)
        auth.create_user(
            conn, email, role, password=password, name=role.replace("_", " ").title(),
            department_key=department, team_key=team, partner_key=DEMO_PARTNER_OF.get(email),
        )  # fmt: skip
        created += 1
    return created


DEMO_AGENT = "chat.agent@northwind.example"


def _link_demo_agent(conn: sa.Connection) -> None:
    """The demo agent is a member of the support team in the directory, so their own
    customer outcomes have data (the second member: the first leads the team)."""
    _, support = directory.list_employees(conn, team="frontline", limit=2)
    if len(support) == 2 and DEMO_AGENT in {e for e, *_ in DEMO_USERS}:
        present = set(conn.execute(sa.select(users.c.email)).scalars())
        if DEMO_AGENT in present:
            directory.link_user(conn, support[1].employee_id, DEMO_AGENT)


def load_partner_pulse(engine: Engine, folder: Path, say: Progress) -> dict[str, str]:
    """The people at the partner (``partner_contacts.csv``) and their partner pulse answers
    (``partner_pulse.csv``, the shipped ``partner_pulse`` survey)."""
    steps: dict[str, str] = {}
    if (folder / "partner_contacts.csv").exists():
        say("partner contacts")
        with engine.begin() as conn:
            result = import_contacts(conn, folder / "partner_contacts.csv")
        steps["partner contacts"] = result.line()
    if (folder / "partner_pulse.csv").exists():
        say("partner pulse")
        with engine.begin() as conn:
            answers = import_responses(conn, folder / "partner_pulse.csv", survey=PARTNER_SURVEY)
        steps["partner pulse"] = (
            f"{answers.imported} imported, {answers.already_present} already present"
        )
    return steps


def is_empty(engine: Engine) -> bool:
    """True when the store holds no touchpoints yet (a fresh installation)."""
    with engine.connect() as conn:
        return not org.list_touchpoints(conn)


@dataclass
class LoadSummary:
    steps: dict[str, str] = field(default_factory=dict)


def load(engine: Engine, folder: Path, progress: Progress | None = None) -> LoadSummary:
    """Load every part of the demo company whose importer exists, in dependency order."""
    say = progress or (lambda _msg: None)
    summary = LoadSummary()
    say("org")
    with engine.begin() as conn:
        result = org.apply_org(conn, read(folder / "org.yaml"))
    summary.steps["org"] = ", ".join(f"{n} {k}" for k, n in result.created.items()) or "unchanged"
    if (folder / "employees.csv").exists():
        say("employees")
        with engine.begin() as conn:
            summary.steps["employees"] = import_employees(conn, folder / "employees.csv").line()
    for name in ("interactions.parquet", "interactions.jsonl"):
        if (folder / name).exists():
            say("interactions")
            summary.steps["interactions"] = import_file(engine, folder / name).line()
            break
    summary.steps.update(load_demo_surveys(engine, folder, say))
    summary.steps.update(load_partner_pulse(engine, folder, say))
    say("invitations")
    summary.steps["invitations"] = (
        f"{record_sends(engine)} sent invitations recorded from the log's survey_sent events"
    )
    say("text")
    with engine.begin() as conn:
        taxonomy.apply(conn, taxonomy.starter_doc())
    # Keyword tagging only: the demo must load in seconds, without the embedding model.
    annotated = annotate_bulk(engine, semantic=False)
    summary.steps["text"] = f"{annotated.annotated} comments annotated ({annotated.tier})"
    say("users")
    with engine.begin() as conn:
        summary.steps["users"] = f"{_create_demo_users(conn)} demo users created"
        _link_demo_agent(conn)
    say("cases")
    with engine.begin() as conn:
        actions.apply_default_rules(conn)
        opened = actions.run_rules(conn)
    summary.steps["cases"] = f"{sum(opened.values())} cases opened by the default rules"
    say("initiative")
    with engine.begin() as conn:
        summary.steps["initiative"] = add_demo_initiative(conn)
    say("digest")
    summary.steps["digest"] = send_demo_digest(engine, load_settings())
    return summary


DIGEST_READER = "delivery.manager@northwind.example"


def send_demo_digest(engine: Engine, settings: Settings) -> str:
    """Subscribe the delivery manager to Supply Chain's weekly digest and send the digest of
    the demo's last complete week once; a missing mail server is said, not hidden."""
    with engine.begin() as conn:
        if not digest.subscriptions(conn, DIGEST_READER):
            digest.subscribe(conn, Scope("admin"), DIGEST_READER, "supply_chain", weekday=0)
        last = conn.execute(sa.select(sa.func.max(responses_table.c.submitted_at))).scalar()
    if last is None:
        return "no answers to digest"
    week = digest.week_of(last.date() + dt.timedelta(days=1))
    built = digest.build(engine, "supply_chain", week)
    subject, text, html = digest.render(built, settings.base_url)
    try:
        send_mail(settings, DIGEST_READER, subject, text, html=html)
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        return (
            f"the week of {week} not sent to {DIGEST_READER}: {type(exc).__name__} "
            f"(no mail server at {settings.smtp_host}:{settings.smtp_port}?); "
            f"see it with 'cxm reports digest supply_chain --week {week}'"
        )
    return f"the week of {week} sent to {DIGEST_READER}"


DEMO_INITIATIVE = InitiativeIn(
    name="Two-hour delivery windows",
    description=(
        "Customers get a two-hour delivery window the evening before, to cut late deliveries. "
        "In the demo company the planted effects do not change over time, so this initiative "
        "has no real effect to find: the page shows how the before/after test reads, and a "
        "non-significant result is the expected, honest outcome."
    ),
    owner_department="supply_chain",
    root_causes=["late_delivery"],
    touchpoints=["delivery"],
    metric="csat",
    start_date=dt.date(2026, 9, 1),  # two months before the demo window ends (2026-10-31)
    expected_effect=0.3,
)


def add_demo_initiative(conn: sa.Connection) -> str:
    """One initiative, so the outer-loop pages show a before/after; once per store."""
    if any(i["name"] == DEMO_INITIATIVE.name for i in actions.list_initiatives(conn)):
        return "unchanged"
    actions.create_initiative(conn, DEMO_INITIATIVE)
    return f"'{DEMO_INITIATIVE.name}' on delivery CSAT from {DEMO_INITIATIVE.start_date}"

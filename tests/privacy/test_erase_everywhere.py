"""After an erasure no column of any table holds the person's identifiers or free text.

The person touches every feature (identify and track events, an email invitation with a
hidden field that bounces, a response with a comment and an open answer, text annotation, a
case with a note and a webhook delivery, a job payload); the scan reads every text and JSON
column of every table the information schema lists, so a table added later is scanned too.
"""

from __future__ import annotations

import datetime as dt
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from sqlalchemy.engine import Connection, Engine

from cxm.actions import notify
from cxm.actions import service as actions
from cxm.actions.schemas import WebhookIn
from cxm.config import load_settings
from cxm.interactions import service as interactions
from cxm.metrics import compute
from cxm.org import service as org
from cxm.org.auth import Principal
from cxm.org.scope import scope_for
from cxm.privacy import service as privacy
from cxm.store import jobs
from cxm.surveys import distribution, suppressions
from cxm.surveys.tables import invitations, response_answers
from cxm.text.jobs import annotate_bulk
from cxm.yamldoc import parse
from tests.conftest import free_port
from tests.surveys.conftest import apply
from tests.web.factories import ORG, add_responses

LEAD = Principal(scope="admin", role="cx_lead", email="lead@example.com")
EMAIL = "greta.vogelsang@example.com"
PHONE_GIVEN, PHONE = "+49 151 2345 6789", "+4915123456789"
USER_ID, ANON_ID, NAME = "crm-user-9931", "anon-7f3e2a", "Greta Vogelsang"
COMMENT = "The courier threw my parcel over the fence at Lindenweg 12"
ANSWER = "Please call me before delivery, I work night shifts"
NEEDLES = [EMAIL, PHONE, PHONE_GIVEN, USER_ID, ANON_ID, NAME, COMMENT, ANSWER]


class Refuse:
    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"


@pytest.fixture
def smtp_port() -> Iterator[int]:
    port = free_port()
    controller = Controller(Refuse(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port
    controller.stop()


@pytest.fixture
def receiver() -> Iterator[str]:
    """A webhook receiver that answers 500, so the delivery log records a failure."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(500)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def scan(conn: Connection, needles: list[str]) -> dict[str, set[str]]:
    """``"table.column" -> needles found`` over every text and JSON column of every table,
    read independently of the code under test: the information schema, then every value."""
    cols = sa.table(
        "columns", sa.column("table_schema"), sa.column("table_name"),
        sa.column("column_name"), sa.column("data_type"), schema="information_schema",
    )  # fmt: skip
    rows = conn.execute(
        sa.select(cols.c.table_name, cols.c.column_name, cols.c.data_type).where(
            cols.c.table_schema == sa.func.current_schema()
        )
    ).all()
    textual = [
        (t, c)
        for t, c, kind in rows
        if str(kind).lower() in ("varchar", "character varying", "text", "json", "jsonb")
    ]
    assert len({t for t, _ in textual}) >= 30  # every domain's tables are there
    found: dict[str, set[str]] = {}
    for table, column in textual:
        values = conn.execute(
            sa.select(sa.cast(sa.column(column), sa.Text)).select_from(sa.table(table))
        ).scalars()
        for value in values:
            if value is None:
                continue
            text = str(value).lower()
            for needle in needles:
                if needle.lower() in text:
                    found.setdefault(f"{table}.{column}", set()).add(needle)
    return found


def _person(engine: Engine, smtp_port: int, hook_url: str) -> str:
    with engine.begin() as conn:
        org.apply_org(conn, parse(ORG))
        apply(conn)
        results = interactions.ingest(
            conn,
            [
                {"event_id": "e-identify", "type": "identify", "user_id": USER_ID,
                 "anonymous_id": ANON_ID, "email": EMAIL, "phone": PHONE_GIVEN,
                 "traits": {"name": NAME, "email": EMAIL, "plan": "business"},
                 "timestamp": "2026-09-01T08:00:00Z"},
                {"event_id": "e-delivered", "name": "order_delivered", "user_id": USER_ID,
                 "touchpoint": "delivery", "properties": {"recipient": NAME},
                 "timestamp": "2026-09-02T08:00:00Z"},
            ],
            "api",
        )  # fmt: skip
        cid = results[-1].customer_id
        assert cid is not None
        distribution.invite(conn, {"survey": "delivery_csat", "customer_id": cid,
                                   "hidden": {"contact": EMAIL, "who": NAME}})  # fmt: skip
        # Work queued for later, naming the person (an import or an export job, say).
        jobs.enqueue(conn, "test.export", {"customer": EMAIL, "note": f"for {NAME}"})
    jobs.run_due(engine, distribution.handlers(load_settings(smtp_port=smtp_port)))
    add_responses(engine, "delivery", [1], comment=COMMENT + "\n" + ANSWER, customer_id=cid)
    add_responses(engine, "delivery", [9, 10, 6])
    with engine.begin() as conn:
        response_id = conn.execute(
            sa.text("SELECT id FROM responses WHERE customer_id = :c"), {"c": cid}
        ).scalar_one()
        conn.execute(response_answers.insert().values(
            response_id=response_id, question_id="what_wrong", question_type="open_text",
            value_number=None, value_text=ANSWER,
            answered_at=dt.datetime(2026, 9, 3, tzinfo=dt.UTC),
        ))  # fmt: skip
    annotate_bulk(engine, semantic=False)
    with engine.begin() as conn:
        actions.add_webhook(conn, WebhookIn(url=hook_url, secret="s" * 20))
        actions.apply_default_rules(conn)
        actions.run_rules(conn)
        case = next(c for c in actions.list_cases(conn, scope_for(LEAD)) if c["customer_id"] == cid)
        actions.add_note(conn, scope_for(LEAD), LEAD.email, case["id"],
                         f"Called {NAME} on {PHONE_GIVEN}, wrote to {EMAIL}")  # fmt: skip
        notify.raise_event(conn, case, "case_opened")
    jobs.run_due(engine, notify_handlers())
    return cid


def notify_handlers() -> dict[str, jobs.Handler]:
    return actions.handlers(load_settings(smtp_port=free_port()))


def test_erasure_leaves_no_identifier_or_free_text_in_any_column(
    seeded: Engine, smtp_port: int, receiver: str
) -> None:
    cid = _person(seeded, smtp_port, receiver)
    with seeded.connect() as conn:
        before = scan(conn, NEEDLES)
        deliveries = conn.execute(sa.text("SELECT count(*) FROM webhook_deliveries")).scalar()
        bounced = conn.execute(
            sa.select(invitations.c.status, invitations.c.reason)
        ).all()  # fmt: skip
    # The person really is everywhere before (so the scan can see them) ...
    assert {"interactions.email", "customer_identities.value", "customer_traits.value",
            "responses.comment", "response_answers.value_text", "case_notes.body",
            "survey_invitations.hidden", "survey_email_deliveries.recipient",
            "contact_suppressions.address", "jobs.payload"} <= set(before)  # fmt: skip
    assert deliveries and [tuple(r) for r in bounced] == [("failed", "bounced")]
    nps_before = compute(seeded, "nps").iloc[0]["value"]
    with seeded.begin() as conn:
        counts = privacy.erase(conn, EMAIL, "dpo@example.com")
    # ... and nowhere after; every aggregate stays right.
    with seeded.connect() as conn:
        assert scan(conn, NEEDLES) == {}
        # A bounced address stays held back, kept only as a digest.
        assert suppressions.reason_for(conn, "email", EMAIL) == "bounced"
    assert counts["other_values_scrubbed"] > 0 and counts["suppressions_pseudonymised"] == 1
    assert compute(seeded, "nps").iloc[0]["value"] == nps_before
    with seeded.connect() as conn:
        assert conn.execute(sa.select(invitations.c.customer_id)).scalar_one() == cid


def test_erasure_keeps_other_customers_short_answers_and_traits(seeded: Engine) -> None:
    with seeded.begin() as conn:
        org.apply_org(conn, parse(ORG))
        a, b = (
            interactions.ingest(conn, [{"event_id": f"e-{n}", "type": "identify",
                                        "email": f"{n}@example.com",
                                        "traits": {"plan": "business"}}], "api")[0].customer_id
            for n in ("first", "second")
        )  # fmt: skip
    add_responses(seeded, "delivery", [2], comment="late again", customer_id=a)
    add_responses(seeded, "delivery", [3], comment="late again", customer_id=b)
    with seeded.begin() as conn:
        privacy.erase(conn, "first@example.com", "dpo@example.com")
    with seeded.connect() as conn:
        kept = conn.execute(
            sa.text("SELECT comment FROM responses WHERE customer_id = :c"), {"c": b}
        ).scalar_one()
        plan = conn.execute(
            sa.text("SELECT value FROM customer_traits WHERE customer_id = :c"), {"c": b}
        ).scalar_one()
    assert kept == "late again" and plan == "business"


def test_a_table_added_later_is_swept_without_naming_it(seeded: Engine) -> None:
    extra = sa.Table(
        "partner_export_log", sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("line", sa.Text), sa.Column("row_data", sa.JSON),
    )  # fmt: skip
    extra.create(seeded)
    try:
        _erase_with_extra_table(seeded, extra)
    finally:
        extra.drop(seeded)


def _erase_with_extra_table(seeded: Engine, extra: sa.Table) -> None:
    with seeded.begin() as conn:
        interactions.ingest(conn, [{"event_id": "e1", "type": "identify", "email": EMAIL,
                                    "traits": {"name": NAME}}], "api")  # fmt: skip
        conn.execute(extra.insert(), [
            {"id": 1, "line": f"exported {EMAIL.upper()} ok", "row_data": {"to": [NAME]}},
            {"id": 2, "line": "someone else", "row_data": {"to": ["Ada"]}},
        ])  # fmt: skip
    with seeded.begin() as conn:
        privacy.erase(conn, EMAIL, "dpo@example.com")
    with seeded.connect() as conn:
        rows = conn.execute(sa.select(extra).order_by(extra.c.id)).all()
        assert scan(conn, [EMAIL, NAME]) == {}
    assert rows[0].line.startswith("exported [erased-") and rows[0].line.endswith(" ok")
    assert (rows[1].line, rows[1].row_data) == ("someone else", {"to": ["Ada"]})

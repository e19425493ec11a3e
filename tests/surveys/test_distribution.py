"""Triggers, contact-fatigue rules and email invitations through a real SMTP server."""

from __future__ import annotations

import datetime as dt
import email
import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from cxm.config import load_settings
from cxm.interactions.tables import interactions
from cxm.store import jobs, utcnow
from cxm.surveys import analytics, distribution, service, suppressions, triggers
from cxm.surveys.tables import email_deliveries, invitations
from tests.conftest import free_port
from tests.surveys.conftest import T0, add_customer, apply


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def _interaction(conn: sa.Connection, event_id: str, customer_id: str, at: dt.datetime) -> None:
    conn.execute(
        interactions.insert().values(
            event_id=event_id, type="track", name="order_delivered", event_time=at,
            received_at=at, customer_id=customer_id, touchpoint_key="delivery",
            channel="delivery", properties={"order_id": "A-1"}, source="api",
        )
    )  # fmt: skip


def test_trigger_invites_after_delay_sends_email_and_respects_fatigue(
    engine: Engine, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    settings = load_settings(smtp_port=port, base_url="http://cxm.test")
    handlers = distribution.handlers(settings)
    # Jobs compare with the real clock, so the story is told relative to now.
    t0 = utcnow() - dt.timedelta(hours=1)
    with engine.begin() as conn:
        apply(conn)
        cid = add_customer(conn, "ada@example.com", {"language": "de"})
        _interaction(conn, "evt-1", cid, t0)
        _interaction(conn, "evt-2", cid, t0 + dt.timedelta(hours=1) - dt.timedelta(seconds=5))
    with engine.begin() as conn:
        assert triggers.scan(conn) == 2
    with engine.begin() as conn:  # scanning again plans nothing twice
        assert triggers.scan(conn) == 0
    # Before the 2h delay nothing runs; after it the first invitation goes out.
    assert jobs.run_due(engine, handlers, now=t0 + dt.timedelta(hours=1, minutes=59)) == 0
    jobs.run_due(engine, handlers, now=t0 + dt.timedelta(hours=2, minutes=1))
    jobs.run_due(engine, handlers, now=t0 + dt.timedelta(hours=2, minutes=2))
    assert len(inbox.messages) == 1
    msg = inbox.messages[0]
    assert msg["To"] == "ada@example.com" and msg["List-Unsubscribe"]
    text = next(p for p in msg.walk() if p.get_content_type() == "text/plain").get_payload(
        decode=True).decode()  # fmt: skip
    assert "Zur Umfrage" in text  # the customer's language
    token = re.search(r"http://cxm\.test/s/([A-Za-z0-9_-]+)", text).group(1)  # type: ignore[union-attr]
    # The second delivery an hour later is held back by the 14-day rule, with its reason.
    jobs.run_due(engine, handlers, now=t0 + dt.timedelta(hours=3, minutes=1))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(invitations.c.trigger_event_id, invitations.c.status, invitations.c.reason)
            .order_by(invitations.c.trigger_event_id)
        ).all()  # fmt: skip
        assert [tuple(r) for r in rows] == [
            ("evt-1", "sent", None), ("evt-2", "suppressed", "fatigue")
        ]  # fmt: skip
        assert conn.execute(sa.select(invitations.c.token).where(
            invitations.c.status == "sent")).scalar() == token  # fmt: skip
    funnel = analytics.funnel(engine, "delivery_csat")
    assert funnel[0]["invited"] == 2 and funnel[0]["sent"] == 1
    assert funnel[0]["suppressed_by_reason"] == {"fatigue": 1}


def test_email_link_opens_the_survey(
    seeded: Engine, app_client: TestClient, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    settings = load_settings(smtp_port=port, base_url="http://testserver")
    with seeded.begin() as conn:
        apply(conn)
        cid = add_customer(conn, "bo@example.com")
        distribution.invite(conn, {"survey": "delivery_csat", "customer_id": cid})
    jobs.run_due(seeded, distribution.handlers(settings))
    html = next(p for p in inbox.messages[0].walk() if p.get_content_type() == "text/html")
    link = re.search(r'href="(http://testserver/s/[^"]+)"', html.get_payload(decode=True).decode())
    assert link is not None
    page = app_client.get(link.group(1))
    assert page.status_code == 200 and "How satisfied are you?" in page.text


def test_send_failures_are_recorded_and_retried_with_backoff(
    engine: Engine, refused_port: int
) -> None:
    settings = load_settings(smtp_port=refused_port)
    with engine.begin() as conn:
        apply(conn)
        cid = add_customer(conn, "cy@example.com")
        distribution.invite(conn, {"survey": "delivery_csat", "customer_id": cid}, now=utcnow())
    # The send job is due from the real clock at enqueue: run it a second after the set-up
    # ended, however long a loaded machine took over it.
    now = utcnow() + dt.timedelta(seconds=1)
    jobs.run_due(engine, distribution.handlers(settings), now=now)
    with engine.connect() as conn:
        failed = conn.execute(sa.select(email_deliveries)).mappings().one()
        retry = conn.execute(
            sa.select(jobs.jobs.c.run_at).where(jobs.jobs.c.status == "pending")
        ).scalar_one()  # fmt: skip
        status = conn.execute(sa.select(invitations.c.status)).scalar_one()
    assert failed["status"] == "failed" and failed["attempt"] == 1
    assert retry >= now + dt.timedelta(seconds=29)  # backoff before the next attempt
    assert status == "created"  # still to be sent


@pytest.mark.parametrize("how", ["unsubscribed", "erased", "quiet"])
def test_contact_rules_hold_back_or_defer(engine: Engine, how: str) -> None:
    from cxm.customers.tables import customers

    with engine.begin() as conn:
        apply(conn)
        cid = add_customer(conn, "di@example.com", {"timezone": "Europe/Berlin"})
        if how == "unsubscribed":
            service.unsubscribe(conn, cid, "test")
        if how == "erased":
            conn.execute(customers.update().values(erased_at=T0))
        night = dt.datetime(2026, 3, 2, 22, 30, tzinfo=dt.UTC)  # 23:30 in Berlin
        result = distribution.invite(conn, {"survey": "delivery_csat", "customer_id": cid,
                                            "dedupe": "k"}, now=night)  # fmt: skip
    if how == "quiet":
        assert result == "deferred"
        with engine.connect() as conn:
            run_at = conn.execute(sa.select(jobs.jobs.c.run_at)).scalar_one()
        assert run_at.replace(tzinfo=None) == dt.datetime(2026, 3, 3, 7, 0)  # 08:00 Berlin
    else:
        assert result == how


# ---- the current address, bounces and the suppression ledger ----


class Refusing(Inbox):
    """Accepts mail except for the addresses in ``replies``, refused at RCPT with that reply
    (or at DATA for those in ``at_data``); every RCPT is counted per address."""

    def __init__(self, replies: dict[str, str], at_data: dict[str, str] | None = None) -> None:
        super().__init__()
        self.replies, self.at_data = replies, at_data or {}
        self.attempts: dict[str, int] = {}

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        self.attempts[address] = self.attempts.get(address, 0) + 1
        if address in self.replies:
            return self.replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for rcpt in envelope.rcpt_tos:
            if rcpt in self.at_data:
                return self.at_data[rcpt]
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def refusing() -> Iterator[tuple[Refusing, int]]:
    sink = Refusing({"gone@example.com": "550 5.1.1 <gone@example.com>: no such user",
                     "busy@example.com": "450 4.2.1 mailbox busy, try later"},
                    {"spam@example.com": "554 5.7.1 message refused"})  # fmt: skip
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


def _ingest(conn: sa.Connection, *events: dict[str, Any]) -> str:
    from cxm.interactions import service as ingest

    results = ingest.ingest(conn, list(events), "api")
    assert all(r.status == "stored" for r in results), results
    cid = results[-1].customer_id
    assert cid is not None
    return cid


@pytest.mark.parametrize(
    ("old", "new"),
    [("a.lindqvist@oldmail.example", "lindqvist.anna@newmail.example"),
     ("z.lindqvist@oldmail.example", "anna@newmail.example")],
)  # fmt: skip
def test_invitation_goes_to_the_most_recently_seen_address_not_the_first_in_the_alphabet(
    engine: Engine, smtp: tuple[Inbox, int], old: str, new: str
) -> None:
    inbox, port = smtp
    with engine.begin() as conn:
        apply(conn)
        cid = _ingest(
            conn,
            {"event_id": "i1", "type": "identify", "user_id": "u-1", "email": old,
             "timestamp": "2026-01-10T08:00:00Z"},
            {"event_id": "i2", "type": "identify", "user_id": "u-1", "email": new,
             "traits": {"email": new}, "timestamp": "2026-10-01T08:00:00Z"},
        )  # fmt: skip
        distribution.invite(conn, {"survey": "delivery_csat", "customer_id": cid})
    jobs.run_due(engine, distribution.handlers(load_settings(smtp_port=port)))
    assert [m["To"] for m in inbox.messages] == [new]


def test_an_address_seen_again_later_is_current_again(engine: Engine) -> None:
    from cxm.customers.contacts import current_contact

    with engine.begin() as conn:
        cid = _ingest(
            conn,
            {"event_id": "i1", "type": "identify", "user_id": "u-2", "email": "b@example.com",
             "timestamp": "2026-01-10T08:00:00Z"},
            {"event_id": "i2", "type": "identify", "user_id": "u-2", "email": "a@example.com",
             "timestamp": "2026-02-10T08:00:00Z"},
            {"event_id": "t3", "type": "track", "name": "order_placed", "user_id": "u-2",
             "email": "b@example.com", "timestamp": "2026-03-10T08:00:00Z"},
        )  # fmt: skip
        assert current_contact(conn, cid, "email") == "b@example.com"
        assert current_contact(conn, cid, "phone") is None


def _invite_and_send(engine: Engine, port: int, cid: str, event: str) -> None:
    with engine.begin() as conn:
        distribution.invite(conn, {"survey": "delivery_csat", "customer_id": cid,
                                   "trigger_event_id": event})  # fmt: skip
    jobs.run_due(engine, distribution.handlers(load_settings(smtp_port=port)))


def _statuses(engine: Engine) -> list[tuple[str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(invitations.c.status, invitations.c.reason)
            .order_by(invitations.c.created_at, invitations.c.trigger_event_id)
        ).all()  # fmt: skip
    return [(r.status, r.reason) for r in rows]


@pytest.mark.parametrize("address", ["gone@example.com", "spam@example.com"])
def test_hard_bounce_suppresses_later_invitations_to_that_address(
    engine: Engine, refusing: tuple[Refusing, int], address: str
) -> None:
    sink, port = refusing
    with engine.begin() as conn:
        apply(conn)
        cid = add_customer(conn, address)
    _invite_and_send(engine, port, cid, "e1")
    _invite_and_send(engine, port, cid, "e2")  # no fatigue rule would hold it back: 0 days
    assert sink.attempts == {address: 1}
    assert _statuses(engine) == [("failed", "bounced"), ("suppressed", "bounced")]
    with engine.connect() as conn:
        ledger = suppressions.ledger(conn)
        delivery = conn.execute(sa.select(email_deliveries)).mappings().one()
    code = {"gone@example.com": "550 5.1.1", "spam@example.com": "554 5.7.1"}[address]
    assert [(r["customer_id"], r["address"], r["reason"], r["source"], r["status_code"])
            for r in ledger] == [(cid, address, "bounced", "smtp", code)]  # fmt: skip
    assert delivery["status"] == "bounced" and address not in (delivery["error"] or "")
    assert suppressions.per_survey(engine)["delivery_csat"] == {
        "bounced": 1, "suppressed_bounced": 1, "suppressed": 1,
    }  # fmt: skip


def test_a_new_address_is_mailed_after_the_old_one_bounced(
    engine: Engine, refusing: tuple[Refusing, int]
) -> None:
    sink, port = refusing
    with engine.begin() as conn:
        apply(conn)
        cid = _ingest(
            conn,
            {
                "event_id": "i1",
                "type": "identify",
                "user_id": "u-3",
                "email": "gone@example.com",
                "timestamp": "2026-01-10T08:00:00Z",
            },
        )
    _invite_and_send(engine, port, cid, "e1")
    with engine.begin() as conn:
        _ingest(
            conn,
            {
                "event_id": "i2",
                "type": "identify",
                "user_id": "u-3",
                "email": "new@example.com",
                "timestamp": "2026-02-10T08:00:00Z",
            },
        )
    _invite_and_send(engine, port, cid, "e2")
    assert [m["To"] for m in sink.messages] == ["new@example.com"]
    assert _statuses(engine) == [("failed", "bounced"), ("sent", None)]


def test_soft_refusal_is_retried_with_backoff_and_suppresses_nothing(
    engine: Engine, refusing: tuple[Refusing, int]
) -> None:
    _, port = refusing
    now = utcnow()
    with engine.begin() as conn:
        apply(conn)
        cid = add_customer(conn, "busy@example.com")
        distribution.invite(conn, {"survey": "delivery_csat", "customer_id": cid}, now=now)
    jobs.run_due(engine, distribution.handlers(load_settings(smtp_port=port)),
                 now=now + dt.timedelta(seconds=1))  # fmt: skip
    with engine.connect() as conn:
        delivery = conn.execute(sa.select(email_deliveries)).mappings().one()
        retry = conn.execute(
            sa.select(jobs.jobs.c.run_at, jobs.jobs.c.payload)
            .where(jobs.jobs.c.status == "pending")
        ).one()  # fmt: skip
        assert suppressions.ledger(conn) == []
    assert delivery["status"] == "failed" and delivery["error"].startswith("RCPT refused: 450")
    assert retry.payload["attempt"] == 2 and retry.run_at >= now + dt.timedelta(seconds=29)
    assert _statuses(engine) == [("created", None)]


def _dsn(recipient: str, action: str, status: str, original_id: str | None) -> bytes:
    """A delivery status notification as Postfix writes one (RFC 3464)."""
    headers = f"Message-ID: {original_id}\nSubject: How was your delivery?\n" if original_id else ""
    return (
        "From: MAILER-DAEMON@mx.example.net\nTo: no-reply@cxm.local\n"
        f"Subject: Undelivered Mail Returned to Sender\nMessage-ID: <dsn-{status}-{recipient}>\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n"
        "--B\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.example.net\nArrival-Date: Mon, 2 Mar 2026 10:00:00 +0000\n\n"
        f"Final-Recipient: rfc822; {recipient}\nOriginal-Recipient: rfc822;{recipient}\n"
        f"Action: {action}\nStatus: {status}\n"
        f"Diagnostic-Code: smtp; 550 {status} <{recipient}>: unknown user\n\n"
        + (f"--B\nContent-Type: text/rfc822-headers\n\n{headers}\n" if headers else "")
        + "--B--\n"
    ).encode()


def test_bounce_reports_in_the_maildir_count_as_bounces(
    engine: Engine, smtp: tuple[Inbox, int], tmp_path: Any
) -> None:
    import mailbox

    inbox, port = smtp
    box_path = tmp_path / "bounces"
    box = mailbox.Maildir(box_path, create=True)
    settings = load_settings(smtp_port=port, bounce_maildir=str(box_path))
    with engine.begin() as conn:
        apply(conn)
        late = add_customer(conn, "late@example.com")
        by_address = add_customer(conn, "other@example.com")
        slow = add_customer(conn, "slow@example.com")
    for n, cid in enumerate((late, by_address, slow)):
        _invite_and_send(engine, port, cid, f"e{n}")
    assert len(inbox.messages) == 3  # all accepted at send time
    box.add(_dsn("late@example.com", "failed", "5.1.1", inbox.messages[0]["Message-ID"]))
    box.add(_dsn("other@example.com", "failed", "5.2.1", None))  # matched by address
    box.add(_dsn("slow@example.com", "delayed", "4.4.1", inbox.messages[2]["Message-ID"]))
    box.add(_dsn("stranger@example.com", "failed", "5.1.1", None))
    box.add(b"From: someone@example.com\nSubject: out of office\n\nBack on Monday.\n")
    with engine.begin() as conn:
        counts = distribution.read_bounces(conn, settings)
    assert counts == {"read": 5, "not_dsn": 1, "hard_bounces": 2, "soft_or_delayed": 1,
                      "unmatched": 1}  # fmt: skip
    with engine.begin() as conn:  # read once: every message is flagged as seen
        assert distribution.read_bounces(conn, settings)["read"] == 0
        ledger = {r["address"]: (r["source"], r["status_code"]) for r in suppressions.ledger(conn)}
    assert ledger == {"late@example.com": ("dsn", "5.1.1"), "other@example.com": ("dsn", "5.2.1")}
    assert _statuses(engine) == [("failed", "bounced"), ("failed", "bounced"), ("sent", None)]
    _invite_and_send(engine, port, late, "e9")  # held back like a 5xx at send time
    assert len(inbox.messages) == 3 and _statuses(engine)[-1] == ("suppressed", "bounced")


def test_reading_bounces_without_a_maildir_is_refused_with_a_reason(engine: Engine) -> None:
    from cxm.errors import Invalid

    with engine.begin() as conn, pytest.raises(Invalid, match="CXM_BOUNCE_MAILDIR"):
        distribution.read_bounces(conn, load_settings(bounce_maildir=""))
    with engine.begin() as conn, pytest.raises(Invalid, match="not a maildir"):
        distribution.read_bounces(conn, load_settings(bounce_maildir="/nonexistent/box"))


def test_surveys_page_and_cli_show_bounces_and_suppressions_per_survey(
    seeded: Engine, app_client: TestClient, refusing: tuple[Refusing, int],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
) -> None:  # fmt: skip
    import json as jsonlib

    from typer.testing import CliRunner

    from cxm.cli.main import app as cli
    from tests.web.test_pages import as_role

    _, port = refusing
    with seeded.begin() as conn:
        apply(conn)
        cid = add_customer(conn, "gone@example.com")
    _invite_and_send(seeded, port, cid, "e1")
    _invite_and_send(seeded, port, cid, "e2")
    _invite_and_send(seeded, port, cid, "e3")
    page = as_role(app_client, seeded, "cx_lead").get("/surveys")
    assert page.status_code == 200
    assert re.search(r"Bounced: <strong>1</strong> · held back because the address bounced "
                     r"before: <strong>2</strong>", page.text)  # fmt: skip
    monkeypatch.setenv("CXM_DATABASE_URL", str(seeded.url.render_as_string(hide_password=False)))
    monkeypatch.setenv("CXM_DATA_DIR", str(tmp_path))
    listed = CliRunner().invoke(cli, ["surveys", "list", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    row = next(r for r in jsonlib.loads(listed.output) if r["key"] == "delivery_csat")
    assert (row["bounced"], row["suppressed_bounced"]) == (1, 2)
    missing = CliRunner().invoke(cli, ["surveys", "read-bounces", "--maildir", str(tmp_path)])
    assert missing.exit_code == 2 and "not a maildir" in missing.output


def test_the_server_plans_one_bounce_read_per_slot_only_when_a_maildir_is_set(
    engine: Engine, tmp_path: Any
) -> None:
    assert not distribution.schedule_bounce_reads(engine, load_settings(bounce_maildir=""))
    configured = load_settings(bounce_maildir=str(tmp_path))
    planned = [distribution.schedule_bounce_reads(engine, configured) for _ in range(2)]
    assert planned in ([True, False], [True, True])  # a second slot may begin in between
    with engine.connect() as conn:
        assert jobs.pending_count(conn, distribution.READ_BOUNCES) == planned.count(True)


def test_a_bounce_still_holds_after_the_customer_is_merged_with_another_profile(
    engine: Engine, refusing: tuple[Refusing, int]
) -> None:
    sink, port = refusing
    with engine.begin() as conn:
        apply(conn)
        bounced = _ingest(conn, {"event_id": "i1", "type": "identify", "email": "gone@example.com",
                                 "timestamp": "2026-01-10T08:00:00Z"})  # fmt: skip
    _invite_and_send(engine, port, bounced, "e1")
    with engine.begin() as conn:
        _ingest(conn, {"event_id": "i2", "type": "identify", "user_id": "u-77",
                       "timestamp": "2026-02-10T08:00:00Z"})  # fmt: skip
        # The same person logs in with the bounced address: the two profiles merge.
        survivor = _ingest(conn, {"event_id": "i3", "type": "identify", "user_id": "u-77",
                                  "email": "gone@example.com",
                                  "timestamp": "2026-03-10T08:00:00Z"})  # fmt: skip
    _invite_and_send(engine, port, survivor, "e2")
    assert sink.attempts == {"gone@example.com": 1}
    assert _statuses(engine)[-1] == ("suppressed", "bounced")


@given(st.text(max_size=400), st.sampled_from(["failed", "delayed", "", "x"]))
def test_any_message_parses_as_a_dsn_or_as_none_without_raising(body: str, action: str) -> None:
    from email import message_from_string

    from cxm.surveys.bounces import parse_dsn

    raw = (
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        f"--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; x\n\n"
        f"Final-Recipient: rfc822; {body}\nAction: {action}\nStatus: {body[:5]}\n\n--B--\n"
    )
    for message in (message_from_string(body), message_from_string(raw)):
        for rcpt in parse_dsn(message):
            assert rcpt.permanent == (rcpt.action == "failed" and rcpt.status.startswith("5"))


def test_unsubscribes_and_bounces_share_one_ledger(engine: Engine) -> None:
    with engine.begin() as conn:
        apply(conn)
        cid = add_customer(conn, "di@example.com")
        service.unsubscribe(conn, cid, "link")
        service.unsubscribe(conn, cid, "api")  # again: still one row, the latest
        rows = suppressions.ledger(conn)
        result = distribution.invite(conn, {"survey": "delivery_csat", "customer_id": cid})
    assert [(r["customer_id"], r["channel"], r["address"], r["reason"], r["source"])
            for r in rows] == [(cid, "all", None, "unsubscribed", "api")]  # fmt: skip
    assert result == "unsubscribed"


def test_the_migration_carries_earlier_unsubscribes_into_the_ledger(tmp_path: Any) -> None:
    from cxm.store import create_engine, upgrade

    eng = create_engine(f"duckdb:///{tmp_path / 'old.duckdb'}")
    upgrade(eng, "0007")
    old = sa.table("survey_unsubscribes", sa.column("customer_id"), sa.column("source"),
                   sa.column("unsubscribed_at"))  # fmt: skip
    with eng.begin() as conn:
        conn.execute(old.insert().values(customer_id="c1", source="link",
                                         unsubscribed_at=dt.datetime(2026, 1, 2)))  # fmt: skip
    upgrade(eng)
    with eng.connect() as conn:
        assert service.is_unsubscribed(conn, "c1") and not service.is_unsubscribed(conn, "c2")
    eng.dispose()

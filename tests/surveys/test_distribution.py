"""Triggers, contact-fatigue rules and email invitations through a real SMTP server."""

from __future__ import annotations

import datetime as dt
import email
import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.config import load_settings
from cxm.interactions.tables import interactions
from cxm.store import jobs, utcnow
from cxm.surveys import analytics, distribution, service, triggers
from cxm.surveys.tables import email_deliveries, invitations
from tests.surveys.conftest import T0, add_customer, apply


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
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


def test_send_failures_are_recorded_and_retried_with_backoff(engine: Engine) -> None:
    settings = load_settings(smtp_port=_free_port())  # nothing listens there
    now = utcnow()
    with engine.begin() as conn:
        apply(conn)
        cid = add_customer(conn, "cy@example.com")
        distribution.invite(conn, {"survey": "delivery_csat", "customer_id": cid}, now=now)
    jobs.run_due(engine, distribution.handlers(settings), now=now + dt.timedelta(seconds=1))
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

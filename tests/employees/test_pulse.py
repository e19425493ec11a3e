"""Scheduled pulse rounds: every employee invited by email once, one reminder to those who
have not answered, answers landing in the employee's team; through a real SMTP server."""

from __future__ import annotations

import datetime as dt
import email
import re

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.config import load_settings
from cxm.employees import pulse, service
from cxm.employees.tables import pulse_sends
from cxm.errors import Invalid
from cxm.surveys import service as surveys
from tests.actions.conftest import Inbox, smtp_server
from tests.employees.factories import build_org, hire

FIRST = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)
TOKEN = re.compile(r"/s/([A-Za-z0-9_-]{20,})")


@pytest.fixture
def staffed(engine: Engine) -> Engine:
    with engine.begin() as conn:
        build_org(conn)
        hire(conn)
        surveys.apply_templates(conn)
    return engine


def _answer(engine: Engine, token: str, score: int) -> None:
    when = FIRST + dt.timedelta(days=2)
    with engine.begin() as conn:
        s = surveys.session_for_token(conn, token, now=when)
        s = surveys.save_answer(conn, s, "enps", [str(score)], now=when)
        s = surveys.save_answer(conn, s, "tools", ["4"], now=when)
        surveys.save_answer(conn, s, "comment", [""], now=when)


def _token(message: str) -> str:
    text = email.message_from_string(message)
    body = next(p for p in text.walk() if p.get_content_type() == "text/plain")
    found = TOKEN.search(body.get_payload(decode=True).decode())  # type: ignore[union-attr]
    assert found, "the invitation carries no link"
    return found.group(1)


def test_a_round_invites_everyone_once_and_reminds_only_who_did_not_answer(
    staffed: Engine,
) -> None:
    with smtp_server() as (port, inbox):
        settings = load_settings(smtp_port=port, smtp_host="127.0.0.1")
        with staffed.begin() as conn:
            pulse.set_schedule(conn, "employee_pulse", "monthly", FIRST, reminder_days=7)
            early = pulse.run_due(conn, settings, FIRST - dt.timedelta(hours=1))
            first = pulse.run_due(conn, settings, FIRST)
            again = pulse.run_due(conn, settings, FIRST + dt.timedelta(days=1))
        assert early.rounds == 0 and again.rounds == 0 and again.reminded == 0
        assert (first.rounds, first.sent, first.failed) == (1, 23, 0)
        assert len(inbox.messages) == 23
        tokens = {m["to"]: _token(m["data"]) for m in inbox.messages}
        answered = sorted(tokens)[:20]
        for i, address in enumerate(answered):
            _answer(staffed, tokens[address], 9 if i % 2 else 3)
        with staffed.begin() as conn:
            later = pulse.run_due(conn, settings, FIRST + dt.timedelta(days=8))
            twice = pulse.run_due(conn, settings, FIRST + dt.timedelta(days=9))
        assert (later.rounds, later.reminded, twice.reminded) == (0, 3, 0)
        reminded = {m["to"] for m in inbox.messages[23:]}
        assert reminded == set(tokens) - set(answered)
        with staffed.begin() as conn:
            next_round = pulse.run_due(conn, settings, FIRST + dt.timedelta(days=31))
            rounds = conn.execute(sa.select(sa.func.count(sa.distinct(pulse_sends.c.round_at))))
            assert rounds.scalar_one() == 2
        assert next_round.rounds == 1 and next_round.sent == 23
    # The answers are employees' and land in their teams, under the confidentiality rule.
    results = {r.key: r for r in service.pulse_results(staffed, "team")}
    assert sum(r.respondents or 0 for r in results.values() if not r.hidden) <= 20
    assert results["sales_a"].hidden is False


def test_a_customer_survey_cannot_be_scheduled_as_a_pulse(staffed: Engine) -> None:
    with staffed.begin() as conn, pytest.raises(Invalid, match="employee or partner surveys"):
        pulse.set_schedule(conn, "relationship_nps", "monthly", FIRST)
    with staffed.begin() as conn, pytest.raises(Invalid, match="monthly or quarterly"):
        pulse.set_schedule(conn, "employee_pulse", "weekly", FIRST)


def test_quarterly_rounds_move_three_months_and_keep_the_month_end() -> None:
    assert pulse.add_months(dt.datetime(2026, 11, 30, tzinfo=dt.UTC), 3) == dt.datetime(
        2027, 2, 28, tzinfo=dt.UTC
    )
    assert pulse.add_months(dt.datetime(2026, 1, 5, tzinfo=dt.UTC), 12).year == 2027


def test_a_refused_address_is_counted_as_failed_not_sent(staffed: Engine) -> None:
    class Refuse(Inbox):
        async def handle_RCPT(self, server: object, session: object, envelope: object,
                              address: str, options: list[str]) -> str:  # fmt: skip
            return (
                "550 no such user"
                if address.startswith("ops_a-0")
                else await _accept(envelope, address)
            )

    async def _accept(envelope: object, address: str) -> str:
        envelope.rcpt_tos.append(address)  # type: ignore[attr-defined]
        return "250 OK"

    from aiosmtpd.controller import Controller

    from tests.conftest import free_port

    inbox = Refuse()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = load_settings(smtp_port=port, smtp_host="127.0.0.1")
        with staffed.begin() as conn:
            pulse.set_schedule(conn, "employee_pulse", "quarterly", FIRST)
            result = pulse.run_due(conn, settings, FIRST)
    finally:
        controller.stop()
    assert (result.sent, result.failed) == (22, 1)
    assert len(inbox.messages) == 22

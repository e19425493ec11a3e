"""Pulse surveys on a schedule: each round invites every employee (or, for a partner survey,
every partner contact) by email, once, through the
survey machinery (personal invitation links, the survey's email template, the SMTP settings),
and reminds those who have not answered once, ``reminder_days`` later.

The invitation carries the employee id as a hidden field, so an answer lands in the team the
employee belongs to when they answer; results are read only through ``service.pulse_results``
(the confidentiality rule).
"""

from __future__ import annotations

import datetime as dt
import secrets
import smtplib
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cxm.config import Settings
from cxm.employees import partner_pulse
from cxm.employees.tables import (
    employee_teams,
    employees,
    partner_contacts,
    partner_pulse_sends,
    pulse_schedules,
    pulse_sends,
)
from cxm.errors import Invalid
from cxm.mail import classify_failure
from cxm.store import as_utc, utcnow
from cxm.surveys import email
from cxm.surveys.distribution import unsubscribe_link
from cxm.surveys.facts import invitations_table, responses_table
from cxm.surveys.service import create_invitation, get_definition, invitation_link, mark_sent

CADENCES = {"monthly": 1, "quarterly": 3}


@dataclass(frozen=True)
class Schedule:
    survey_key: str
    cadence: str
    reminder_days: int
    next_run_at: dt.datetime


@dataclass
class RunResult:
    rounds: int = 0
    sent: int = 0
    failed: int = 0
    reminded: int = 0

    def line(self) -> str:
        return (f"{self.rounds} round(s): {self.sent} invitations sent, {self.failed} failed, "
                f"{self.reminded} reminders")  # fmt: skip


def add_months(when: dt.datetime, months: int) -> dt.datetime:
    """The same day and time ``months`` later (the last day of a shorter month)."""
    month = when.month - 1 + months
    year, month = when.year + month // 12, month % 12 + 1
    for day in (when.day, 30, 29, 28):
        try:
            return when.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def set_schedule(
    conn: Connection, survey_key: str, cadence: str, first_run: dt.datetime,
    reminder_days: int = 7,
) -> Schedule:  # fmt: skip
    """Send ``survey_key`` (an employee survey, or a partner survey to every partner contact)
    ``cadence`` from ``first_run`` on; replaces an earlier schedule of the same survey.
    Invalid for a customer survey or an unknown cadence."""
    if cadence not in CADENCES:
        raise Invalid(f"cadence: use {' or '.join(CADENCES)}, not {cadence!r}")
    if not 1 <= reminder_days <= 60:
        raise Invalid(f"reminder_days: give 1 to 60 days, not {reminder_days}")
    defn = get_definition(conn, survey_key)
    if defn.kind not in ("employee", "partner"):
        raise Invalid(f"survey '{survey_key}' is a {defn.kind} survey; a pulse schedule sends "
                      "employee or partner surveys (kind: employee or partner) only")  # fmt: skip
    first = as_utc(first_run) or utcnow()
    conn.execute(pulse_schedules.delete().where(pulse_schedules.c.survey_key == survey_key))
    conn.execute(pulse_schedules.insert().values(
        survey_key=survey_key, cadence=cadence, reminder_days=reminder_days, next_run_at=first,
        created_at=utcnow()))  # fmt: skip
    return Schedule(survey_key, cadence, reminder_days, first)


def schedules(conn: Connection) -> list[Schedule]:
    rows = conn.execute(sa.select(pulse_schedules).order_by(pulse_schedules.c.survey_key))
    return [Schedule(r.survey_key, r.cadence, r.reminder_days, r.next_run_at) for r in rows]


def _mail(conn: Connection, settings: Settings, invitation_id: str, token: str, survey: str,
          recipient: str) -> str | None:  # fmt: skip
    """Send one invitation email; the failure's text, or None when sent."""
    defn = get_definition(conn, survey)
    message = email.render(defn, defn.default_language, invitation_link(settings.base_url, token),
                           unsubscribe_link(settings.base_url, token))  # fmt: skip
    try:
        email.send(settings, recipient, message, unsubscribe_link(settings.base_url, token))
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        return classify_failure(exc, recipient).text[:200]
    return None


def _staff(conn: Connection) -> list[tuple[str, str]]:
    """(employee id, email) of everyone now in a team who has an email."""
    q = (
        sa.select(employees.c.employee_id, employees.c.email)
        .join(employee_teams, employee_teams.c.employee_id == employees.c.employee_id)
        .where(employee_teams.c.valid_to.is_(None), employees.c.email.is_not(None))
        .order_by(employees.c.employee_id)
    )
    return [(r.employee_id, r.email) for r in conn.execute(q)]


def run_due(conn: Connection, settings: Settings, now: dt.datetime | None = None) -> RunResult:
    """Start every round that is due (inviting each employee once) and send the one reminder
    of every earlier round whose invitee has not completed the survey and whose link is still
    valid. Safe to call often: a round starts once, a reminder goes once."""
    now = as_utc(now) or utcnow()
    result = RunResult()
    for s in schedules(conn):
        due = as_utc(s.next_run_at)
        assert due is not None
        if due > now:
            continue
        result.rounds += 1
        if _is_partner(conn, s.survey_key):
            _partner_round(conn, settings, s.survey_key, due, now, result)
        else:
            _employee_round(conn, settings, s.survey_key, due, now, result)
        following = add_months(due, CADENCES[s.cadence])
        while following <= now:  # a server that was down does not send the missed rounds
            following = add_months(following, CADENCES[s.cadence])
        conn.execute(pulse_schedules.update().where(pulse_schedules.c.survey_key == s.survey_key)
                     .values(next_run_at=following))  # fmt: skip
    result.reminded = _remind(
        conn, settings, now, pulse_sends, employees,
        (employees.c.employee_id, pulse_sends.c.employee_id),
    ) + _remind(
        conn, settings, now, partner_pulse_sends, partner_contacts,
        (partner_contacts.c.id, partner_pulse_sends.c.contact_id),
    )  # fmt: skip
    return result


def _employee_round(conn: Connection, settings: Settings, survey_key: str, due: dt.datetime,
                    now: dt.datetime, result: RunResult) -> None:  # fmt: skip
    """One round of an employee pulse: one personal invitation to every employee in a team."""
    for employee_id, address in _staff(conn):
        hidden = {"employee_id": employee_id}
        inv_id, error = _invite(conn, settings, survey_key, hidden, address, now, result)
        conn.execute(pulse_sends.insert().values(
            id=secrets.token_hex(16), survey_key=survey_key, round_at=due,
            employee_id=employee_id, invitation_id=inv_id,
            sent_at=now if error is None else None, reminded_at=None, error=error))  # fmt: skip


def _invite(
    conn: Connection,
    settings: Settings,
    survey_key: str,
    hidden: dict[str, Any],
    address: str,
    now: dt.datetime,
    result: RunResult,
) -> tuple[str, str | None]:
    """One personal invitation of a round, mailed and counted in ``result``: its id and the
    mail error (None when sent)."""
    inv = create_invitation(conn, survey_key, channel="email", hidden=hidden, now=now)
    assert inv.token is not None
    error = _mail(conn, settings, inv.id, inv.token, survey_key, address)
    if error is None:
        mark_sent(conn, inv.id, now)
        result.sent += 1
    else:
        result.failed += 1
    return inv.id, error


def _is_partner(conn: Connection, survey_key: str) -> bool:
    return get_definition(conn, survey_key).kind == "partner"


def _partner_round(conn: Connection, settings: Settings, survey_key: str, due: dt.datetime,
                   now: dt.datetime, result: RunResult) -> None:  # fmt: skip
    """One round of a partner pulse: one personal invitation to every partner contact, with
    the contact and their partner as hidden fields."""
    for contact_id, partner_key, address in partner_pulse.recipients(conn):
        hidden = {"contact_id": contact_id, "partner": partner_key}
        inv_id, error = _invite(conn, settings, survey_key, hidden, address, now, result)
        conn.execute(partner_pulse_sends.insert().values(
            id=secrets.token_hex(16), survey_key=survey_key, round_at=due, contact_id=contact_id,
            invitation_id=inv_id, sent_at=now if error is None else None, reminded_at=None,
            error=error))  # fmt: skip


def _remind(
    conn: Connection,
    settings: Settings,
    now: dt.datetime,
    sends: sa.Table,
    people: sa.Table,
    person: tuple[sa.Column[Any], sa.Column[Any]],
) -> int:
    """The one reminder of each pulse round sent to ``people`` (employees, or partner
    contacts) through ``sends``: due ``reminder_days`` after sending, unless answered, expired
    or without an address. ``person``: (the people's id column, the sends' column naming it)."""
    inv, resp = invitations_table, responses_table
    q = (
        sa.select(sends.c.id, sends.c.survey_key, sends.c.sent_at,
                  pulse_schedules.c.reminder_days, inv.c.id.label("invitation_id"), inv.c.token,
                  inv.c.expires_at, people.c.email, resp.c.completed)
        .join(pulse_schedules, pulse_schedules.c.survey_key == sends.c.survey_key)
        .join(inv, inv.c.id == sends.c.invitation_id)
        .join(people, person[0] == person[1])
        .join(resp, resp.c.id == inv.c.response_id, isouter=True)
        .where(sends.c.sent_at.is_not(None), sends.c.reminded_at.is_(None))
    )  # fmt: skip
    reminded = 0
    for r in conn.execute(q).all():
        sent_at, expires = as_utc(r.sent_at), as_utc(r.expires_at)
        assert sent_at is not None
        if r.completed or sent_at + dt.timedelta(days=r.reminder_days) > now:
            continue
        if (expires is not None and expires <= now) or not r.email or not r.token:
            continue
        if _mail(conn, settings, r.invitation_id, r.token, r.survey_key, r.email) is None:
            conn.execute(sends.update().where(sends.c.id == r.id).values(reminded_at=now))
            reminded += 1
    return reminded


def run_scheduled(engine: sa.engine.Engine, settings: Settings) -> RunResult:
    """One pass for the server's periodic loop (its own transaction)."""
    with engine.begin() as conn:
        return run_due(conn, settings)

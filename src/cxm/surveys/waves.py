"""Relationship survey waves: every month or quarter, a sample of the customer base is invited
(stratified by a trait, with quotas), and those who have not answered after the reminder delay
get one reminder with the same link.

A wave is drawn once per survey and period (``survey_waves``' unique pair), reproducibly: the
sample is a seeded draw (the seed is the survey key and the period), so re-planning after a
crash picks the same customers. Every invitation goes through the ordinary invite job, so the
contact-fatigue rules, unsubscribes, erasure and quiet hours apply; the wave's invitations carry
the wave's id as ``trigger_rule_id``, which is how reminders and response rates find them.

Allocation across strata (values of ``quota_trait``; customers without it form their own
stratum "(none)"): explicit ``quotas`` when given; otherwise proportional to the stratum's share
of the eligible base, rounded by the largest-remainder method so the total is exactly the size.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cxm.config import Settings
from cxm.customers import service as customers
from cxm.store import insert_ignore, jobs, utcnow
from cxm.surveys import email, people
from cxm.surveys.schemas import SurveyDefinition, Wave
from cxm.surveys.service import (
    get_definition,
    invitation_link,
    is_unsubscribed,
    list_surveys,
)
from cxm.surveys.tables import invitations, survey_reminders, survey_waves

INVITE = "surveys.invite"
NONE = "(none)"


def period_start(every: str, day: dt.date) -> dt.date:
    """The first day of the month or quarter that holds ``day``."""
    if every == "month":
        return day.replace(day=1)
    return day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1)


def wave_id(survey_key: str, start: dt.date) -> str:
    return "w" + hashlib.sha256(f"{survey_key}:{start}".encode()).hexdigest()[:31]


def allocate(strata: dict[str, int], wave: Wave) -> dict[str, int]:
    """Customers to draw per stratum (never more than it holds).

    Proportional allocation with largest remainders (Hamilton's method) when the wave has no
    explicit quotas; the total is ``size`` or ``ceil(sample * eligible)``, capped by the base.
    """
    eligible = sum(strata.values())
    if wave.quotas:
        return {k: min(strata.get(k, 0), n) for k, n in wave.quotas.items()}
    if eligible == 0:
        return {}
    total = wave.size if wave.size is not None else math.ceil((wave.sample or 0) * eligible)
    total = min(total, eligible)
    exact = {k: total * n / eligible for k, n in strata.items()}
    out = {k: math.floor(v) for k, v in exact.items()}
    rest = total - sum(out.values())
    for k in sorted(exact, key=lambda k: (out[k] - exact[k], k))[:rest]:
        out[k] += 1
    return out


def _eligible(conn: Connection, wave: Wave) -> dict[str, list[str]]:
    """Current, unerased customers with an address for the wave's channel, by stratum."""
    kind = "email" if wave.channel == "email" else "phone"
    ids = customers.reachable(conn, kind)
    strata: dict[str, list[str]] = {}
    values = customers.trait_of(conn, wave.quota_trait, ids) if wave.quota_trait else {}
    for cid in ids:
        strata.setdefault(values.get(cid) or NONE, []).append(cid)
    return strata


def plan(conn: Connection, defn: SurveyDefinition, now: dt.datetime) -> int | None:
    """Plan this period's wave of ``defn`` if it has not gone out; the number of invitations
    planned, or None when the period already has its wave."""
    wave = defn.waves
    assert wave is not None
    start = period_start(wave.every, now.date())
    wid = wave_id(defn.key, start)
    claimed = conn.execute(
        insert_ignore(survey_waves, ["survey_key", "period_start"])
        .values(id=wid, survey_key=defn.key, period_start=start, planned=0, eligible=0,
                created_at=now)
        .returning(survey_waves.c.id)
    ).first()  # fmt: skip
    if claimed is None:
        return None
    strata = _eligible(conn, wave)
    quota = allocate({k: len(v) for k, v in strata.items()}, wave)
    seed = int(hashlib.sha256(wid.encode()).hexdigest()[:16], 16)
    rng = np.random.default_rng(seed)
    chosen: list[tuple[str, str]] = []
    for stratum in sorted(strata):
        members = sorted(strata[stratum])
        n = quota.get(stratum, 0)
        picked: list[int] = sorted(rng.choice(len(members), size=n, replace=False)) if n else []
        chosen += [(members[int(i)], stratum) for i in picked]
    for cid, stratum in chosen:
        payload = {
            "survey": defn.key, "customer_id": cid, "channel": wave.channel,
            "trigger_rule_id": wid, "hidden": {"wave": str(start), "stratum": stratum},
            "dedupe": f"{wid}:{cid}",
        }  # fmt: skip
        jobs.enqueue(conn, INVITE, payload, run_at=now, dedupe_key=f"wave:{wid}:{cid}")
    conn.execute(
        survey_waves.update()
        .where(survey_waves.c.id == wid)
        .values(planned=len(chosen), eligible=sum(len(v) for v in strata.values()))
    )
    return len(chosen)


def plan_due(conn: Connection, now: dt.datetime | None = None) -> dict[str, int]:
    """Plan the waves of every survey that has them and whose current period has none yet."""
    now = now or utcnow()
    planned: dict[str, int] = {}
    for summary in list_surveys(conn):
        defn = get_definition(conn, summary.key)
        if defn.waves is None:
            continue
        n = plan(conn, defn, now)
        if n is not None:
            planned[defn.key] = n
    return planned


def remind_due(conn: Connection, settings: Settings, now: dt.datetime | None = None) -> int:
    """Send the one reminder to every wave invitation sent more than the reminder delay ago
    and still unanswered; returns how many went out. Unsubscribed or erased customers and
    expired invitations get none."""
    now = now or utcnow()
    sent = 0
    waves = conn.execute(sa.select(survey_waves.c.id, survey_waves.c.survey_key)).all()
    for wid, key in waves:
        defn = get_definition(conn, key)
        delay = defn.waves.reminder_seconds() if defn.waves else None
        if delay is None or defn.waves is None or defn.waves.channel != "email":
            continue
        reminded = sa.select(survey_reminders.c.invitation_id)
        due = conn.execute(
            sa.select(invitations)
            .where(
                invitations.c.trigger_rule_id == wid,
                invitations.c.status == "sent",
                invitations.c.response_id.is_(None),
                invitations.c.sent_at <= now - dt.timedelta(seconds=delay),
                invitations.c.expires_at > now,
                invitations.c.id.not_in(reminded),
            )
            .order_by(invitations.c.sent_at)
        ).mappings().all()  # fmt: skip
        for inv in due:
            status = _remind(conn, defn, inv, settings)
            conn.execute(survey_reminders.insert().values(
                invitation_id=inv["id"], status=status, sent_at=now))  # fmt: skip
            sent += status == "sent"
    return sent


def _remind(conn: Connection, defn: SurveyDefinition, inv: Any, settings: Settings) -> str:
    import smtplib

    from cxm.surveys.distribution import unsubscribe_link

    cid = inv["customer_id"]
    if cid is None or is_unsubscribed(conn, cid) or people.erased(conn, cid):
        return "skipped"
    recipient = people.email(conn, cid)
    if not recipient:
        return "skipped"
    language = inv["language"] or defn.default_language
    unsub = unsubscribe_link(settings.base_url, inv["token"])
    message = email.render(defn, language, invitation_link(settings.base_url, inv["token"]), unsub)
    message = email.Rendered(f"Reminder: {message.subject}", message.text, message.html)
    try:
        email.send(settings, recipient, message, unsub)
    except (smtplib.SMTPException, OSError, ValueError):
        return "failed"
    return "sent"


def scan(engine: Any, settings: Settings | None = None) -> dict[str, int]:
    """The periodic task: plan due waves, then send due reminders (each in its transaction)."""
    from cxm.config import load_settings

    with engine.begin() as conn:
        planned = plan_due(conn)
    with engine.begin() as conn:
        reminded = remind_due(conn, settings or load_settings())
    return {"planned": sum(planned.values()), "reminded": reminded}

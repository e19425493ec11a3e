"""Triggers: scan new interactions for survey trigger rules and plan invitations as jobs.

The scan reads the interactions table directly (a read of the append-only log after a stored
watermark); it writes only this domain's tables and the jobs table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cxm.interactions.facts import interactions
from cxm.store import as_utc, jobs, utcnow
from cxm.surveys.distribution import INVITE
from cxm.surveys.tables import trigger_rules, trigger_watermark

# Interactions committed slightly out of order (concurrent ingest) are still seen: the scan
# stops this far behind now.
LAG = dt.timedelta(seconds=2)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def sampled(rule_id: str, event_id: str, rate: float) -> bool:
    """Deterministic sampling: the same interaction gets the same answer on every scan."""
    if rate >= 1.0:
        return True
    digest = hashlib.sha256(f"{rule_id}:{event_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def _matches(rule: Any, row: Any) -> bool:
    if rule.touchpoint_key and rule.touchpoint_key != row.touchpoint_key:
        return False
    props = row.properties or {}
    return all(str(props.get(k)) == str(v) for k, v in (rule.filters or {}).items())


def scan(conn: Connection, now: dt.datetime | None = None, limit: int = 5000) -> int:
    """Plan invitations for interactions received since the last scan; returns how many."""
    now = now or utcnow()
    # In-product triggers are shown by the snippet when the page reports the event
    # (cxm.surveys.inproduct), never planned from the log.
    rules = list(
        conn.execute(sa.select(trigger_rules).where(trigger_rules.c.channel != "in_product"))
    )
    mark = conn.execute(
        sa.select(trigger_watermark).where(trigger_watermark.c.name == "interactions")
    ).first()
    since, after_id = (as_utc(mark.received_at), mark.event_id) if mark else (EPOCH, "")
    assert since is not None
    if not rules:
        return 0
    names = sorted({r.event for r in rules})
    rows = conn.execute(
        sa.select(
            interactions.c.event_id, interactions.c.name, interactions.c.event_time,
            interactions.c.received_at, interactions.c.customer_id, interactions.c.touchpoint_key,
            interactions.c.properties,
        )
        .where(
            interactions.c.name.in_(names),
            interactions.c.received_at <= now - LAG,
            sa.or_(
                interactions.c.received_at > since,
                sa.and_(interactions.c.received_at == since, interactions.c.event_id > after_id),
            ),
        )
        .order_by(interactions.c.received_at, interactions.c.event_id)
        .limit(limit)
    ).all()  # fmt: skip
    planned = 0
    for row in rows:
        for rule in rules:
            if rule.event != row.name or not _matches(rule, row):
                continue
            if not sampled(rule.id, row.event_id, rule.sample_rate):
                continue
            hidden = {
                k: v for k, v in (row.properties or {}).items()
                if isinstance(v, str | int | float | bool)
            }  # fmt: skip
            if row.touchpoint_key:
                hidden["touchpoint"] = row.touchpoint_key
            event_key = row.event_id if len(row.event_id) <= 120 else hashlib.sha256(
                row.event_id.encode()).hexdigest()  # fmt: skip
            dedupe = f"survey-invite:{rule.id}:{event_key}"
            payload = {
                "survey": rule.survey_key, "customer_id": row.customer_id,
                "channel": rule.channel, "touchpoint": row.touchpoint_key,
                "trigger_event_id": row.event_id, "trigger_rule_id": rule.id,
                "hidden": dict(list(hidden.items())[:30]), "dedupe": dedupe,
            }  # fmt: skip
            event_time = as_utc(row.event_time)
            assert event_time is not None
            run_at = event_time + dt.timedelta(seconds=rule.delay_seconds)
            if jobs.enqueue(conn, INVITE, payload, run_at=run_at, dedupe_key=dedupe):
                planned += 1
    if rows:
        last = rows[-1]
        conn.execute(trigger_watermark.delete().where(trigger_watermark.c.name == "interactions"))
        conn.execute(
            trigger_watermark.insert().values(
                name="interactions", received_at=as_utc(last.received_at), event_id=last.event_id
            )
        )
    return planned


def scan_triggers(engine: Engine) -> int:
    """The periodic task: one scan in its own transaction."""
    with engine.begin() as conn:
        return scan(conn)

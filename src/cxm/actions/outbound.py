"""Outgoing webhooks for facts as they arrive (responses, detractors, metric alerts), and the
message bodies of every webhook format: cxm's signed JSON, Slack and Microsoft Teams.

Facts are announced by the periodic scan (:func:`queue_fact_events`), set-based: one anti-join
per hook against the ``webhook_subjects`` ledger finds what the hook has not heard of yet, and the
ledger's primary key keeps a retried or concurrent scan from queueing a fact twice. A hook hears
only of facts that arrived after it was created, so adding a hook never floods the receiver with
history. Delivery is the same durable, retried job as case webhooks (:mod:`cxm.actions.notify`).

Formats follow the receivers' documented incoming-webhook bodies:

- Slack: ``{"text": ..., "blocks": [...]}`` with ``mrkdwn`` section blocks
  (https://api.slack.com/messaging/webhooks).
- Microsoft Teams: a ``message`` with one Adaptive Card 1.4 attachment
  (https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using).
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cxm.actions import titles
from cxm.actions.schemas import FACT_EVENTS
from cxm.actions.tables import webhook_subjects, webhooks
from cxm.errors import NotFound
from cxm.metrics.facts import metric_alerts
from cxm.org import service as org
from cxm.store import as_utc, jobs, utcnow
from cxm.store.bulk import insert_rows
from cxm.surveys import service as surveys
from cxm.surveys.facts import responses_table as responses

# How many new facts one scan queues per hook; the next scan takes the rest.
SCAN_LIMIT = 1000
# A detractor response: NPS 0-6, or CSAT 1-2 on the 1-5 scale, or CES 1-2 on the 1-7 scale
# ("very difficult"), the answers a CX team wants to hear about at once.
DETRACTOR = sa.or_(
    responses.c.nps_category == "detractor",
    responses.c.csat <= 2,
    responses.c.ces <= 2,
)
_RESPONSE_FIELDS = (
    "id",
    "survey_key",
    "customer_id",
    "touchpoint_key",
    "channel",
    "language",
    "submitted_at",
    "nps",
    "nps_category",
    "csat",
    "ces",
    "comment",
)


def _iso(row: Any) -> dict[str, Any]:
    return {
        k: as_utc(v).isoformat() if isinstance(v, dt.datetime) else v  # type: ignore[union-attr]
        for k, v in dict(row).items()
    }


def _hook_job(hook_id: str, kind: str, subject_id: str, event: str) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": secrets.token_hex(16),
        "kind": "actions.webhook",
        "payload": {
            "webhook_id": hook_id,
            "subject_kind": kind,
            "subject_id": subject_id,
            "event": event,
            "attempt": 1,
        },
        "dedupe_key": f"fact-hook:{hook_id}:{kind}:{subject_id}"[:200],
        "status": "pending",
        "attempts": 0,
        "max_attempts": 3,
        "last_error": None,
        "run_at": now,
        "created_at": now,
        "started_at": None,
        "finished_at": None,
    }


def _new_facts(conn: Connection, hook: Any, event: str) -> list[str]:
    since = hook["created_at"]
    if event == "metric_alert":
        a = metric_alerts
        seen = sa.select(webhook_subjects.c.subject_id).where(
            webhook_subjects.c.webhook_id == hook["id"], webhook_subjects.c.subject_kind == "alert"
        )
        query = (
            sa.select(a.c.id)
            .where(a.c.created_at >= since, a.c.id.not_in(seen))
            .order_by(a.c.created_at, a.c.id)
        )
    else:
        r = responses
        seen = sa.select(webhook_subjects.c.subject_id).where(
            webhook_subjects.c.webhook_id == hook["id"],
            webhook_subjects.c.subject_kind == "response",
        )
        query = sa.select(r.c.id).where(
            r.c.completed,
            # Employee pulse answers are confidential: they never leave through a webhook.
            r.c.respondent_kind == "customer",
            r.c.submitted_at >= since,
            r.c.id.not_in(seen),
        )
        if event == "detractor_response":
            query = query.where(DETRACTOR)
        query = query.order_by(r.c.submitted_at, r.c.id)
    return [str(i) for i in conn.execute(query.limit(SCAN_LIMIT)).scalars()]


def queue_fact_events(conn: Connection, now: dt.datetime | None = None) -> int:
    """Queue one delivery job per new fact per hook that asked for its kind; returns how many.

    A hook subscribed to both ``response_submitted`` and ``detractor_response`` hears of each
    response once, as ``response_submitted``. Idempotent: the ledger and the jobs' dedupe keys
    make a second run queue nothing new.
    """
    stamp = now or utcnow()
    queued = 0
    hooks = conn.execute(sa.select(webhooks).where(webhooks.c.active)).mappings().all()
    for hook in hooks:
        wanted = [e for e in FACT_EVENTS if e in (hook["events"] or [])]
        if "response_submitted" in wanted and "detractor_response" in wanted:
            wanted.remove("detractor_response")
        for event in wanted:
            kind = "alert" if event == "metric_alert" else "response"
            ids = _new_facts(conn, hook, event)
            if not ids:
                continue
            ledger = [
                {"webhook_id": hook["id"], "subject_kind": kind, "subject_id": i}
                | {"queued_at": stamp}
                for i in ids
            ]
            insert_rows(conn, webhook_subjects, ledger, ignore=True)
            insert_rows(conn, jobs.jobs, [_hook_job(hook["id"], kind, i, event) for i in ids])
            queued += len(ids)
    return queued


def subject_json(conn: Connection, kind: str, subject_id: str) -> dict[str, Any] | None:
    """The fact a delivery carries, as JSON-ready values; None when it no longer exists."""
    if kind == "response":
        cols = [responses.c[name] for name in _RESPONSE_FIELDS]
        row = conn.execute(sa.select(*cols).where(responses.c.id == subject_id)).mappings().first()
    elif kind == "alert":
        row = (
            conn.execute(sa.select(metric_alerts).where(metric_alerts.c.id == subject_id))
            .mappings()
            .first()
        )
    else:
        raise ValueError(f"unknown webhook subject kind '{kind}'")
    return None if row is None else _iso(row)


def _touchpoint_name(conn: Connection, key: str | None) -> str | None:
    if not key:
        return None
    names = {t.key: t.name for t in org.list_touchpoints(conn)}
    return names.get(key, key)


def _survey_title(conn: Connection, key: str) -> str:
    """The survey's title in its default language (names, not keys); the key if unknown."""
    try:
        defn = surveys.get_definition(conn, key)
    except NotFound:
        return key
    return defn.title.get(defn.default_language) or key


def _score_text(fact: dict[str, Any]) -> str:
    parts = []
    if fact.get("nps") is not None:
        parts.append(f"NPS {fact['nps']}/10 ({fact['nps_category']})")
    if fact.get("csat") is not None:
        parts.append(f"CSAT {fact['csat']}/5")
    if fact.get("ces") is not None:
        parts.append(f"CES {fact['ces']}/7")
    return ", ".join(parts) or "no score"


def summary(
    conn: Connection, kind: str, event: str, fact: dict[str, Any], base_url: str
) -> tuple[str, list[tuple[str, str]], str]:
    """(title, facts as label/value pairs, link) of a fact or a case for a chat message."""
    base = base_url.rstrip("/")
    if kind == "case":
        title = f"{event.replace('_', ' ').capitalize()}: {fact['title']}"
        facts = [
            ("Priority", str(fact.get("priority") or "-")),
            ("Status", str(fact.get("status") or "-")),
            (
                "Team",
                titles.Names(conn).get("team", fact["team_key"])
                if fact.get("team_key")
                else "CX lead queue",
            ),
            ("Resolution due", str(fact.get("resolution_due") or "-")),
        ]
        return title, facts, f"{base}/cases/{fact['id']}"
    if kind == "alert":
        title = (
            f"Metric alert: {titles.metric_label(fact['metric'])} fell from "
            f"{fact['previous_value']:.1f} to {fact['value']:.1f}"
        )
        facts = [
            ("Slice", titles.Names(conn).slice_text(fact["slice"] or "")),
            ("Period", f"{fact['period']} against {fact['previous_period']}"),
            ("Adjusted p", f"{fact['p_adjusted']:.3f}"),
        ]
        return title, facts, f"{base}/dashboards"
    label = "Detractor response" if event == "detractor_response" else "New response"
    title = f"{label}: {_score_text(fact)}"
    facts = [("Survey", _survey_title(conn, str(fact["survey_key"])))]
    touchpoint = _touchpoint_name(conn, fact.get("touchpoint_key"))
    if touchpoint:
        facts.append(("Touchpoint", touchpoint))
    if fact.get("comment"):
        facts.append(("Comment", str(fact["comment"])[:500]))
    link = f"{base}/customers/{fact['customer_id']}" if fact.get("customer_id") else base
    return title, facts, link


def slack_body(title: str, facts: list[tuple[str, str]], link: str) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` (the notification) and mrkdwn blocks."""
    lines = "\n".join(f"*{label}:* {value}" for label, value in facts)
    return {
        "text": title,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*\n{lines}"}},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open in cxm"},
                        "url": link,
                    }
                ],
            },
        ],
    }


def teams_body(title: str, facts: list[tuple[str, str]], link: str) -> dict[str, Any]:
    """A Microsoft Teams incoming-webhook message: one Adaptive Card 1.4 attachment."""
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {"type": "TextBlock", "text": title, "weight": "Bolder", "wrap": True},
                        {
                            "type": "FactSet",
                            "facts": [{"title": label, "value": value} for label, value in facts],
                        },
                    ],
                    "actions": [{"type": "Action.OpenUrl", "title": "Open in cxm", "url": link}],
                },
            }
        ],
    }

"""Invitations another tool sent, recorded from the interaction log's ``survey_sent`` events.

A company that sends surveys from its email platform logs each send as a ``survey_sent``
event (properties: ``{"survey": KEY}``) and imports the answers. ``record_sends`` turns those
events into survey invitations, so the response rate (answered / sent) and the distribution
funnel count them like the invitations cxm sends itself. Each imported response of a
customer is linked to the latest send of that survey to that customer at or before it was
submitted, one response per send. Running it again records only sends it has not seen.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.interactions.facts import interactions
from cxm.store.bulk import insert_rows, update_rows
from cxm.surveys.tables import invitations, responses

SENT = "survey_sent"


def _invitation_id(event_id: str) -> str:
    return hashlib.sha256(f"sent|{event_id}".encode()).hexdigest()[:32]


def record_sends(engine: Engine) -> int:
    """Record the log's ``survey_sent`` events as sent invitations; returns how many were new."""
    survey = interactions.c.properties["survey"].as_string()
    with engine.connect() as conn:
        sends = pd.DataFrame(
            conn.execute(
                sa.select(
                    interactions.c.event_id,
                    interactions.c.customer_id,
                    survey.label("survey"),
                    interactions.c.touchpoint_key,
                    interactions.c.channel,
                    interactions.c.event_time,
                ).where(
                    interactions.c.name == SENT,
                    interactions.c.customer_id.is_not(None),
                    survey.is_not(None),
                )
            ).all(),
            columns=["event_id", "customer_id", "survey", "touchpoint_key", "channel", "at"],
        )
        if sends.empty:
            return 0
        sends["id"] = sends["event_id"].map(_invitation_id)
        known = set(conn.execute(sa.select(invitations.c.id)).scalars())
        sends = sends[~sends["id"].isin(known)]
        taken = set(
            conn.execute(
                sa.select(invitations.c.response_id).where(invitations.c.response_id.is_not(None))
            ).scalars()
        )
        answered = pd.DataFrame(
            conn.execute(
                sa.select(
                    responses.c.id,
                    responses.c.customer_id,
                    responses.c.survey_key,
                    responses.c.submitted_at,
                    responses.c.channel,
                ).where(
                    responses.c.completed,
                    responses.c.customer_id.is_not(None),
                    responses.c.submitted_at.is_not(None),
                )
            ).all(),
            columns=["response_id", "customer_id", "survey", "at", "channel"],
        )
    if sends.empty:
        return 0
    answered = answered[~answered["response_id"].isin(taken)]  # already linked to a send
    sends = sends.sort_values("at", kind="stable")
    linked = pd.merge_asof(
        answered.sort_values("at", kind="stable"), sends[["id", "customer_id", "survey", "at"]],
        on="at", by=["customer_id", "survey"], direction="backward",
    ).dropna(subset=["id"])  # fmt: skip
    # One response per send: the first answer after it.
    linked = linked.drop_duplicates(subset=["id"], keep="first")
    response_of = dict(zip(linked["id"], linked["response_id"], strict=True))
    channel_of = dict(zip(sends["id"], sends["channel"].fillna("email"), strict=True))
    # An answer that came through a send took that send's channel (when it names none itself).
    unnamed = linked[linked["channel"].isna()]
    pairs = zip(unnamed["id"], unnamed["response_id"], strict=True)
    channels = [{"id": rid, "channel": channel_of[sid]} for sid, rid in pairs]
    rows: list[dict[str, Any]] = []
    for r in sends.to_dict("records"):
        at = pd.Timestamp(r["at"]).to_pydatetime()
        rows.append({
            "id": r["id"], "token": None, "survey_key": r["survey"],
            "customer_id": r["customer_id"], "channel": r["channel"] or "email",
            "language": None, "touchpoint_key": r["touchpoint_key"], "trigger_event_id": None,
            "trigger_rule_id": None, "hidden": None, "status": "sent", "reason": None,
            "response_id": response_of.get(r["id"]), "created_at": at, "sent_at": at,
            "opened_at": None, "expires_at": None,
        })  # fmt: skip
    with engine.begin() as conn:
        insert_rows(conn, invitations, rows, ignore=True)
        update_rows(conn, responses, "id", channels)
    return len(rows)

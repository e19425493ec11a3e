"""The distribution funnel per survey and channel, as Ibis expressions over the store."""

from __future__ import annotations

from typing import Any

import ibis
from ibis.backends import BaseBackend
from sqlalchemy.engine import Engine

from cxm.store.analytics import reading
from cxm.surveys.facts import invitations, responses

STAGES = ("invited", "suppressed", "sent", "opened", "started", "completed")
UNLINKED = "import"  # the channel of responses no invitation of cxm's led to


def funnel(source: Engine | BaseBackend, survey: str | None = None) -> list[dict[str, Any]]:
    """The distribution funnel: one dict per survey and channel, oldest survey key first.

    Keys: survey_key, channel, invited, suppressed, sent (invitations with a send time),
    opened, answered (sent invitations whose recipient started a response), started and
    completed (responses, including ones no invitation led to, which are counted under their
    own channel or ``import``), suppressed_by_reason, and response_rate = answered / sent
    (a fraction, 4 decimals; None when nothing was sent). The response rate is the
    ``response_rate`` metric's definition (docs/metrics.md), read from the same invitations.
    """
    with reading(source) as con:
        inv = invitations(con)
        resp = responses(con, population=None)
        if survey is not None:
            inv = inv.filter(inv.survey_key == survey)
            resp = resp.filter(resp.survey_key == survey)
        zero = ibis.literal(0, type="int64")
        one = ibis.literal(1, type="int64")
        linked = resp.select(_rid=resp.id, _done=resp.completed)
        j = inv.left_join(linked, inv.response_id == linked._rid)
        sent = j.sent_at.notnull()
        answered = sent & j.response_id.notnull()
        a = j.select(
            survey_key=j.survey_key.cast("string"),
            channel=j.channel.cast("string"), invited=one,
            suppressed=(j.status == "suppressed").ifelse(one, zero),
            sent=sent.ifelse(one, zero),
            opened=j.opened_at.notnull().ifelse(one, zero),
            answered=answered.ifelse(one, zero),
            started=j._rid.notnull().ifelse(one, zero),
            completed=j._done.fill_null(False).ifelse(one, zero),
        )  # fmt: skip
        # Responses no invitation led to (imports, open links) still count as started.
        unlinked = resp.filter(~resp.id.isin(inv.filter(inv.response_id.notnull()).response_id))
        b = unlinked.select(
            survey_key=unlinked.survey_key.cast("string"),
            channel=unlinked.channel.fill_null(UNLINKED).cast("string"), invited=zero,
            suppressed=zero, sent=zero, opened=zero, answered=zero, started=one,
            completed=unlinked.completed.ifelse(one, zero),
        )  # fmt: skip
        both = a.union(b)
        counts = [*STAGES, "answered"]
        grouped = both.group_by(["survey_key", "channel"]).aggregate(
            **{s: both[s].sum() for s in counts}
        ).order_by(["survey_key", "channel"])  # fmt: skip
        rows: list[dict[str, Any]] = grouped.to_pyarrow().to_pylist()
        held = inv.filter(inv.status == "suppressed")
        reasons = (
            held.group_by(["survey_key", "channel", "reason"])
            .aggregate(n=held.count())
            .to_pyarrow()
            .to_pylist()
        )
    for row in rows:
        for s in counts:
            row[s] = int(row[s] or 0)
        row["suppressed_by_reason"] = {
            r["reason"]: int(r["n"]) for r in reasons
            if r["survey_key"] == row["survey_key"] and r["channel"] == row["channel"]
        }  # fmt: skip
        row["response_rate"] = round(row["answered"] / row["sent"], 4) if row["sent"] else None
    return rows

"""The distribution funnel per survey and channel, as Ibis expressions over the store."""

from __future__ import annotations

from typing import Any

import ibis
from sqlalchemy.engine import Engine

from cxm.store import analytics as backend

STAGES = ("invited", "suppressed", "sent", "opened", "started", "completed")


def funnel(engine: Engine, survey: str | None = None) -> list[dict[str, Any]]:
    """invited, suppressed, sent, opened, started, completed and response rate per channel."""
    con = backend(engine)
    inv = con.table("survey_invitations")
    resp = con.table("responses")
    if survey is not None:
        inv = inv.filter(inv.survey_key == survey)
        resp = resp.filter(resp.survey_key == survey)
    zero = ibis.literal(0, type="int64")
    one = ibis.literal(1, type="int64")
    a = inv.select(
        survey_key=inv.survey_key.cast("string"),
        channel=inv.channel.cast("string"), invited=one,
        suppressed=(inv.status == "suppressed").ifelse(one, zero),
        sent=(inv.status == "sent").ifelse(one, zero),
        opened=inv.opened_at.notnull().ifelse(one, zero), started=zero, completed=zero,
    )  # fmt: skip
    b = resp.select(
        survey_key=resp.survey_key.cast("string"),
        channel=resp.channel.fill_null("import").cast("string"), invited=zero,
        suppressed=zero, sent=zero, opened=zero, started=one,
        completed=resp.completed.ifelse(one, zero),
    )  # fmt: skip
    both = a.union(b)
    grouped = both.group_by(["survey_key", "channel"]).aggregate(
        **{s: both[s].sum() for s in STAGES}
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
        for s in STAGES:
            row[s] = int(row[s] or 0)
        row["suppressed_by_reason"] = {
            r["reason"]: int(r["n"]) for r in reasons
            if r["survey_key"] == row["survey_key"] and r["channel"] == row["channel"]
        }  # fmt: skip
        row["response_rate"] = round(row["completed"] / row["sent"], 4) if row["sent"] else None
    return rows

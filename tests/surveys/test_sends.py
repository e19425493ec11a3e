"""Sends logged by another tool become invitations, linked to the answers that followed."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.interactions import service as interactions
from cxm.metrics import compute
from cxm.surveys.sends import record_sends
from cxm.surveys.tables import invitations, responses

DAY = dt.datetime(2026, 9, 1, 9, tzinfo=dt.UTC)


def _sent(n: int, email: str, survey: str, day: int) -> dict[str, object]:
    at = DAY + dt.timedelta(days=day)
    return {"event_id": f"s{n}", "name": "survey_sent", "email": email,
            "properties": {"survey": survey}, "timestamp": at.isoformat()}  # fmt: skip


def _answer(rid: str, customer_id: str, survey: str, day: float) -> dict[str, object]:
    at = DAY + dt.timedelta(days=day)
    return {"id": rid, "survey_key": survey, "survey_version": 1, "respondent_kind": "customer",
            "customer_id": customer_id, "completed": True, "started_at": at, "submitted_at": at,
            "source": "import"}  # fmt: skip


def test_sends_become_invitations_linked_to_the_next_answer(engine: Engine) -> None:
    with engine.begin() as conn:
        sent = interactions.ingest(conn, [
            _sent(1, "a@x.com", "csat", 0), _sent(2, "a@x.com", "csat", 10),
            _sent(3, "b@x.com", "csat", 2), _sent(4, "b@x.com", "nps", 1),
            _sent(5, "c@x.com", "csat", 2),
        ], "api")  # fmt: skip
        a, b = sent[0].customer_id, sent[2].customer_id
        assert a and b
        conn.execute(responses.insert(), [
            _answer("r1", a, "csat", 0.5),   # answers send 1
            _answer("r2", a, "csat", 12),    # answers send 2 (the latest before it)
            _answer("r3", b, "nps", 3),      # answers send 4, not the later csat send
            _answer("r4", b, "csat", -1),    # before any send: linked to none
        ])  # fmt: skip
    assert record_sends(engine) == 5
    with engine.connect() as conn:
        rows = conn.execute(invitations.select()).mappings().all()
    day = {r["sent_at"]: (r["sent_at"] - DAY).days for r in rows}
    got = {(r["customer_id"], r["survey_key"], day[r["sent_at"]]): r["response_id"] for r in rows}
    c = next(r["customer_id"] for r in rows if r["customer_id"] not in (a, b))
    assert got == {
        (a, "csat", 0): "r1", (a, "csat", 10): "r2", (b, "nps", 1): "r3",
        (b, "csat", 2): None, (c, "csat", 2): None,
    }  # fmt: skip
    assert {r["status"] for r in rows} == {"sent"}
    with engine.connect() as conn:
        channels = dict(conn.execute(sa.select(responses.c.id, responses.c.channel)).all())
    # Answers that came through a send take its channel; the unlinked answer keeps none.
    assert channels == {"r1": "email", "r2": "email", "r3": "email", "r4": None}
    assert record_sends(engine) == 0  # idempotent: nothing new
    rate = compute(engine, "response_rate").iloc[0]
    assert rate["n"] == 5 and rate["flags"] == "below_min_sample"  # 3 of 5, under 30 sends

"""The signals met before each answer and by each customer, on DuckDB and PostgreSQL.

A handful of events and answers at known times, so the expected table is written by hand.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from cxm.customers.facts import customer_traits
from cxm.insights import analytics
from cxm.insights.definitions import load
from cxm.interactions.facts import interactions
from cxm.metrics.definitions import Lifecycle
from cxm.store.analytics import reading
from cxm.surveys.facts import responses_table

SIGNALS = list(load().values())
KEYS = [s.key for s in SIGNALS]
LIFECYCLE = Lifecycle(("invoice_sent",), ("subscription_cancelled",), ("invoice_sent",))


def _event(n: int, customer: str, name: str, touchpoint: str, when: str, **props: Any) -> dict:
    t = dt.datetime.fromisoformat(when).replace(tzinfo=dt.UTC)
    return {
        "event_id": f"e{n}", "type": "track", "name": name, "event_time": t, "received_at": t,
        "customer_id": customer, "touchpoint_key": touchpoint, "properties": props or None,
        "source": "import",
    }  # fmt: skip


def _answer(rid: str, customer: str, when: str, nps: int | None, kind: str = "customer") -> dict:
    t = dt.datetime.fromisoformat(when).replace(tzinfo=dt.UTC)
    return {
        "id": rid, "survey_key": "relationship_nps", "survey_version": 1,
        "respondent_kind": kind, "customer_id": customer, "started_at": t, "submitted_at": t,
        "completed": True, "nps": nps, "csat": None if nps is not None else 4, "source": "import",
    }  # fmt: skip


EVENTS = [
    # a: late delivery 31 days and a repeat contact 12 days before answering; a long wait 212
    # days before (outside the window); a billing error after the answer; then a cancellation.
    _event(1, "a", "invoice_sent", "invoice", "2025-10-01T00:00:00"),
    _event(2, "a", "delivery_late", "delivery", "2026-05-01T12:00:00", late_days=2),
    _event(3, "a", "ticket_opened", "support_chat", "2026-05-20T09:00:00", repeat_of="T-1"),
    _event(4, "a", "ticket_closed", "support_phone", "2025-11-01T09:00:00", wait_minutes=45),
    _event(5, "a", "billing_error", "invoice", "2026-06-02T08:00:00", error="double"),
    _event(6, "a", "subscription_cancelled", "cancellation", "2026-06-03T08:00:00"),
    # b: a long wait; a first contact (no repeat_of, or a JSON null); a wait of exactly 20
    # minutes; a "delivery_late" at another touchpoint; a wait written as text.
    _event(7, "b", "invoice_sent", "invoice", "2026-01-01T00:00:00"),
    _event(8, "b", "ticket_closed", "support_phone", "2026-05-25T10:00:00", wait_minutes=45.5),
    _event(9, "b", "ticket_opened", "support_phone", "2026-05-26T10:00:00", topic="x"),
    _event(10, "b", "ticket_opened", "support_phone", "2026-05-27T10:00:00", repeat_of=None),
    _event(11, "b", "ticket_closed", "support_chat", "2026-05-28T10:00:00", wait_minutes=20),
    _event(12, "b", "delivery_late", "returns", "2026-05-29T10:00:00"),
    _event(13, "b", "ticket_closed", "support_chat", "2026-05-30T10:00:00", wait_minutes="x"),
    _event(14, "b", "invoice_sent", "invoice", "2026-10-01T00:00:00"),
]
ANSWERS = [
    _answer("r1", "a", "2026-06-01T00:00:00", 3),
    _answer("r2", "b", "2026-06-01T00:00:00", 10),
    _answer("r3", "b", "2026-10-01T00:00:00", 8),
    _answer("r4", "b", "2026-06-05T00:00:00", None),  # a CSAT answer: no NPS score
    _answer("r5", "c", "2026-06-05T00:00:00", 9, kind="employee"),
]


def _met(**on: int) -> dict[str, int]:
    return {k: on.get(k, 0) for k in KEYS}


@pytest.fixture
def store(engine: Engine) -> Engine:
    with engine.begin() as conn:
        conn.execute(interactions.insert(), EVENTS)
        conn.execute(responses_table.insert(), ANSWERS)
        now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        conn.execute(customer_traits.insert(), [
            {"customer_id": "a", "name": "segment", "value": "consumer", "set_at": now},
            {"customer_id": "a", "name": "tenure_months", "value": "14", "set_at": now},
            {"customer_id": "b", "name": "segment", "value": "enterprise", "set_at": now},
        ])  # fmt: skip
    return engine


def _rows(frame: Any, key: str) -> dict[str, dict[str, int]]:
    return {r[key]: {k: int(r[k]) for k in KEYS} for r in frame.to_dict("records")}


def test_answer_signals_count_what_was_met_in_the_window_before_each_answer(
    store: Engine,
) -> None:
    with reading(store) as con:
        frame = analytics.answer_signals(con, SIGNALS).execute()
    assert _rows(frame, "response_id") == {
        "r1": _met(late_delivery=1, repeat_contact=1),
        "r2": _met(long_wait=1),
        "r3": _met(long_wait=1),  # 129 days before
    }
    assert dict(zip(frame.response_id, frame.nps, strict=True)) == {"r1": 3, "r2": 10, "r3": 8}


def test_a_shorter_window_forgets_older_signals(store: Engine) -> None:
    with reading(store) as con:
        frame = analytics.answer_signals(con, SIGNALS, window_days=20).execute()
    assert _rows(frame, "response_id")["r1"] == _met(repeat_contact=1)
    assert _rows(frame, "response_id")["r3"] == _met()


def test_customer_signals_stop_at_a_churners_cancellation(store: Engine) -> None:
    with reading(store) as con:
        end = analytics.log_end(con)
        frame = analytics.customer_signals(con, SIGNALS, LIFECYCLE, end, 365).execute()
    assert dict(zip(frame.customer_id, frame.churned, strict=True)) == {"a": 1, "b": 0}
    assert _rows(frame, "customer_id") == {
        "a": _met(late_delivery=1, repeat_contact=1, long_wait=1, billing_error=1),
        "b": _met(long_wait=1),
    }


def test_controls_come_from_traits_and_stay_null_when_absent(store: Engine) -> None:
    with reading(store) as con:
        frame = analytics.with_controls(analytics.answer_signals(con, SIGNALS), con).execute()
    got = {r["response_id"]: (r["segment"], r["tenure_months"]) for r in frame.to_dict("records")}
    assert got["r1"] == ("consumer", "14")
    assert got["r2"][0] == "enterprise"
    assert got["r2"][1] is None or got["r2"][1] != got["r2"][1]  # null (None or NaN)


def test_an_empty_log_is_refused_with_a_message(engine: Engine) -> None:
    from cxm.errors import Invalid

    with reading(engine) as con, pytest.raises(Invalid, match="log is empty"):
        analytics.log_end(con)


def test_a_signal_at_an_unknown_touchpoint_is_refused_naming_the_known_ones(
    seeded: Engine, tmp_path: Path
) -> None:
    from cxm.errors import Invalid
    from cxm.insights import service

    (tmp_path / "signals").mkdir()
    (tmp_path / "signals" / "mine.yaml").write_text(
        "signals:\n  late_delivery:\n    label: Late\n    touchpoints: [courier]\n"
        "    when: name == 'delivery_late'\n"
    )
    with pytest.raises(Invalid, match="touchpoint 'courier', which does not exist; known: "):
        service.attribution(seeded, tmp_path, "nps")


def test_api_says_what_to_do_when_no_signal_is_at_a_touchpoint_of_the_company(
    app_client: Any, read_headers: dict[str, str]
) -> None:
    response = app_client.get("/api/v1/insights/attribution", headers=read_headers)
    assert response.status_code == 422
    assert "define touchpoints ('cxm org apply')" in response.json()["detail"]

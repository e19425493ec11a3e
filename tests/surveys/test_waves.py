"""Relationship waves: stratified samples with quotas, once per period, one reminder."""

from __future__ import annotations

import datetime as dt
import email as email_lib
import json
import math
import re
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from cxm.config import load_settings
from cxm.errors import Invalid
from cxm.store import jobs, utcnow
from cxm.surveys import distribution, waves
from cxm.surveys.schemas import Wave
from cxm.surveys.tables import invitations, survey_reminders
from tests.conftest import migrated_duckdb
from tests.surveys.conftest import add_customer, apply
from tests.surveys.test_distribution import Inbox, smtp  # noqa: F401 - the SMTP fixture

RELATIONSHIP = """\
key: relationship_nps
title: {en: "How likely are you to recommend us?"}
kind: relationship
questions:
  - {id: nps, type: nps, required: true, text: {en: "Would you recommend us?"}}
waves: {every: quarter, size: 9, quota_trait: segment, reminder: 7d}
"""
NOW = dt.datetime(2026, 11, 2, 10, tzinfo=dt.UTC)


@given(
    st.dictionaries(st.sampled_from("abcdefg"), st.integers(0, 500), min_size=1),
    st.integers(1, 2000),
)
def test_proportional_allocation_is_exact_and_within_one_of_each_share(
    strata: dict[str, int], size: int
) -> None:
    quota = waves.allocate(strata, Wave(size=size, quota_trait="segment"))
    eligible = sum(strata.values())
    assert sum(quota.values()) == min(size, eligible)
    for k, n in quota.items():
        exact = min(size, eligible) * strata[k] / eligible
        assert math.floor(exact) <= n <= math.ceil(exact) and n <= strata[k]


def test_explicit_quotas_are_capped_by_the_stratum() -> None:
    wave = Wave(quota_trait="segment", quotas={"business": 5, "consumer": 50})
    assert waves.allocate({"business": 20, "consumer": 10}, wave) == {
        "business": 5,
        "consumer": 10,
    }


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"size": 10, "sample": 0.1}, "a size (customers) or a sample (share), not both"),
        ({}, "a size (customers) or a sample (share), not both"),
        ({"quotas": {"b": 3}}, "quotas need quota_trait"),
        ({"size": 3, "reminder": "next week"}, "is not like 3d or 48h"),
    ],
)
def test_a_wave_that_cannot_be_drawn_is_refused(engine: Engine, fields: dict, message: str) -> None:
    body = ", ".join(f"{k}: {v!r}".replace("'", '"') for k, v in fields.items())
    text = RELATIONSHIP.replace(
        "waves: {every: quarter, size: 9, quota_trait: segment, reminder: 7d}",
        f"waves: {{{body}}}",
    )
    with engine.begin() as conn, pytest.raises(Invalid, match=re.escape(message)):
        apply(conn, text)


def _base(engine: Engine) -> dict[str, str]:
    segments = {}
    with engine.begin() as conn:
        apply(conn, RELATIONSHIP)
        for i in range(30):
            segment = "business" if i < 20 else "consumer"
            cid = add_customer(conn, f"c{i}@example.com", {"segment": segment})
            segments[cid] = segment
        for _ in range(5):  # no email: never in an email wave
            add_customer(conn, None, {"segment": "business"})
    return segments


def test_a_wave_draws_its_quotas_once_per_quarter(engine: Engine) -> None:
    segments = _base(engine)
    with engine.begin() as conn:
        assert waves.plan_due(conn, NOW) == {"relationship_nps": 9}
    with engine.begin() as conn:
        assert waves.plan_due(conn, NOW + dt.timedelta(days=20)) == {}  # same quarter
    jobs.run_due(engine, distribution.handlers(load_settings()), now=NOW, limit=100)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(invitations.c.customer_id, invitations.c.trigger_rule_id)
        ).all()
    assert len(rows) == 9 and {r[1] for r in rows} == {
        waves.wave_id("relationship_nps", dt.date(2026, 10, 1))
    }
    # 20 business and 10 consumer customers with email: 6 and 3 of 9.
    assert Counter(segments[r[0]] for r in rows) == {"business": 6, "consumer": 3}
    with engine.begin() as conn:
        assert waves.plan_due(conn, dt.datetime(2027, 1, 5, tzinfo=dt.UTC)) == {
            "relationship_nps": 9
        }


def test_the_draw_is_reproducible(engine: Engine, tmp_path: Path) -> None:
    other = migrated_duckdb(tmp_path / "other.duckdb")
    picked = []
    for store in (engine, other):
        with store.begin() as conn:
            apply(conn, RELATIONSHIP)
            ids = [add_customer(conn, f"c{i}@example.com", {"segment": "b"}) for i in range(30)]
            rank = {cid: i for i, cid in enumerate(sorted(ids))}
            waves.plan_due(conn, NOW)
            due = conn.execute(sa.text("select payload from jobs")).scalars().all()
        payloads = [p if isinstance(p, dict) else json.loads(p) for p in due]
        picked.append(sorted(rank[p["customer_id"]] for p in payloads))
    other.dispose()
    assert picked[0] == picked[1] and len(picked[0]) == 9


def test_one_reminder_goes_to_those_who_have_not_answered(
    engine: Engine,
    smtp: tuple[Inbox, int],  # noqa: F811
) -> None:
    inbox, port = smtp
    settings = load_settings(smtp_port=port, base_url="http://cxm.test")
    _base(engine)
    now = utcnow()  # the jobs and the sends compare with the real clock
    with engine.begin() as conn:
        waves.plan_due(conn, now)
    handlers = distribution.handlers(settings)
    for _ in range(3):
        jobs.run_due(engine, handlers, now=now + dt.timedelta(minutes=5), limit=100)
    assert len(inbox.messages) == 9
    with engine.begin() as conn:
        first = conn.execute(sa.select(invitations.c.id).limit(1)).scalar_one()
        conn.execute(invitations.update().where(invitations.c.id == first)
                     .values(response_id="r-1"))  # fmt: skip
        assert waves.remind_due(conn, settings, now=now + dt.timedelta(days=6)) == 0
        assert waves.remind_due(conn, settings, now=now + dt.timedelta(days=8)) == 8
        assert waves.remind_due(conn, settings, now=now + dt.timedelta(days=9)) == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(survey_reminders)).scalar() == 8
    reminders = inbox.messages[9:]
    assert len(reminders) == 8
    assert all(str(m["Subject"]).startswith("Reminder: ") for m in reminders)
    assert isinstance(reminders[0], email_lib.message.Message)

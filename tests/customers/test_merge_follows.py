"""A merge of two customers moves every customer-keyed fact to the survivor."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.customers import service as customers
from cxm.interactions import service as interactions
from cxm.metrics import compute
from cxm.surveys import service as surveys
from cxm.surveys.tables import contact_suppressions, invitations, responses, unsubscribes
from tests.metrics import factories as f

T = dt.datetime(2025, 3, 10, 12, tzinfo=dt.UTC)


def _ingest(engine: Engine, **event: object) -> str:
    with engine.begin() as conn:
        (item,) = interactions.ingest(conn, [event], "api")
    assert item.customer_id is not None
    return item.customer_id


def _segments(engine: Engine) -> dict[str, int]:
    df = compute(engine, "nps", by=["segment"])
    return {r["segment"]: r["n"] for r in df.to_dict("records")}


@pytest.fixture
def two_people(engine: Engine) -> tuple[Engine, str, str]:
    """Two profiles of one person: a business customer known by email and by a device."""
    with engine.begin() as conn:
        f.org(conn)
    a = _ingest(engine, event_id="a", type="identify", email="ana@example.com",
                event_time=T, properties={"traits": {"segment": "business"}})  # fmt: skip
    b = _ingest(engine, event_id="b", type="identify", anonymous_id="dev-1",
                event_time=T + dt.timedelta(hours=1),
                properties={"traits": {"segment": "business"}})  # fmt: skip
    assert a != b
    with engine.begin() as conn:
        f.nps_responses(conn, "delivery", [10], customer_id=a)
        f.nps_responses(conn, "delivery", [3], customer_id=b)
        conn.execute(invitations.insert().values(
            id="inv-b", survey_key="relationship", customer_id=b,
            channel="email", token="tok-b", status="sent", created_at=T, sent_at=T,
        ))  # fmt: skip
        surveys.unsubscribe(conn, b, "link", T)
    return engine, a, b


def _merge(engine: Engine) -> None:
    _ingest(engine, event_id="link", name="login", email="ana@example.com", anonymous_id="dev-1",
            event_time=T + dt.timedelta(days=1))  # fmt: skip


def test_slices_by_trait_are_the_same_before_and_after_a_merge(
    two_people: tuple[Engine, str, str],
) -> None:
    engine, _, _ = two_people
    assert _segments(engine) == {"business": 2}
    _merge(engine)
    assert _segments(engine) == {"business": 2}


def test_responses_and_invitations_move_to_the_survivor(
    two_people: tuple[Engine, str, str],
) -> None:
    engine, a, b = two_people
    _merge(engine)
    with engine.connect() as conn:
        assert customers.current_id(conn, b) == a
        owners = conn.execute(sa.select(responses.c.customer_id)).scalars().all()
        assert owners == [a, a]
        invited = conn.execute(sa.select(invitations.c.customer_id)).scalars().all()
        assert invited == [a]


def test_an_unsubscribe_holds_for_the_merged_customer(two_people: tuple[Engine, str, str]) -> None:
    engine, a, _ = two_people
    with engine.connect() as conn:
        assert not surveys.is_unsubscribed(conn, a)
    _merge(engine)
    with engine.connect() as conn:
        assert surveys.is_unsubscribed(conn, a)
        owners = conn.execute(sa.select(contact_suppressions.c.customer_id)).scalars().all()
        assert owners == [a]


def test_when_both_profiles_unsubscribed_the_ledger_keeps_both_on_the_survivor(
    two_people: tuple[Engine, str, str],
) -> None:
    engine, a, _ = two_people
    with engine.begin() as conn:
        surveys.unsubscribe(conn, a, "email", T + dt.timedelta(hours=2))
    _merge(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(contact_suppressions.c.customer_id, contact_suppressions.c.source)
        ).all()
    assert sorted(tuple(r) for r in rows) == [(a, "email"), (a, "link")]


def test_a_keyed_row_moves_only_when_the_survivor_has_none(
    two_people: tuple[Engine, str, str],
) -> None:
    """A table keyed by customer (the older unsubscribe list): the survivor's own row wins."""
    engine, a, b = two_people
    with engine.begin() as conn:
        conn.execute(unsubscribes.insert(), [
            {"customer_id": a, "source": "email", "unsubscribed_at": T},
            {"customer_id": b, "source": "link", "unsubscribed_at": T},
        ])  # fmt: skip
    _merge(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(unsubscribes.c.customer_id, unsubscribes.c.source)).all()
    assert [tuple(r) for r in rows] == [(a, "email")]


def test_every_table_with_a_customer_id_is_followed(engine: Engine) -> None:
    """The list comes from the database, so a table added by any migration is covered."""
    with engine.connect() as conn:
        names = {t.name for t, _ in customers.customer_keyed_tables(conn)}
        expected = set(
            conn.execute(
                sa.text(
                    "SELECT table_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND column_name = 'customer_id'"
                )
            ).scalars()
        ) - {"customer_traits"}
    assert names == expected
    assert {"interactions", "responses", "survey_invitations", "cases"} <= names

"""Device clocks corrected with sentAt, and identity taken only from identity fields."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.customers import service as customers
from cxm.interactions.tables import interactions
from tests.conftest import make_key


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _row(engine: Engine, event_id: str) -> sa.RowMapping:
    with engine.connect() as conn:
        return (
            conn.execute(sa.select(interactions).where(interactions.c.event_id == event_id))
            .mappings()
            .one()
        )


def _off_seconds(stored: dt.datetime, expected: dt.datetime) -> float:
    stored = stored.replace(tzinfo=dt.UTC) if stored.tzinfo is None else stored
    return abs((stored - expected).total_seconds())


@pytest.fixture
def key(seeded: Engine) -> str:
    return make_key(seeded, "ingest")["Authorization"].removeprefix("Bearer ")


@pytest.mark.parametrize(
    "skew",
    [dt.timedelta(hours=3), dt.timedelta(hours=72), dt.timedelta(days=-20_000)],
    ids=["3h-ahead", "72h-ahead", "reset-to-1970"],
)
def test_batch_sent_at_corrects_a_wrong_device_clock(
    app_client: TestClient, seeded: Engine, key: str, skew: dt.timedelta
) -> None:
    now = dt.datetime.now(dt.UTC)
    device_event = now + skew - dt.timedelta(minutes=2)
    body = {
        "batch": [
            {
                "type": "track",
                "event": "Checkout Started",
                "userId": "u-skew",
                "messageId": "skew-1",
                "timestamp": _iso(device_event),
            }
        ],
        "sentAt": _iso(now + skew),
    }
    res = app_client.post("/v1/batch", json=body, auth=(key, ""))
    assert res.status_code == 200 and res.json()["stored"] == 1, res.text
    row = _row(seeded, "skew-1")
    assert _off_seconds(row["event_time"], now - dt.timedelta(minutes=2)) < 30
    assert row["context"]["originalTimestamp"].startswith(device_event.strftime("%Y-%m-%dT%H:%M"))


def test_message_sent_at_wins_over_the_batch_sent_at(
    app_client: TestClient, seeded: Engine, key: str
) -> None:
    now = dt.datetime.now(dt.UTC)
    ahead = now + dt.timedelta(hours=5)
    body = {
        "batch": [
            {
                "type": "track",
                "event": "Viewed",
                "userId": "u-1",
                "messageId": "own-sent",
                "timestamp": _iso(ahead - dt.timedelta(minutes=10)),
                "sentAt": _iso(ahead),
            }
        ],
        "sentAt": _iso(now),
    }
    assert app_client.post("/v1/batch", json=body, auth=(key, "")).status_code == 200
    row = _row(seeded, "own-sent")
    assert _off_seconds(row["event_time"], now - dt.timedelta(minutes=10)) < 30


def test_single_segment_call_with_sent_at_is_corrected(
    app_client: TestClient, seeded: Engine, key: str
) -> None:
    now = dt.datetime.now(dt.UTC)
    ahead = now + dt.timedelta(days=4)
    track = {
        "event": "Opened",
        "userId": "u-2",
        "messageId": "one-sent",
        "timestamp": _iso(ahead - dt.timedelta(hours=1)),
        "sentAt": _iso(ahead),
    }
    assert app_client.post("/v1/track", json=track, auth=(key, "")).status_code == 200
    row = _row(seeded, "one-sent")
    assert _off_seconds(row["event_time"], now - dt.timedelta(hours=1)) < 30


def test_plain_api_sent_at_corrects_single_and_batch_events(
    app_client: TestClient, seeded: Engine, key: str
) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    now = dt.datetime.now(dt.UTC)
    ahead = now + dt.timedelta(hours=30)
    one = {
        "event_id": "p-1",
        "name": "x",
        "timestamp": _iso(ahead - dt.timedelta(minutes=3)),
        "sent_at": _iso(ahead),
    }
    assert app_client.post("/api/v1/interactions", json=one, headers=headers).status_code == 201
    batch = {
        "events": [{"event_id": "p-2", "name": "x", "timestamp": _iso(ahead)}],
        "sent_at": _iso(ahead),
    }
    res = app_client.post("/api/v1/interactions/batch", json=batch, headers=headers)
    assert res.json()["stored"] == 1
    assert _off_seconds(_row(seeded, "p-1")["event_time"], now - dt.timedelta(minutes=3)) < 30
    assert _off_seconds(_row(seeded, "p-2")["event_time"], now) < 30


def test_a_future_timestamp_without_sent_at_is_still_refused(
    app_client: TestClient, key: str
) -> None:
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    track = {"event": "x", "userId": "u", "timestamp": _iso(future)}
    res = app_client.post("/v1/track", json=track, auth=(key, ""))
    assert res.status_code == 400 and "timestamp" in res.json()["detail"]


def test_an_unreadable_sent_at_is_refused_naming_the_field(
    app_client: TestClient, key: str
) -> None:
    track = {"event": "x", "userId": "u", "timestamp": "2026-01-01T00:00:00Z", "sentAt": "soon"}
    res = app_client.post("/v1/track", json=track, auth=(key, ""))
    assert res.status_code == 400 and res.json()["detail"].startswith("sent_at:")


# ---- identity only from identity fields ----


def _customer(engine: Engine, identifier: str) -> str | None:
    with engine.connect() as conn:
        return customers.find(conn, identifier)


def _post_all(client: TestClient, key: str, calls: list[tuple[str, dict[str, object]]]) -> None:
    for path, body in calls:
        res = client.post(f"/v1/{path}", json=body, auth=(key, ""))
        assert res.status_code == 200, res.text


def test_an_email_in_track_properties_never_merges_sender_and_invitee(
    app_client: TestClient, seeded: Engine, key: str
) -> None:
    _post_all(
        app_client,
        key,
        [
            ("identify", {"userId": "u-owner-17", "traits": {"email": "sofia.berg@example.com"}}),
            (
                "track",
                {
                    "userId": "u-owner-17",
                    "event": "Member Invited",
                    "properties": {"email": "tomas.lund@example.com", "phone": "+49 30 1234567"},
                },
            ),
            ("identify", {"userId": "u-member-42", "traits": {"email": "tomas.lund@example.com"}}),
        ],
    )
    sofia, tomas = _customer(seeded, "user_id:u-owner-17"), _customer(seeded, "user_id:u-member-42")
    assert sofia and tomas and sofia != tomas
    with seeded.connect() as conn:
        assert customers.identifiers(conn, sofia) == {
            "email": ["sofia.berg@example.com"],
            "user_id": ["u-owner-17"],
        }
    assert _customer(seeded, "+49301234567") is None
    row = _row_by_name(seeded, "Member Invited")
    assert row["email"] is None and row["properties"]["email"] == "tomas.lund@example.com"


def _row_by_name(engine: Engine, name: str) -> sa.RowMapping:
    with engine.connect() as conn:
        query = sa.select(interactions).where(interactions.c.name == name)
        return conn.execute(query).mappings().one()


def test_group_traits_describe_the_group_and_never_merge_its_members(
    app_client: TestClient, seeded: Engine, key: str
) -> None:
    company = {"name": "Acme", "email": "office@acme.example"}
    _post_all(
        app_client,
        key,
        [
            ("group", {"userId": "u-a", "groupId": "g-acme", "traits": company}),
            ("group", {"userId": "u-b", "groupId": "g-acme", "traits": company}),
        ],
    )
    a, b = _customer(seeded, "user_id:u-a"), _customer(seeded, "user_id:u-b")
    assert a and b and a != b
    assert _customer(seeded, "office@acme.example") is None


def test_context_traits_identify_the_sender_of_a_track_call(
    app_client: TestClient, seeded: Engine, key: str
) -> None:
    _post_all(
        app_client,
        key,
        [
            (
                "track",
                {
                    "anonymousId": "anon-7",
                    "event": "Signed Up",
                    "context": {"traits": {"email": "Nora@Example.com"}},
                    "properties": {"email": "friend@example.com"},
                },
            )
        ],
    )
    nora = _customer(seeded, "nora@example.com")
    assert nora is not None and nora == _customer(seeded, "anonymous_id:anon-7")
    assert _customer(seeded, "friend@example.com") is None

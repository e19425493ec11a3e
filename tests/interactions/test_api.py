"""The ingest API: one, batch, idempotency, clear refusals, auth, Segment compatibility."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.config import load_settings
from cxm.interactions.tables import interactions
from tests.conftest import free_port, make_key


@pytest.fixture
def ingest_headers(seeded: Engine) -> dict[str, str]:
    return make_key(seeded, "ingest")


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(interactions)).scalar_one()


def test_one_event_is_stored_once(
    app_client: TestClient, ingest_headers: dict[str, str], seeded: Engine
) -> None:
    event = {
        "event_id": "o-1",
        "name": "order_placed",
        "email": "ana@example.com",
        "touchpoint": "webshop_checkout",
        "properties": {"revenue": 42.5},
    }
    first = app_client.post("/api/v1/interactions", json=event, headers=ingest_headers)
    again = app_client.post("/api/v1/interactions", json=event, headers=ingest_headers)
    assert (first.status_code, first.json()["status"]) == (201, "stored")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert _count(seeded) == 1
    with seeded.connect() as conn:
        row = conn.execute(sa.select(interactions)).mappings().one()
    assert row["revenue"] == 42.5 and row["source"] == "api"


def test_batch_reports_each_item(
    app_client: TestClient, ingest_headers: dict[str, str], seeded: Engine
) -> None:
    events = [
        {"event_id": "b-1", "name": "login", "user_id": "u1"},
        {"event_id": "b-1", "name": "login", "user_id": "u1"},
        {"event_id": "b-2", "name": "login", "timestamp": "yesterday"},
        {"event_id": "b-3", "type": "purchase", "name": "x"},
        {"event_id": "b-4", "name": "login", "email": 12.5},
    ]
    res = app_client.post(
        "/api/v1/interactions/batch", json={"events": events}, headers=ingest_headers
    )
    body = res.json()
    assert res.status_code == 200
    assert (body["stored"], body["duplicates"], body["rejected"]) == (1, 1, 3)
    errors = {i["event_id"]: i["error"] for i in body["items"] if i["status"] == "rejected"}
    assert errors["b-2"].startswith("timestamp:")
    assert errors["b-3"].startswith("type:")
    assert errors["b-4"].startswith("email:")
    assert _count(seeded) == 1


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "malformed JSON"),
        (b'{"events": {}}', 422, "events: expected a JSON array"),
        (json.dumps({"events": [{"name": "x"}] * 1001}).encode(), 413, "limit is 1000"),
    ],
)
def test_bad_bodies_are_refused_and_nothing_is_written(
    app_client: TestClient,
    ingest_headers: dict[str, str],
    seeded: Engine,
    body: bytes,
    status: int,
    needle: str,
) -> None:
    res = app_client.post(
        "/api/v1/interactions/batch",
        content=body,
        headers={**ingest_headers, "content-type": "application/json"},
    )
    assert res.status_code == status
    assert needle in res.json()["detail"]
    assert _count(seeded) == 0


def test_oversized_body_is_refused(
    app_client: TestClient, ingest_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CXM_INGEST_MAX_BYTES", "100")
    res = app_client.post("/api/v1/interactions", json={"name": "x" * 200}, headers=ingest_headers)
    assert res.status_code == 413 and "100 bytes" in res.json()["detail"]


def test_keys_missing_wrong_and_out_of_scope(
    app_client: TestClient, read_headers: dict[str, str]
) -> None:
    event = {"name": "login", "user_id": "u1"}
    assert app_client.post("/api/v1/interactions", json=event).status_code == 401
    wrong = {"Authorization": "Bearer cxm_wrong"}
    assert app_client.post("/api/v1/interactions", json=event, headers=wrong).status_code == 401
    res = app_client.post("/api/v1/interactions", json=event, headers=read_headers)
    assert res.status_code == 403


def test_unknown_touchpoint_is_kept_and_listed_unowned(
    app_client: TestClient, ingest_headers: dict[str, str], read_headers: dict[str, str]
) -> None:
    event = {"name": "kiosk_scan", "user_id": "u1", "touchpoint": "kiosk_lobby"}
    assert (
        app_client.post("/api/v1/interactions", json=event, headers=ingest_headers).status_code
        == 201
    )
    unowned = app_client.get("/api/v1/interactions/touchpoints/unowned", headers=read_headers)
    assert "kiosk_lobby" in unowned.json()


def test_segment_endpoints_with_basic_auth_and_write_key(
    app_client: TestClient, ingest_headers: dict[str, str], seeded: Engine
) -> None:
    key = ingest_headers["Authorization"].removeprefix("Bearer ")
    track = {
        "messageId": "seg-1",
        "userId": "u-5",
        "event": "Order Completed",
        "properties": {"revenue": 10},
        "timestamp": "2026-01-02T03:04:05Z",
    }
    res = app_client.post("/v1/track", json=track, auth=(key, ""))
    assert res.status_code == 200 and res.json()["stored"] == 1
    ident = {
        "messageId": "seg-2",
        "userId": "u-5",
        "traits": {"email": "Five@Example.com", "plan": "gold"},
        "writeKey": key,
    }
    assert app_client.post("/v1/identify", json=ident).status_code == 200
    assert app_client.post("/v1/track", json=track).status_code == 401
    with seeded.connect() as conn:
        rows = (
            conn.execute(sa.select(interactions).order_by(interactions.c.event_id)).mappings().all()
        )
    assert [(r["event_id"], r["name"], r["source"]) for r in rows] == [
        ("seg-1", "Order Completed", "segment"),
        ("seg-2", None, "segment"),
    ]
    assert rows[1]["email"] == "five@example.com"
    assert rows[0]["customer_id"] == rows[1]["customer_id"]


@pytest.fixture
def live_server(duckdb_engine: Engine, tmp_path: object) -> Iterator[str]:
    from cxm.web.app import create_app

    port = free_port()
    app = create_app(
        load_settings(database_url=str(duckdb_engine.url)), engine=duckdb_engine, run_worker=False
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_the_segment_python_sdk_delivers_events(live_server: str, duckdb_engine: Engine) -> None:
    import segment.analytics as analytics

    key = make_key(duckdb_engine, "ingest")["Authorization"].removeprefix("Bearer ")
    failures: list[Exception] = []
    client = analytics.Client(
        write_key=key,
        host=live_server,
        sync_mode=True,
        on_error=lambda e, _batch: failures.append(e),
    )
    client.identify("sdk-user", {"email": "sdk@example.com", "name": "Sam"})
    client.track("sdk-user", "Checkout Started", {"revenue": 19.99, "touchpoint": "webshop"})
    client.page("sdk-user", "Docs", "Getting started", {"url": "https://example.com/docs"})
    client.alias("anon-sdk", "sdk-user")
    client.flush()
    assert failures == []
    with duckdb_engine.connect() as conn:
        rows = conn.execute(sa.select(interactions)).mappings().all()
    by_type = {r["type"]: r for r in rows}
    assert set(by_type) == {"identify", "track", "page", "alias"}
    assert by_type["track"]["name"] == "Checkout Started"
    assert by_type["track"]["revenue"] == 19.99
    assert by_type["track"]["touchpoint_key"] == "webshop"
    assert by_type["identify"]["email"] == "sdk@example.com"
    assert len({r["customer_id"] for r in rows}) == 1


def test_ingest_answers_never_name_a_customer(
    app_client: TestClient, ingest_headers: dict[str, str]
) -> None:
    event = {"event_id": "k-1", "name": "login", "email": "known@example.com"}
    app_client.post("/api/v1/interactions", json=event, headers=ingest_headers)
    again = {"event_id": "k-2", "name": "login", "email": "known@example.com"}
    one = app_client.post("/api/v1/interactions", json=again, headers=ingest_headers)
    batch = app_client.post(
        "/api/v1/interactions/batch",
        json={"events": [{**again, "event_id": "k-3"}]},
        headers=ingest_headers,
    )
    assert one.status_code == 201 and one.json().get("customer_id") is None
    assert all(item.get("customer_id") is None for item in batch.json()["items"])

"""Limits on ingest bodies: size after decompression, nesting depth, values the store refuses."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from cxm.config import load_settings
from cxm.interactions import limits
from cxm.interactions.groupcommit import GroupCommitter
from cxm.interactions.tables import interactions
from tests.conftest import make_key

SEGMENT_ROUTES = [f"/v1/{k}" for k in ("track", "identify", "page", "screen", "group", "alias")]
ROUTES = [*SEGMENT_ROUTES, "/v1/batch", "/api/v1/interactions", "/api/v1/interactions/batch"]
DEEP = b'{"event": "x", "properties": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


@pytest.fixture
def live_app(seeded: Engine) -> Iterator[tuple[str, Engine]]:
    """The real app under uvicorn on a free port, over the parametrized store."""
    from cxm.web.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    app = create_app(load_settings(database_url=str(seeded.url)), engine=seeded, run_worker=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", seeded
    server.should_exit = True
    thread.join(10)


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(interactions)).scalar_one()


@pytest.fixture
def ingest_headers(seeded: Engine) -> dict[str, str]:
    return make_key(seeded, "ingest")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("with_key", [True, False], ids=["with-key", "without-key"])
def test_json_nested_100000_deep_answers_400_on_every_ingest_route(
    app_client: TestClient, ingest_headers: dict[str, str], route: str, with_key: bool
) -> None:
    headers = {**(ingest_headers if with_key else {}), "content-type": "application/json"}
    res = app_client.post(route, content=DEEP, headers=headers)
    if not with_key and route.startswith("/api/"):
        assert res.status_code == 401  # the key is checked before the body is read
        return
    # Segment routes read the body first (the write key may be in it).
    assert res.status_code == 400, res.text
    assert "nested deeper than 64 levels" in res.json()["detail"]


def test_nesting_at_the_limit_is_accepted_and_one_past_it_refused(
    app_client: TestClient, ingest_headers: dict[str, str], seeded: Engine
) -> None:
    def event(depth: int, event_id: str) -> bytes:
        # The event object is level 1, properties level 2, then depth - 2 nested lists.
        inner = "[" * (depth - 2) + "]" * (depth - 2)
        return f'{{"event_id": "{event_id}", "name": "x", "properties": {{"a": {inner}}}}}'.encode()

    headers = {**ingest_headers, "content-type": "application/json"}
    ok = app_client.post("/api/v1/interactions", content=event(64, "d-64"), headers=headers)
    deep = app_client.post("/api/v1/interactions", content=event(65, "d-65"), headers=headers)
    assert ok.status_code == 201, ok.text
    assert deep.status_code == 400 and "column" in deep.json()["detail"]
    assert _count(seeded) == 1


def test_brackets_inside_strings_do_not_count_as_nesting(
    app_client: TestClient, ingest_headers: dict[str, str]
) -> None:
    event = {"name": "x", "properties": {"note": "[" * 500 + '\\"{' * 100}}
    res = app_client.post("/api/v1/interactions", json=event, headers=ingest_headers)
    assert res.status_code == 201, res.text


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compression_bomb_is_refused_by_its_decompressed_size(
    app_client: TestClient,
    ingest_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    seeded: Engine,
    encoding: str,
) -> None:
    monkeypatch.setenv("CXM_INGEST_MAX_BYTES", "100000")
    payload = json.dumps({"events": [{"name": "x", "properties": {"p": " " * 1_000_000}}]})
    packed = (
        gzip.compress(payload.encode()) if encoding == "gzip" else zlib.compress(payload.encode())
    )
    assert len(packed) < 100_000
    res = app_client.post(
        "/api/v1/interactions/batch",
        content=packed,
        headers={
            **ingest_headers,
            "content-type": "application/json",
            "content-encoding": encoding,
        },
    )
    assert res.status_code == 413 and "once decompressed" in res.json()["detail"]
    assert _count(seeded) == 0


def test_a_gzip_body_within_the_limit_is_stored(
    app_client: TestClient, ingest_headers: dict[str, str], seeded: Engine
) -> None:
    body = gzip.compress(json.dumps({"batch": [{"event": "x", "userId": "u"}]}).encode())
    key = ingest_headers["Authorization"].removeprefix("Bearer ")
    res = app_client.post(
        "/v1/batch",
        content=body,
        auth=(key, ""),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert res.status_code == 200 and res.json()["stored"] == 1
    assert _count(seeded) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"name": "x", "properties": {"score": NaN}}', "properties.score"),
        (b'{"name": "x", "properties": {"a": [1, Infinity]}}', "properties.a[1]"),
        (b'{"name": "x", "context": {"v": -Infinity}}', "context.v"),
        (b'{"name": "x", "properties": {"big": 1e400}}', "properties.big"),
    ],
)
def test_nan_and_infinity_are_refused_naming_the_field(
    app_client: TestClient, ingest_headers: dict[str, str], seeded: Engine, body: bytes, field: str
) -> None:
    headers = {**ingest_headers, "content-type": "application/json"}
    res = app_client.post("/api/v1/interactions", content=body, headers=headers)
    assert res.status_code == 422, res.text
    assert res.json()["detail"].startswith(f"{field}:")
    assert _count(seeded) == 0


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"name": "a\ud800b"}, "name"),
        ({"event_id": "a\ud800b", "name": "x"}, "event_id"),
        ({"name": "x", "timestamp": "a\udc00"}, "timestamp"),
        ({"name": "x", "properties": {"note": "a\ud800b"}}, "properties.note"),
        ({"name": "x", "properties": {"note": "nul\x00here"}}, "properties.note"),
        ({"name": "x", "user_id": "u\x00"}, "user_id"),
        ({"name": "x", "context": {"k\udfff": 1}}, "context (a key)"),
    ],
)
def test_values_no_store_can_hold_are_refused_alone(
    app_client: TestClient,
    ingest_headers: dict[str, str],
    seeded: Engine,
    event: dict[str, object],
    field: str,
) -> None:
    body = json.dumps({"events": [event, {"event_id": "fine", "name": "ok"}]})
    res = app_client.post(
        "/api/v1/interactions/batch",
        content=body.encode(),
        headers={**ingest_headers, "content-type": "application/json"},
    )
    items = res.json()["items"]
    assert items[0]["status"] == "rejected" and items[0]["error"].startswith(f"{field}:")
    assert items[1]["status"] == "stored"
    one = app_client.post(
        "/api/v1/interactions",
        content=json.dumps(event).encode(),
        headers={**ingest_headers, "content-type": "application/json"},
    )
    assert one.status_code == 422 and one.json()["detail"].startswith(f"{field}:")


def test_a_lone_surrogate_fails_alone_among_concurrent_clients(
    live_app: tuple[str, Engine],
) -> None:
    base, engine = live_app
    headers = {**make_key(engine, "ingest"), "content-type": "application/json"}
    bad = json.dumps({"name": "x", "properties": {"t": "a\ud800b"}}).encode()

    def send(n: int) -> int:
        body = bad if n % 10 == 0 else json.dumps({"event_id": f"ok-{n}", "name": "x"}).encode()
        with httpx.Client(base_url=base, timeout=60) as client:
            return client.post("/api/v1/interactions", content=body, headers=headers).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(send, range(110)))
    assert [c for n, c in enumerate(codes) if n % 10 == 0] == [422] * 11
    assert [c for n, c in enumerate(codes) if n % 10] == [201] * 99
    assert _count(engine) == 99


@pytest.mark.postgres
def test_a_value_the_store_refuses_fails_only_its_own_event(
    _postgres_engine: Engine,
) -> None:
    """A store-side refusal that validation cannot foresee (here a CHECK constraint) rejects
    the one event; the other submissions of the same group commit are stored."""
    from tests.conftest import _clean

    _clean(_postgres_engine)
    with _postgres_engine.begin() as conn:
        conn.execute(
            sa.text("ALTER TABLE interactions ADD CONSTRAINT no_poison CHECK (name <> 'poison')")
        )
    try:
        committer = GroupCommitter(_postgres_engine)
        futures = [
            committer.submit([{"event_id": f"g-{n}", "name": "fine"}], "api") for n in range(20)
        ]
        futures.insert(
            5,
            committer.submit(
                [{"event_id": "p", "name": "poison"}, {"event_id": "q", "name": "fine"}], "api"
            ),
        )
        answers = [f.result(timeout=60) for f in futures]
        poisoned = answers.pop(5)
        assert [r.status for r in poisoned] == ["rejected", "stored"]
        assert "refused" in (poisoned[0].error or "")
        assert all(a[0].status == "stored" for a in answers)
        assert _count(_postgres_engine) == 21
    finally:
        with _postgres_engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE interactions DROP CONSTRAINT no_poison"))


# ---- the depth scan, against Python's own parser ----

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\n\t'),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\ab'), inner, max_size=3)
    ),
    max_leaves=30,
)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(_json, st.integers(min_value=0, max_value=8))
def test_depth_scan_agrees_with_the_parsed_depth(value: object, limit: int) -> None:
    text = json.dumps(value).encode()
    assert (limits.too_deep(text, limit) is None) == (_depth(value) <= limit)


@settings(max_examples=200, deadline=None)
@given(st.lists(_json, min_size=1, max_size=5), st.integers(min_value=0, max_value=6))
def test_depth_scan_of_json_lines_restarts_at_each_line(values: list[object], limit: int) -> None:
    text = "\n".join(json.dumps(v) for v in values).encode()
    assert (limits.too_deep(text, limit, per_line=True) is None) == (
        max(_depth(v) for v in values) <= limit
    )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_loads_never_raises_anything_but_a_refusal(data: bytes) -> None:
    try:
        limits.loads(data, limit=4)
    except limits.Refused as exc:
        assert exc.status in (400, 422)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"name": "x", "revenue": 1' + b"0" * 400 + b"}", "revenue"),
        (b'{"name": "x", "properties": {"amount": 1' + b"0" * 400 + b"}}", "revenue"),
        (b'{"name": "x", "properties": {"n": 1' + b"0" * 5000 + b"}}", "body"),
        (
            b'{"name": "x", "timestamp": "9999-12-31T23:59:59Z", '
            b'"sent_at": "0001-01-01T00:00:00Z"}',
            "timestamp",
        ),
        (
            b'{"name": "x", "timestamp": "2026-01-01T00:00:00Z", '
            b'"sent_at": "0001-01-01T00:00:00+14:00"}',
            "sent_at",
        ),
    ],
    ids=["huge-revenue", "huge-amount", "5000-digits", "clock-overflow", "sent-at-overflow"],
)
def test_numbers_and_times_out_of_range_are_refused_naming_the_field(
    app_client: TestClient, ingest_headers: dict[str, str], seeded: Engine, body: bytes, field: str
) -> None:
    headers = {**ingest_headers, "content-type": "application/json"}
    res = app_client.post("/api/v1/interactions", content=body, headers=headers)
    assert res.status_code == 422, res.text
    assert res.json()["detail"].startswith(f"{field}:")
    assert _count(seeded) == 0


_FIELDS = ["event_id", "type", "name", "timestamp", "sent_at", "user_id", "email", "phone",
           "crm_id", "touchpoint", "channel", "properties", "context", "traits", "revenue",
           "external_ids", "userId", "event", "messageId", "sentAt", "anonymousId"]  # fmt: skip
_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["2026-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "a\ud800b", "x\x00"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.dictionaries(st.sampled_from(_FIELDS) | st.text(max_size=6), _values, max_size=6),
    st.sampled_from(["/api/v1/interactions", "/v1/track", "/v1/identify", "/v1/batch"]),
)
def test_no_event_body_gets_a_server_error(
    app_client: TestClient, ingest_headers: dict[str, str], event: dict[str, object], route: str
) -> None:
    body = {"batch": [event], "sentAt": event.get("sentAt")} if route == "/v1/batch" else event
    res = app_client.post(
        route,
        content=json.dumps(body).encode(),
        headers={**ingest_headers, "content-type": "application/json"},
    )
    assert res.status_code < 500, res.text


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.text(st.sampled_from(["a", "\x00", "\ud800", "\udfff", "\U0001f600", "\\", "u"]))
        | st.text()
        | st.integers()
        | st.none(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=12,
    ),
    st.booleans(),
    st.sampled_from(["utf-8", "utf-16", "utf-32-le"]),
)
def test_a_body_passed_as_storable_parses_to_storable_text_only(
    value: object, ascii_only: bool, encoding: str
) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only).encode(encoding, "surrogatepass")
    if not limits.storable_json(raw):
        return
    try:
        parsed = limits.loads(raw)
    except limits.Refused:
        return
    for text in _strings(parsed):
        limits.check_text(text, "field")  # raises for a NUL or a lone surrogate

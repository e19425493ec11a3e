"""Theme discovery is a durable job: POST answers 202 at once, the job resource reports state
and progress, and holds the themes once the worker has run it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.org import auth
from cxm.org import service as org
from cxm.store import jobs
from cxm.text import jobs as text_jobs
from cxm.yamldoc import parse
from tests.conftest import make_key
from tests.web.factories import ORG, add_responses

COMMENTS = [
    "the parcel arrived two days late and the box was damaged",
    "delivery was late again and nobody called me",
    "the courier left my package in the rain",
    "I was charged twice for the same order",
    "the invoice shows a fee I did not expect",
    "still waiting for my refund after three weeks",
    "the support agent was friendly and solved it quickly",
    "great help from the chat team, very patient",
    "the agent on the phone was kind and helpful",
]


@pytest.fixture
def commented(seeded: Engine) -> Engine:
    with seeded.begin() as conn:
        org.apply_org(conn, parse(ORG))
    for i, comment in enumerate(COMMENTS):
        touchpoint = ("delivery", "invoice", "support_chat")[i // 3]
        add_responses(seeded, touchpoint, [3, 8, 10], comment=comment)
    return seeded


def _start(client: TestClient, headers: dict[str, str]) -> dict[str, object]:
    response = client.post(
        "/api/v1/text/themes/discover", json={"vectors": "tfidf", "k": 3}, headers=headers
    )
    assert response.status_code == 202
    job: dict[str, object] = response.json()
    assert response.headers["location"] == job["url"]
    return job


def test_discovery_answers_202_with_a_job_and_the_job_holds_the_themes_when_done(
    app_client: TestClient, commented: Engine, read_headers: dict[str, str]
) -> None:
    job = _start(app_client, read_headers)
    assert job["state"] == "pending" and job["result"] is None
    polled = app_client.get(str(job["url"]), headers=read_headers).json()
    assert polled["state"] == "pending"

    assert jobs.run_due(commented, text_jobs.handlers) >= 1

    done = app_client.get(str(job["url"]), headers=read_headers)
    assert done.status_code == 200
    body = done.json()
    assert body["state"] == "done"
    assert body["progress"] == {"stage": "done", "done": 3, "total": 3}
    result = body["result"]
    assert result["texts"] == len(COMMENTS) * 3 and len(result["themes"]) == 3
    assert sum(t["size"] for t in result["themes"]) == len(COMMENTS) * 3


def test_a_discovery_that_cannot_run_fails_with_the_reason(
    app_client: TestClient, seeded: Engine, read_headers: dict[str, str]
) -> None:
    job = _start(app_client, read_headers)  # no comments at all
    jobs.run_due(seeded, text_jobs.handlers)
    body = app_client.get(str(job["url"]), headers=read_headers).json()
    assert body["state"] == "failed" and body["result"] is None
    assert "at least 3 distinct texts" in body["error"]


def test_a_discovery_job_is_readable_only_by_the_caller_who_started_it(
    app_client: TestClient, seeded: Engine, read_headers: dict[str, str]
) -> None:
    job = _start(app_client, read_headers)
    with seeded.begin() as conn:
        viewer = auth.create_user(conn, "viewer@example.com", "viewer")
        token = auth.create_api_key(conn, "read", user_id=viewer)
    other = app_client.get(str(job["url"]), headers={"Authorization": f"Bearer {token}"})
    assert other.status_code == 404
    unknown = app_client.get("/api/v1/text/themes/discover/nope", headers=read_headers)
    assert unknown.status_code == 404
    ingest = make_key(seeded, "ingest")
    refused = app_client.post("/api/v1/text/themes/discover", json={}, headers=ingest)
    assert refused.status_code == 403


def test_an_unknown_period_is_refused_before_a_job_is_queued(
    app_client: TestClient, seeded: Engine, read_headers: dict[str, str]
) -> None:
    response = app_client.post(
        "/api/v1/text/themes/discover", json={"period": "last spring"}, headers=read_headers
    )
    assert response.status_code == 422
    with seeded.connect() as conn:
        assert jobs.pending_count(conn, text_jobs.DISCOVER) == 0

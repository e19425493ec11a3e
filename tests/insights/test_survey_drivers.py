"""Survey attributes as key drivers: a survey's other rated questions ("How satisfied are you
with the delivery speed?") weighed beside the signals and themes, checked on a survey built
here with a planted relation against the brute-force Shapley decomposition of R²."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.insights import service
from cxm.insights.drivers import shapley_r2
from cxm.org import service as org
from cxm.surveys import service as surveys
from cxm.surveys.tables import response_answers, responses
from cxm.yamldoc import parse
from tests.web.factories import ORG

SURVEY = {
    "key": "delivery_check", "name": "Delivery check", "title": {"en": "Your delivery"},
    "kind": "relationship", "languages": ["en"], "default_language": "en",
    "questions": [
        {"id": "nps", "type": "nps", "text": {"en": "Would you recommend us?"}},
        {"id": "speed", "type": "rating", "scale": {"min": 1, "max": 5},
         "text": {"en": "How satisfied are you with the delivery speed?"}},
        {"id": "price", "type": "rating", "scale": {"min": 1, "max": 5},
         "text": {"en": "How satisfied are you with the price?"}},
    ],
}  # fmt: skip
OTHER = {**SURVEY, "key": "other_check", "name": "Other check"}
N = 300


def _planted(seed: int = 11) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Speed and price ratings (1-5, correlated) and an NPS score driven mostly by speed."""
    rng = np.random.default_rng(seed)
    speed = rng.integers(1, 6, N)
    price = np.clip(speed + rng.integers(-2, 3, N), 1, 5)
    nps = np.clip(np.round(0.5 + 1.4 * speed + 0.4 * price + rng.normal(0, 1.2, N)), 0, 10)
    return speed.astype(float), price.astype(float), nps.astype(float)


def _answer(rid: str, question: str, kind: str, value: float, when: dt.datetime) -> dict:
    return {"response_id": rid, "question_id": question, "question_type": kind,
            "value_number": value, "answered_at": when}  # fmt: skip


@pytest.fixture
def rated(seeded: Engine) -> Engine:
    """The planted survey (300 answers) and another survey whose speed answers are noise."""
    speed, price, nps = _planted()
    noise = np.random.default_rng(5)
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    rows, answers = [], []
    for i in range(N + 100):
        key = "delivery_check" if i < N else "other_check"
        when = start + dt.timedelta(hours=i)
        if i < N:
            s, p, n = speed[i], price[i], nps[i]
        else:
            s, p, n = (float(v) for v in noise.integers([1, 1, 0], [6, 6, 11]))
        rid = f"r{i}"
        rows.append({"id": rid, "survey_key": key, "survey_version": 1,
                     "respondent_kind": "customer", "customer_id": f"c{i}",
                     "started_at": when, "submitted_at": when, "completed": True,
                     "nps": int(n), "source": "import"})  # fmt: skip
        answers += [_answer(rid, "nps", "nps", n, when), _answer(rid, "speed", "rating", s, when),
                    _answer(rid, "price", "rating", p, when)]  # fmt: skip
    with seeded.begin() as conn:
        org.apply_org(conn, parse(ORG))
        surveys.apply_data(conn, SURVEY)
        surveys.apply_data(conn, OTHER)
        conn.execute(responses.insert(), rows)
        conn.execute(response_answers.insert(), answers)
    return seeded


def test_a_surveys_rated_questions_are_drivers_weighed_like_the_shapley_decomposition(
    rated: Engine, tmp_path: Path
) -> None:
    found = service.drivers(rated, tmp_path, "nps", bootstrap=50, survey="delivery_check")
    speed, price, nps = _planted()
    x = np.column_stack([speed, price])
    shapley = shapley_r2(x, nps)  # brute force over every subset of the two questions
    a = np.column_stack([np.ones(N), x])
    resid = nps - a @ np.linalg.lstsq(a, nps, rcond=None)[0]
    r2 = 1 - float(resid @ resid) / float(((nps - nps.mean()) ** 2).sum())
    assert found.rows == N  # the other survey's answers are left out
    assert found.r2 == pytest.approx(r2, rel=1e-9)
    by_key = {d.key: d for d in found.drivers}
    assert [d.key for d in found.drivers] == ["attr_speed", "attr_price"]  # the planted order
    for j, key in enumerate(["attr_speed", "attr_price"]):
        d = by_key[key]
        assert d.kind == "attribute" and d.direction == 1.0
        assert abs(d.importance - shapley[j]) / r2 < 0.05
        assert d.importance_low <= d.importance <= d.importance_high
    assert by_key["attr_speed"].label == "How satisfied are you with the delivery speed?"
    # Performance on the question's own 1-5 scale, as a share of it.
    assert by_key["attr_speed"].performance == pytest.approx((speed.mean() - 1) / 4)


def test_drivers_of_an_unknown_survey_name_the_known_ones(
    app_client: TestClient, rated: Engine, read_headers: dict[str, str]
) -> None:
    ok = app_client.get("/api/v1/insights/drivers", headers=read_headers,
                        params={"survey": "delivery_check", "bootstrap": 0})  # fmt: skip
    assert ok.status_code == 200, ok.text
    assert ok.json()["drivers"][0]["label"] == "How satisfied are you with the delivery speed?"
    missing = app_client.get("/api/v1/insights/drivers", params={"survey": "nope"},
                             headers=read_headers)  # fmt: skip
    assert missing.status_code == 404
    assert "delivery_check" in missing.json()["detail"]
    churn = app_client.get("/api/v1/insights/drivers",
                           params={"survey": "delivery_check", "outcome": "churn"},
                           headers=read_headers)  # fmt: skip
    assert churn.status_code == 422 and "nps or csat" in churn.json()["detail"]

"""CSAT and CES of a journey's steps, checked against the attribution and intervals worked
out here in plain Python (statsmodels' Wilson interval for the %, the adjusted mean's
pseudo-answers at the ends of the scale for CES)."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from scipy.stats import norm
from sqlalchemy.engine import Engine
from statsmodels.stats.proportion import proportion_confint

from cxm.errors import Invalid
from cxm.journeys import mining, service
from cxm.metrics.definitions import load as load_metrics
from cxm.surveys.tables import responses
from tests.journeys.test_mining import _journey, ingest_log

SEPT = dt.datetime(2026, 9, 1, 10, tzinfo=dt.UTC)
# (customer, day of September (0: 31 August), csat, ces, respondent kind, completed)
ANSWERS: list[tuple[str, int, int | None, int | None, str, bool]] = [
    ("a", 4, 5, 6, "customer", True),
    ("b", 8, 2, 3, "customer", True),
    ("b", 9, 4, None, "customer", True),
    ("c", 3, 4, 7, "customer", True),
    ("c", 0, 1, 1, "customer", True),  # before any case of c started: no case carries it
    ("b", 9, 1, 1, "employee", True),  # not a customer's answer: the metrics leave it out
    ("a", 9, 1, 1, "customer", False),  # not completed: likewise
]
# The activities of each case (the case definitions of tests/journeys/test_mining.py).
CASES = {
    "O1": ("a", ["order_placed", "order_delivered"]),
    "O2": ("b", ["order_placed", "delivery_late", "order_delivered", "ticket_opened",
                 "repeat contact", "return_requested"]),
    "O3": ("c", ["order_placed", "order_delivered"]),
    "O5": ("a", ["order_placed"]),
}  # fmt: skip


@pytest.fixture
def store(seeded: Engine) -> Engine:
    with seeded.begin() as conn:
        ids = ingest_log(conn)
        rows = []
        for i, (who, day, csat, ces, kind, done) in enumerate(ANSWERS):
            at = SEPT + dt.timedelta(days=day - 1, hours=2)
            rows.append({
                "id": f"r{i}", "survey_key": "after", "survey_version": 1,
                "respondent_kind": kind, "customer_id": ids[who], "completed": done,
                "started_at": at, "submitted_at": at, "csat": csat, "ces": ces,
                "source": "import",
            })  # fmt: skip
        conn.execute(responses.insert(), rows)
    return seeded


def _expected_answers() -> dict[str, list[tuple[int | None, int | None]]]:
    """Per case, the (csat, ces) of the customer answers attributed to it: each counted
    answer goes to its customer's latest case started at or before it (every case here
    starts on 1 September at 10:00, so the tie goes to the greater case id)."""
    out: dict[str, list[tuple[int | None, int | None]]] = {k: [] for k in CASES}
    for who, day, csat, ces, kind, done in ANSWERS:
        at = SEPT + dt.timedelta(days=day - 1, hours=2)
        if kind != "customer" or not done or at < SEPT:
            continue
        case = max(k for k, (owner, _) in CASES.items() if owner == who)
        out[case].append((csat, ces))
    return out


def _per_step(which: int) -> dict[str, list[int]]:
    steps: dict[str, list[int]] = {}
    for case, got in _expected_answers().items():
        for activity in dict.fromkeys(CASES[case][1]):
            steps.setdefault(activity, []).extend(a[which] for a in got if a[which] is not None)
    return steps


def _adjusted_mean(values: list[int], low: float, high: float) -> tuple[float, float, float]:
    """The mean with z^2/2 pseudo-answers at each end of the scale, written out."""
    z = norm.ppf(0.975)
    k = z * z / 2
    m = len(values) + 2 * k
    centre = (sum(values) + k * (low + high)) / m
    second = (sum(v * v for v in values) + k * (low * low + high * high)) / m
    se = math.sqrt((second - centre * centre) / m)
    mean = sum(values) / len(values)
    return mean, max(low, min(centre - z * se, mean)), min(high, max(centre + z * se, mean))


def test_each_step_carries_the_csat_of_its_cases_answers(store: Engine) -> None:
    metrics = load_metrics()
    s = service.summary(store, _journey(), scores=service.score_metrics(metrics))
    expected = _per_step(0)
    got = {a["activity"]: a["scores"]["csat"] for a in s["activities"]}
    assert set(got) == set(expected)
    for activity, values in expected.items():
        x, n = sum(v >= 4 for v in values), len(values)
        low, high = proportion_confint(x, n, alpha=0.05, method="wilson")
        score = got[activity]
        assert score["n"] == n, activity
        assert score["value"] == pytest.approx(100 * x / n, abs=1e-3)
        assert (score["low"], score["high"]) == (
            pytest.approx(100 * low, abs=1e-3), pytest.approx(100 * high, abs=1e-3),
        )  # fmt: skip
        assert score["method"] == "wilson" and score["unit"] == "%"
    # The journey as a whole: every counted answer attributed to a case, once.
    assert s["scores"]["csat"]["n"] == sum(len(v) for v in _expected_answers().values())


def test_each_step_carries_the_ces_mean_with_the_metrics_adjusted_interval(store: Engine) -> None:
    metrics = load_metrics()
    s = service.summary(store, _journey(), scores=service.score_metrics(metrics))
    expected = _per_step(1)
    got = {a["activity"]: a["scores"]["ces"] for a in s["activities"]}
    for activity, values in expected.items():
        mean, low, high = _adjusted_mean(values, 1, 7)
        score = got[activity]
        assert score["n"] == len(values), activity
        assert score["value"] == pytest.approx(mean, abs=1e-3)
        assert score["low"] == pytest.approx(low, abs=1e-3)
        assert score["high"] == pytest.approx(high, abs=1e-3)
        assert score["method"] == "adjusted-mean"


def test_a_step_without_answers_has_no_score(store: Engine) -> None:
    s = service.summary(store, _journey(), scores=service.score_metrics(load_metrics(), ["ces"]))
    by = {a["activity"]: a["scores"] for a in s["activities"]}
    assert all(set(v) == {"ces"} for v in by.values())
    # Only b's answers reach the steps of O2; b gave one CES answer.
    assert by["delivery_late"]["ces"]["n"] == 1


def test_a_metric_of_another_fact_is_refused(store: Engine) -> None:
    metrics = load_metrics()
    assert service.score_metrics(metrics, ["renewal_cancellation_rate", "csat"]) == [
        metrics["csat"]
    ]
    with pytest.raises(Invalid, match="does not read survey answers"):
        mining.answers(None, None, metrics["renewal_cancellation_rate"])  # type: ignore[arg-type]

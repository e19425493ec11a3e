"""The customer 360 page shows the stored churn risk, predicted NPS and their reasons."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.insights import facts
from tests.web.factories import company
from tests.web.test_explore import _customer
from tests.web.test_pages import as_role


def test_customer_360_shows_risk_and_its_top_three_reasons(
    app_client: TestClient, seeded: Engine
) -> None:
    company(seeded)
    customer_id = _customer(seeded)
    client = as_role(app_client, seeded, "cx_lead")
    before = client.get(f"/customers/{customer_id}")
    assert before.status_code == 200
    assert "No prediction yet" in before.text
    now = dt.datetime(2026, 10, 31, tzinfo=dt.UTC)
    reasons = [
        {"feature": "late_delivery", "label": "Late delivery", "value": 1, "contribution": 0.41},
        {"feature": "plan", "label": "Plan", "value": "basic", "contribution": 0.18},
        {"feature": "region", "label": "Region", "value": "south", "contribution": 0.05},
    ]
    with seeded.begin() as conn:
        facts.replace_predictions(conn, [{
            "customer_id": customer_id, "churn_risk": 0.374, "predicted_nps": 6.25,
            "reasons": reasons, "nps_reasons": [], "model_version": "m1", "feature_set": "fs-1",
            "seed": 7, "as_of": now, "scored_at": now,
        }])  # fmt: skip
    page = client.get(f"/customers/{customer_id}")
    assert page.status_code == 200
    assert "37%" in page.text and "6.2 of 10" in page.text
    shown = [r["label"] for r in reasons if r["label"] in page.text]
    assert shown == ["Late delivery", "Plan", "Region"]
    assert page.text.index("Late delivery") < page.text.index("Region")


def test_erasing_a_customer_deletes_their_prediction(seeded: Engine) -> None:
    from cxm.privacy import service as privacy

    company(seeded)
    customer_id = _customer(seeded)
    now = dt.datetime(2026, 10, 31, tzinfo=dt.UTC)
    with seeded.begin() as conn:
        facts.replace_predictions(conn, [{
            "customer_id": customer_id, "churn_risk": 0.2, "predicted_nps": 7.0, "reasons": [],
            "nps_reasons": [], "model_version": "m1", "feature_set": "fs-1", "seed": 7,
            "as_of": now, "scored_at": now,
        }])  # fmt: skip
    with seeded.begin() as conn:
        counts = privacy.erase(conn, customer_id, "test")
    assert counts["predictions_deleted"] == 1
    with seeded.connect() as conn:
        assert facts.prediction_for(conn, customer_id) is None

"""The metrics recover what the default demo company planted.

The ground truth comes from the demo's own files, read here with pandas and never loaded into
cxm: ``customers.csv`` (who churned when) and the raw interaction log as the generator wrote
it (each invoice carries the customer's CRM id, so revenue needs no identity resolution).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from cxm.demo import causal
from cxm.metrics import compute
from cxm.surveys.analytics import funnel

OCTOBER = "2026-10-01"
OCT, NOV = pd.Timestamp("2026-10-01", tz="UTC"), pd.Timestamp("2026-11-01", tz="UTC")
SEP = pd.Timestamp("2026-09-01", tz="UTC")


def _truth(demo_files: Path) -> pd.DataFrame:
    people = pd.read_csv(demo_files / "customers.csv", dtype={"crm_id": str})
    people["churned_at"] = pd.to_datetime(people["churned_at"], utc=True)
    return people


def _october(duck: Engine, name: str) -> dict:  # type: ignore[type-arg]
    df = compute(duck, name, by=["month"])
    return df[df["month"] == OCTOBER].iloc[0].to_dict()


def test_october_churn_on_the_active_base_matches_the_demos_ground_truth(
    duck: Engine, demo_files: Path
) -> None:
    people = _truth(demo_files)
    # Every demo customer is acquired in the first 70% of the window (docs/demo.md), so the
    # customers on the books on 1 October are those who had not churned by then.
    active = people[people["churned_at"].isna() | (people["churned_at"] >= OCT)]
    churned = active[(active["churned_at"] >= OCT) & (active["churned_at"] < NOV)]
    truth = 100 * len(churned) / len(active)
    assert 5 < truth < 7  # the reading: 114 of about 1,800
    got = _october(duck, "churn_rate")
    assert abs(got["value"] - truth) <= 2, (got, truth)
    assert abs(got["n"] - len(active)) <= 0.02 * len(active)
    assert _october(duck, "logo_churn_rate")["value"] == got["value"]
    assert _october(duck, "churned_customers")["value"] == pytest.approx(len(churned), abs=3)
    # The renewal-cohort rate is a different number, and keeps its own name.
    assert _october(duck, "renewal_cancellation_rate")["value"] > 25


def test_active_customers_at_the_end_of_october_match_the_ground_truth(
    duck: Engine, demo_files: Path
) -> None:
    people = _truth(demo_files)
    truth = int(people["churned_at"].isna().sum())
    got = _october(duck, "active_customers")["value"]
    # Customers sharing a family email or an office phone merge into one profile (docs/demo.md).
    assert abs(got - truth) <= 0.01 * truth, (got, truth)


def test_october_revenue_retention_matches_the_invoices_in_the_log(
    duck: Engine, demo_files: Path
) -> None:
    log = pd.read_parquet(demo_files / "interactions.parquet",
                          columns=["name", "timestamp", "crm_id", "properties"])  # fmt: skip
    bills = log[log["name"] == "invoice_sent"].copy()
    bills["amount"] = [json.loads(p)["amount"] for p in bills["properties"]]
    september = bills[(bills["timestamp"] >= SEP) & (bills["timestamp"] < OCT)]
    october = bills[(bills["timestamp"] >= OCT) & (bills["timestamp"] < NOV)]
    people = _truth(demo_files).set_index("crm_id")
    churned_at = people["churned_at"]
    start = september.groupby("crm_id")["amount"].sum()
    start = start[churned_at.reindex(start.index).isna() | (churned_at.reindex(start.index) >= OCT)]
    end = october.groupby("crm_id")["amount"].sum().reindex(start.index).fillna(0.0)
    # Customers who churned in October count zero at its end.
    end[churned_at.reindex(end.index) < NOV] = 0.0
    nrr = 100 * end.sum() / start.sum()
    grr = 100 * pd.concat([start, end], axis=1).min(axis=1).sum() / start.sum()
    assert abs(_october(duck, "net_revenue_retention")["value"] - nrr) < 1, nrr
    assert abs(_october(duck, "gross_revenue_retention")["value"] - grr) < 1, grr


def test_response_rate_recovers_the_demo_companys_planted_rates(duck: Engine) -> None:
    """The demo's sends are survey_sent events in the log; recorded as invitations and linked
    to the answers, they give back the answer rate the generator planted for each survey."""
    rates = compute(duck, "response_rate", ["survey"], confidence=0.999)
    assert set(rates["survey"]) == set(causal.SURVEY_RESPONSE_RATE)
    for row in rates.to_dict("records"):
        planted = causal.SURVEY_RESPONSE_RATE[row["survey"]] * 100
        assert row["ci_low"] <= planted <= row["ci_high"], row


def test_the_surveys_funnel_and_the_response_rate_metric_give_the_same_number(
    duck: Engine,
) -> None:
    metric = compute(duck, "response_rate", ["survey", "channel"])
    rows = {(r["survey_key"], r["channel"]): r for r in funnel(duck)}
    assert len(metric) == 4
    for m in metric.to_dict("records"):
        row = rows[(m["survey"], m["channel"])]
        assert row["sent"] == m["n"] and row["answered"] > 0
        assert row["response_rate"] == pytest.approx(m["value"] / 100, abs=5e-5), (row, m)
    # Surveys nobody was invited to (the imported employee pulse) have no response rate.
    assert rows[("employee_pulse", "import")]["response_rate"] is None

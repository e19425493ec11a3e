"""compute() on DuckDB and PostgreSQL against hand-counted fixtures."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cxm.cli.main import app as cli
from cxm.errors import Invalid, NotFound
from cxm.metrics import Weighting, compute, record_alerts, set_target, stats
from cxm.metrics.definitions import load
from cxm.metrics.service import list_alerts
from cxm.surveys.tables import invitations
from tests.metrics import factories as f

MARCH = dt.datetime(2025, 3, 10, tzinfo=dt.UTC)
APRIL = dt.datetime(2025, 4, 10, tzinfo=dt.UTC)


@pytest.fixture
def store(engine: Engine) -> Engine:
    """Delivery: 10 promoters, 10 passives, 20 detractors. Chat: 20/10/5. Phone: 3/0/2."""
    with engine.begin() as conn:
        f.org(conn)
        f.nps_responses(conn, "delivery", [10] * 10 + [8] * 10 + [3] * 20)
        f.nps_responses(conn, "support_chat", [9] * 20 + [7] * 10 + [0] * 5)
        f.nps_responses(conn, "support_phone", [10, 10, 10, 6, 6])
    return engine


def _by(df, col: str) -> dict:  # type: ignore[no-untyped-def]
    return {r[col]: r for r in df.to_dict("records")}


def test_nps_by_department_follows_touchpoint_ownership(store: Engine) -> None:
    rows = _by(compute(store, "nps", by=["department"]), "department")
    assert rows["operations"]["value"] == pytest.approx(-25.0)
    assert rows["operations"]["n"] == 40
    # Service owns chat and phone: 23 promoters, 10 passives, 7 detractors.
    expected = stats.nps_interval(23, 10, 7)
    assert rows["service"]["value"] == pytest.approx(40.0)
    assert rows["service"]["ci_low"] == pytest.approx(expected.low * 100)
    assert rows["service"]["ci_high"] == pytest.approx(expected.high * 100)
    assert rows["service"]["method"] == "nps-adjusted-wald"
    assert rows["service"]["target"] == 30 and rows["service"]["on_target"] is True
    assert rows["operations"]["on_target"] is False


def test_slices_below_the_minimum_sample_are_flagged_not_numbered(store: Engine) -> None:
    rows = _by(compute(store, "nps", by=["team"]), "team")
    assert rows["chat_team"]["value"] == pytest.approx(100 * 15 / 35)
    assert pd.isna(rows["phone_team"]["value"]) and rows["phone_team"]["n"] == 5
    assert rows["phone_team"]["flags"] == "below_min_sample"


def test_date_range_and_month_grain(store: Engine) -> None:
    with store.begin() as conn:
        f.nps_responses(conn, "delivery", [10] * 40, when=APRIL)
    df = compute(store, "nps", by=["department", "month"], filters={"department": "operations"})
    assert df[["month", "value"]].values.tolist() == [["2025-03-01", -25.0], ["2025-04-01", 100.0]]
    only_april = compute(store, "nps", start=dt.datetime(2025, 4, 1, tzinfo=dt.UTC),
                         end=dt.datetime(2025, 5, 1, tzinfo=dt.UTC))  # fmt: skip
    assert only_april["n"].tolist() == [40]


def test_slice_by_customer_trait(engine: Engine) -> None:
    with engine.begin() as conn:
        f.org(conn)
        f.customer(conn, "c1", plan="pro", region="north")
        f.customer(conn, "c2", plan="basic", region="south")
        f.nps_responses(conn, "delivery", [10] * 30, customer_id="c1")
        f.nps_responses(conn, "delivery", [0] * 30 + [8] * 10, customer_id="c2")
    plan = _by(compute(engine, "nps", by=["trait:plan"]), "plan")
    assert plan["pro"]["value"] == 100.0 and plan["basic"]["value"] == -75.0
    region = _by(compute(engine, "nps", by=["region"]), "region")
    assert set(region) == {"north", "south"}
    # Post-stratified to a 50/50 population: (100 + -75) / 2, Kish n = 1/(.25/30 + .25/40).
    w = compute(engine, "nps", weights=Weighting("plan", {"pro": 0.5, "basic": 0.5}))
    assert w["value"][0] == pytest.approx(12.5)
    assert w["weighted_n"][0] == pytest.approx(1 / (0.25 / 30 + 0.25 / 40))
    assert w["n"][0] == 70 and w["method"][0] == "nps-adjusted-wald-poststratified"


def test_csat_top_two_box_and_mean(engine: Engine) -> None:
    with engine.begin() as conn:
        f.org(conn)
        for score, count in [(5, 12), (4, 12), (3, 6), (1, 10)]:
            f.nps_responses(conn, "support_chat", [8] * count, csat=score)
    csat = compute(engine, "csat")
    assert csat["value"][0] == pytest.approx(60.0)
    lo, hi = stats.wilson_interval(24, 40).low, stats.wilson_interval(24, 40).high
    assert (csat["ci_low"][0], csat["ci_high"][0]) == (pytest.approx(lo * 100),
                                                       pytest.approx(hi * 100))  # fmt: skip
    mean = compute(engine, "csat_mean")
    assert mean["value"][0] == pytest.approx((5 * 12 + 4 * 12 + 3 * 6 + 10) / 40)
    assert mean["method"][0] == "adjusted-mean"


def test_repeat_contact_and_first_contact_resolution(engine: Engine) -> None:
    day = dt.timedelta(days=1)
    rows = []
    for i in range(40):
        c = f"c{i}"
        rows.append((c, "ticket_opened", MARCH, None))
        if i < 10:  # contacts again after 3 days: a repeat, not resolved first time
            rows.append((c, "ticket_opened", MARCH + 3 * day, None))
        elif i < 20:  # again after 20 days: a repeat within 30 days, but FCR within 7
            rows.append((c, "ticket_opened", MARCH + 20 * day, None))
    with engine.begin() as conn:
        f.org(conn)
        f.events(conn, rows)
    start, end = dt.datetime(2025, 3, 10, tzinfo=dt.UTC), dt.datetime(2025, 3, 11, tzinfo=dt.UTC)
    # Only the 40 first contacts are in range; what follows them still counts.
    repeat = compute(engine, "repeat_contact_rate", start=start, end=end)
    assert repeat["n"][0] == 40 and repeat["value"][0] == pytest.approx(50.0)
    fcr = compute(engine, "first_contact_resolution", start=start, end=end)
    assert fcr["value"][0] == pytest.approx(75.0)


def test_on_time_delivery_revenue_and_lifetime_value(engine: Engine) -> None:
    rows = [(f"c{i}", "order_delivered", MARCH, None) for i in range(40)]
    rows += [(f"c{i}", "delivery_late", MARCH, None) for i in range(4)]
    rows += [(f"c{i}", "payment_received", MARCH, 50.0) for i in range(40)]
    rows += [(f"c{i}", "payment_received", MARCH, 50.0) for i in range(20)]
    rows += [(f"c{i}", "subscription_renewed", MARCH, None) for i in range(36)]
    rows += [(f"c{i}", "subscription_cancelled", MARCH, None) for i in range(36, 40)]
    with engine.begin() as conn:
        f.org(conn)
        f.events(conn, rows, touchpoint="delivery")
    assert compute(engine, "on_time_delivery_rate")["value"][0] == pytest.approx(90.0)
    rpc = compute(engine, "revenue_per_customer")
    assert rpc["value"][0] == pytest.approx(75.0) and rpc["n"][0] == 40
    # 4 cancellations of 40 decisions: the renewal-cohort rate, not churn of the customer base.
    assert compute(engine, "renewal_cancellation_rate")["value"][0] == pytest.approx(10.0)
    assert compute(engine, "renewal_rate")["value"][0] == pytest.approx(90.0)


def test_installation_and_slice_targets_override_the_definition(store: Engine) -> None:
    metrics = load()
    with store.begin() as conn:
        set_target(conn, metrics, "nps", 50)
        set_target(conn, metrics, "nps", -30, "department", "operations")
    rows = _by(compute(store, "nps", by=["department"]), "department")
    assert rows["service"]["target"] == 50 and rows["service"]["on_target"] is False
    assert rows["operations"]["target"] == -30 and rows["operations"]["on_target"] is True


def test_significant_drop_is_recorded_as_one_alert(store: Engine) -> None:
    with store.begin() as conn:
        f.nps_responses(conn, "support_chat", [0] * 30 + [9] * 5, when=APRIL)
        f.nps_responses(conn, "delivery", [10] * 10 + [8] * 10 + [3] * 20, when=APRIL)
    df = compute(store, "nps", by=["department", "month"], compare="previous")
    april = _by(df[df["month"] == "2025-04-01"], "department")
    assert april["service"]["significant"] and april["service"]["compared_with"] == "2025-03-01"
    assert not april["operations"]["significant"]
    with store.begin() as conn:
        created = record_alerts(conn, store, "nps", ["department"], grain="month")
        again = record_alerts(conn, store, "nps", ["department"], grain="month")
    assert [(a["slice"], a["period"]) for a in created] == [("department=service", "2025-04-01")]
    assert again == []
    with store.connect() as conn:
        stored = list_alerts(conn, "nps")
    assert len(stored) == 1 and stored[0]["value"] < stored[0]["previous_value"]


def test_slice_against_the_rest(store: Engine) -> None:
    df = _by(compute(store, "nps", by=["department"], compare="rest"), "department")
    assert df["operations"]["compared_with"] == "rest"
    assert df["operations"]["delta"] == pytest.approx(-25.0 - 40.0)
    assert df["operations"]["p_adjusted"] >= df["operations"]["p_value"]


def test_bad_requests_say_what_to_do(store: Engine) -> None:
    with pytest.raises(NotFound, match=r"no metric 'npz'; known: .*nps"):
        compute(store, "npz")
    with pytest.raises(Invalid, match="unknown dimension 'colour'"):
        compute(store, "nps", by=["colour"])
    with pytest.raises(Invalid, match=r"cannot slice renewal_rate .* by 'survey'"):
        compute(store, "renewal_rate", by=["survey"])
    with pytest.raises(Invalid, match="needs a time grain"):
        compute(store, "nps", compare="previous")
    with store.connect() as conn:
        assert conn.execute(sa.text("select 1")).scalar() == 1


def test_response_rate_counts_invitations_sent_and_answered(engine: Engine) -> None:
    """40 invitations sent, 14 answered; 5 suppressed ones never count. Completion is separate."""
    rows = []
    for i in range(45):
        sent = i < 40
        rows.append({
            "id": f"inv{i}", "survey_key": "support_csat", "customer_id": None,
            "channel": "email", "touchpoint_key": "support_chat" if i % 2 else "delivery",
            "status": "sent" if sent else "suppressed", "response_id": f"r{i}" if i < 14 else None,
            "created_at": MARCH, "sent_at": MARCH if sent else None,
        })  # fmt: skip
    with engine.begin() as conn:
        f.org(conn)
        conn.execute(invitations.insert(), rows)
        f.nps_responses(conn, "support_chat", [9] * 30)
    rate = compute(engine, "response_rate")
    assert rate["n"][0] == 40 and rate["value"][0] == pytest.approx(35.0)
    by_tp = _by(compute(engine, "response_rate", ["touchpoint"]), "touchpoint")
    assert (by_tp["support_chat"]["n"], by_tp["delivery"]["n"]) == (20, 20)
    assert compute(engine, "response_rate", ["department"]).set_index("department").loc[
        "service", "n"] == 20  # fmt: skip
    assert compute(engine, "completion_rate")["value"][0] == pytest.approx(100.0)


JAN, FEB, MAR, APR = (dt.datetime(2025, m, 1, 6, tzinfo=dt.UTC) for m in (1, 2, 3, 4))
DAY = dt.timedelta(days=1)


def _growth_rows() -> list[tuple[str, str, dt.datetime, float | None]]:
    """A subscription company billing monthly, January to April 2025.

    c0..c39 are billed 10 a month from January; c0..c3 cancel in February, c4 in March (after
    its March invoice). n0..n9 are acquired in February; n0 cancels in the same month. From
    March c5 pays 20 (expansion) and c6 pays 5 (contraction). Each invoice is paid at once.
    """
    rows: list[tuple[str, str, dt.datetime, float | None]] = []

    def bill(c: str, months: list[dt.datetime], amount: float = 10.0) -> None:
        for m in months:
            rows.append((c, "invoice_sent", m + 4 * DAY, amount))
            rows.append((c, "payment_received", m + 5 * DAY, amount))

    for i in range(40):
        c = f"c{i}"
        if i < 4:
            bill(c, [JAN, FEB])
            rows.append((c, "subscription_cancelled", FEB + 14 * DAY, None))
        elif i == 4:
            bill(c, [JAN, FEB, MAR])
            rows.append((c, "subscription_cancelled", MAR + 9 * DAY, None))
        elif i in (5, 6):
            bill(c, [JAN, FEB])
            bill(c, [MAR, APR], 20.0 if i == 5 else 5.0)
        else:
            bill(c, [JAN, FEB, MAR, APR])
    bill("n0", [FEB])
    rows.append(("n0", "subscription_cancelled", FEB + 19 * DAY, None))
    for i in range(1, 10):
        bill(f"n{i}", [FEB, MAR, APR])
    return rows


@pytest.fixture
def growth(engine: Engine) -> Engine:
    """The company of ``_growth_rows``."""
    with engine.begin() as conn:
        f.org(conn)
        f.events(conn, _growth_rows(), touchpoint="invoice")
    return engine


def _monthly(engine: Engine, name: str, by: tuple[str, ...] = ()) -> dict:  # type: ignore[type-arg]
    df = compute(engine, name, by=[*by, "month"])
    return {tuple(r[c] for c in [*by, "month"]) if by else r["month"]: r
            for r in df.to_dict("records")}  # fmt: skip


def test_customer_counts_per_month_follow_acquisition_and_cancellation(growth: Engine) -> None:
    counts = {name: {m: r["value"] for m, r in _monthly(growth, name).items()}
              for name in ("new_customers", "churned_customers", "active_customers",
                           "retained_customers")}  # fmt: skip
    assert counts["new_customers"] == {"2025-01-01": 40, "2025-02-01": 10}
    # n0 is acquired and churns in February: new and churned, never in a start-of-month base.
    assert counts["churned_customers"] == {"2025-02-01": 5, "2025-03-01": 1}
    assert counts["active_customers"] == {"2025-01-01": 40, "2025-02-01": 45,
                                          "2025-03-01": 44, "2025-04-01": 44}  # fmt: skip
    assert counts["retained_customers"] == {"2025-02-01": 36, "2025-03-01": 44,
                                            "2025-04-01": 44}  # fmt: skip


def test_logo_churn_rate_is_churn_of_the_active_base_at_period_start(growth: Engine) -> None:
    churn = _monthly(growth, "logo_churn_rate")
    assert "2025-01-01" not in churn  # nobody was a customer on 1 January
    assert churn["2025-02-01"]["n"] == 40 and churn["2025-02-01"]["value"] == pytest.approx(10.0)
    assert churn["2025-03-01"]["n"] == 45
    assert churn["2025-03-01"]["value"] == pytest.approx(100 / 45)
    wilson = stats.wilson_interval(4, 40)
    assert churn["2025-02-01"]["ci_low"] == pytest.approx(wilson.low * 100)
    assert churn["2025-02-01"]["ci_high"] == pytest.approx(wilson.high * 100)
    same = compute(growth, "churn_rate", by=["month"])
    pd.testing.assert_frame_equal(same.drop(columns="metric"), compute(
        growth, "logo_churn_rate", by=["month"]).drop(columns="metric"))  # fmt: skip
    retention = _monthly(growth, "retention_rate")
    assert retention["2025-03-01"]["value"] == pytest.approx(100 * 44 / 45)


def test_revenue_retention_compares_last_months_revenue_with_this_months(growth: Engine) -> None:
    # Base on 1 March: c4..c39 and n1..n9, 45 customers billed 10 in February: 450.
    # March: c4 churned (0), c5 20, c6 5, the other 42 pay 10: 445; capped at February: 435.
    nrr = _monthly(growth, "net_revenue_retention")["2025-03-01"]
    grr = _monthly(growth, "gross_revenue_retention")["2025-03-01"]
    assert nrr["n"] == 45 and nrr["value"] == pytest.approx(100 * 445 / 450)
    assert grr["n"] == 45 and grr["value"] == pytest.approx(100 * 435 / 450)
    assert grr["method"] == "ratio-linearised" and grr["ci_low"] < grr["value"] < grr["ci_high"]
    # April: nobody churns and plans stay as in March.
    assert _monthly(growth, "net_revenue_retention")["2025-04-01"]["value"] == pytest.approx(100)


def test_a_revenue_retention_interval_stays_on_its_scale() -> None:
    from cxm.metrics.service import _interval

    # Nine customers kept 10 of 10, one kept 9: GRR 99%, and the symmetric linearised
    # interval (99 +- 1.96) would pass 100, which no GRR can.
    x, y = [10.0] * 9 + [9.0], [10.0] * 10
    row = {"sum_x": sum(x), "sum_y": sum(y), "sum_xx": sum(a * a for a in x),
           "sum_yy": sum(b * b for b in y), "sum_xy": sum(a * b for a, b in zip(x, y, strict=True)),
           "n": 10}  # fmt: skip
    raw = stats.ratio_interval(row["sum_x"], row["sum_y"], row["sum_xx"], row["sum_yy"],
                               row["sum_xy"], 10)  # fmt: skip
    assert raw.high > 1.0
    grr = _interval(load()["gross_revenue_retention"], row, 0.95)
    assert grr.value == pytest.approx(99.0) and grr.high == 100.0 and grr.low < 99.0


def test_gross_revenue_retention_never_has_a_bound_above_100(growth: Engine) -> None:
    # April keeps every customer's revenue: GRR is 100 with no spread above it, and the
    # linearised interval (symmetric) would reach past 100 without the metric's scale.
    for row in _monthly(growth, "gross_revenue_retention").values():
        if row["ci_high"] is not None and row["ci_high"] == row["ci_high"]:
            assert 0 <= row["ci_low"] <= row["value"] <= row["ci_high"] <= 100
    for row in _monthly(growth, "net_revenue_retention").values():
        if row["ci_low"] is not None and row["ci_low"] == row["ci_low"]:
            assert row["ci_low"] >= 0


def test_ratio_interval_matches_the_linearisation_formula() -> None:
    x = [10.0, 0.0, 10.0, 20.0, 5.0, 10.0]
    y = [10.0, 10.0, 10.0, 10.0, 10.0, 10.0]
    n = len(x)
    r = sum(x) / sum(y)
    var = sum((a - r * b) ** 2 for a, b in zip(x, y, strict=True)) / ((n - 1) * n * 10.0**2)
    i = stats.ratio_interval(sum(x), sum(y), sum(a * a for a in x), sum(b * b for b in y),
                             sum(a * b for a, b in zip(x, y, strict=True)), n)  # fmt: skip
    assert i.value == pytest.approx(r) and i.se == pytest.approx(var**0.5)
    assert i.high - i.value == pytest.approx(1.959964 * var**0.5, rel=1e-6)


def test_cohort_retention_follows_each_acquisition_month(growth: Engine) -> None:
    cohorts = _monthly(growth, "cohort_retention", ("cohort",))
    assert cohorts[("2025-01", "2025-04-01")]["n"] == 40
    assert cohorts[("2025-01", "2025-04-01")]["value"] == pytest.approx(100 * 35 / 40)
    assert cohorts[("2025-01", "2025-01-01")]["value"] == pytest.approx(100)
    # Ten customers are below the minimum sample: counted, not numbered.
    feb = cohorts[("2025-02", "2025-04-01")]
    assert feb["n"] == 10 and feb["flags"] == "below_min_sample"


def test_lifetime_value_divides_revenue_per_customer_by_churn(growth: Engine) -> None:
    clv = _monthly(growth, "customer_lifetime_value")["2025-02-01"]
    # February: 50 paying customers at 10 each; 10% of the 1 February base churned.
    assert clv["value"] == pytest.approx(10 / 0.10) and clv["method"] == "derived"


def test_growth_metrics_need_a_time_grain(growth: Engine) -> None:
    with pytest.raises(
        Invalid, match=r"churn_rate is measured per period: slice it by a time grain"
    ):
        compute(growth, "churn_rate")
    with pytest.raises(Invalid, match=r"logo_churn_rate reads customer_periods, which has no"):
        compute(growth, "logo_churn_rate", by=["department", "month"])
    with pytest.raises(Invalid, match=r"cannot slice nps .* by 'cohort'"):
        compute(growth, "nps", by=["cohort"])


def test_growth_metrics_over_http(
    seeded: Engine, app_client: TestClient, read_headers: dict[str, str]
) -> None:
    with seeded.begin() as conn:
        f.events(conn, _growth_rows(), touchpoint="invoice")
    r = app_client.get("/api/v1/metrics/churn_rate", params={"by": "month"},
                       headers=read_headers)  # fmt: skip
    assert r.status_code == 200, r.text
    rows = {row["month"]: row for row in r.json()["rows"]}
    assert rows["2025-02-01"]["value"] == pytest.approx(10.0) and rows["2025-02-01"]["n"] == 40
    r = app_client.get("/api/v1/metrics/churn_rate", headers=read_headers)
    assert r.status_code == 422 and "slice it by a time grain" in r.json()["detail"]


def test_growth_metrics_on_the_command_line(
    duckdb_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with duckdb_engine.begin() as conn:
        f.org(conn)
        f.events(conn, _growth_rows(), touchpoint="invoice")
    duckdb_engine.dispose()
    monkeypatch.setenv("CXM_DATABASE_URL", str(duckdb_engine.url))
    runner = CliRunner()
    out = runner.invoke(cli, ["metrics", "net_revenue_retention", "--grain", "month",
                              "--format", "json"])  # fmt: skip
    assert out.exit_code == 0, out.output
    march = {row["month"]: row for row in json.loads(out.output)}["2025-03-01"]
    assert march["value"] == pytest.approx(100 * 445 / 450)
    bad = runner.invoke(cli, ["metrics", "logo_churn_rate"])
    assert bad.exit_code == 2 and "slice it by a time grain" in bad.output


def test_a_target_set_between_two_computes_on_one_open_backend_is_used(store: Engine) -> None:
    from cxm.store.analytics import reading

    metrics = load()
    with reading(store) as backend:
        before = _by(compute(backend, "nps", by=["department"]), "department")
        with store.begin() as conn:
            set_target(conn, metrics, "nps", -40, "department", "service")
        after = _by(compute(backend, "nps", by=["department"]), "department")
    assert before["service"]["target"] == metrics["nps"].target
    assert after["service"]["target"] == -40 and after["service"]["on_target"] is True


def test_compare_previous_on_an_empty_slice_answers_no_rows(store: Engine) -> None:
    found = compute(
        store,
        "nps",
        by=["month"],
        start=dt.datetime(2031, 1, 1, tzinfo=dt.UTC),
        end=dt.datetime(2031, 6, 1, tzinfo=dt.UTC),
        compare="previous",
    )
    assert found.empty

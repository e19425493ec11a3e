"""Typed traits, trigger slices and bins, against pandas on the same rows (DuckDB, PostgreSQL).

A delivery company: 90 customers, each with an ``order_delivered`` event carrying its
``late_days`` and a CSAT answer triggered by that event; 30 of them ordered twice and answered
twice, late one time and on time the other, so a customer trait cannot say which delivery an
answer is about.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cxm.cli.main import app as cli
from cxm.customers import service as customers
from cxm.customers import traits
from cxm.customers.tables import customers as customer_rows
from cxm.errors import Invalid
from cxm.interactions.tables import interactions
from cxm.metrics import compute, set_target
from cxm.metrics.definitions import load
from cxm.metrics.slices import parse_bins
from cxm.store.analytics import analytics
from cxm.surveys.tables import responses
from tests.metrics import factories as f

T0 = dt.datetime(2025, 3, 3, 9, tzinfo=dt.UTC)
# Every slice gets a number: these tests check values, not the minimum sample.
METRICS = {n: dataclasses.replace(m, min_sample=1) for n, m in load().items()}


@pytest.fixture
def delivered(engine: Engine) -> tuple[Engine, pd.DataFrame]:
    with engine.begin() as conn:
        f.org(conn)
    return engine, _write(engine)


def _write(engine: Engine) -> pd.DataFrame:
    rng = np.random.default_rng(21)
    rows = []
    with engine.begin() as conn:
        conn.execute(customer_rows.insert(), [
            {"id": f"c{i:02d}", "created_at": T0, "interaction_count": 0} for i in range(90)
        ])  # fmt: skip
        tenures = [str(int(rng.integers(0, 40))) for _ in range(90)]
        customers.set_traits(conn, [(f"c{i:02d}", "tenure_months", v, T0)
                                    for i, v in enumerate(tenures)])  # fmt: skip
        customers.set_traits(conn, [(f"c{i:02d}", "segment", ["consumer", "business"][i % 2], T0)
                                    for i in range(90)])  # fmt: skip
        events, answers = [], []
        for i in range(120):
            cid = f"c{i % 90:02d}"
            late = int(rng.choice([0, 0, 0, 1, 2, 4, 9]))
            when = T0 + dt.timedelta(days=i % 20, hours=i)
            csat = int(np.clip(5 - late // 2 - rng.integers(0, 2), 1, 5))
            events.append({
                "event_id": f"ev{i}", "type": "track", "name": "order_delivered",
                "event_time": when, "received_at": when, "customer_id": cid,
                "touchpoint_key": "delivery", "channel": "logistics", "source": "api",
                "properties": {"late_days": late, "order_id": f"o{i}"},
            })  # fmt: skip
            answers.append({
                "id": f"r{i}", "survey_key": "delivery_csat", "survey_version": 1,
                "respondent_kind": "customer", "customer_id": cid, "touchpoint_key": "delivery",
                "channel": "email", "started_at": when + dt.timedelta(hours=2),
                "submitted_at": when + dt.timedelta(hours=2), "completed": True, "csat": csat,
                "source": "web", "trigger_event_id": f"ev{i}",
            })  # fmt: skip
            rows.append({"customer_id": cid, "late_days": late, "csat": csat})
        conn.execute(interactions.insert(), events)
        conn.execute(responses.insert(), answers)
        tenure = {cid: int(v) for cid, v in
                  [(c, customers.traits(conn, c)["tenure_months"]) for c in
                   sorted({r["customer_id"] for r in rows})]}  # fmt: skip
    df = pd.DataFrame(rows)
    df["tenure_months"] = df.customer_id.map(tenure)
    df["top_box"] = df.csat >= 4
    return df


def _values(result: pd.DataFrame, column: str) -> dict[str, tuple[int, float]]:
    return {r[column]: (int(r["n"]), float(r["value"])) for r in result.to_dict("records")}


def test_trait_types_are_inferred_on_first_sight_and_declarable(engine: Engine) -> None:
    assert traits.infer(["3", "10", "-2.5", None, ""]) == "number"
    assert traits.infer(["2024-02-29", "2025-01-01T10:00:00Z"]) == "date"
    assert traits.infer(["True", "false"]) == "boolean"
    assert traits.infer(["3", "three"]) == "string"
    assert traits.infer(["2024-02-30"]) == "string"  # not a calendar date
    with engine.begin() as conn:
        customers.set_traits(conn, [("a", "tenure", "4", T0), ("b", "plan", "gold", T0)])
        # Later values never change the type inferred first.
        customers.set_traits(conn, [("a", "tenure", "unknown", T0 + dt.timedelta(days=1))])
        assert traits.types(conn) == {"tenure": "number", "plan": "string"}
        traits.declare(conn, "plan", "boolean")
        customers.set_traits(conn, [("c", "plan", "silver", T0)])
        assert traits.types(conn)["plan"] == "boolean"
        with pytest.raises(Invalid, match="number, date, boolean, string"):
            traits.declare(conn, "plan", "integer")


def test_numeric_trait_slices_sort_by_value(delivered: tuple[Engine, pd.DataFrame]) -> None:
    engine, df = delivered
    result = compute(engine, "csat", by=["trait:tenure_months"], metrics=METRICS)
    expected = df.groupby("tenure_months").top_box.agg(["size", "mean"]).sort_index()
    assert list(result.tenure_months) == [str(v) for v in expected.index]
    got = _values(result, "tenure_months")
    for v, row in expected.iterrows():
        assert got[str(v)] == (row["size"], pytest.approx(100 * row["mean"]))


def test_trait_bins_match_pandas_cut(delivered: tuple[Engine, pd.DataFrame]) -> None:
    engine, df = delivered
    edges = [0, 6, 12, 24]
    bins = parse_bins(["0,6,12,24"], ["trait:tenure_months", "segment"])
    result = compute(engine, "csat", by=["trait:tenure_months"], metrics=METRICS,
                     bins={"trait:tenure_months": bins["trait:tenure_months"]})  # fmt: skip
    cut = pd.cut(df.tenure_months, [-np.inf, *edges, np.inf], right=False,
                 labels=["< 0", "[0, 6)", "[6, 12)", "[12, 24)", ">= 24"])  # fmt: skip
    expected = df.groupby(cut, observed=True).top_box.agg(["size", "mean"])
    assert list(result.tenure_months) == [str(v) for v in expected.index]  # bin order
    got = _values(result, "tenure_months")
    for label, row in expected.iterrows():
        assert got[str(label)] == (row["size"], pytest.approx(100 * row["mean"]))


def test_trigger_property_slices_each_answer_by_its_own_delivery(
    delivered: tuple[Engine, pd.DataFrame],
) -> None:
    engine, df = delivered
    result = compute(engine, "csat", by=["trigger:late_days"], metrics=METRICS)
    expected = df.groupby("late_days").top_box.agg(["size", "mean"]).sort_index()
    assert list(result.late_days) == [str(v) for v in expected.index]
    got = _values(result, "late_days")
    for v, row in expected.iterrows():
        assert got[str(v)] == (row["size"], pytest.approx(100 * row["mean"]))
    binned = compute(engine, "csat_mean", by=["trigger:late_days"], metrics=METRICS,
                     bins={"trigger:late_days": ["1", "3"]})  # fmt: skip
    cut = pd.cut(df.late_days, [-np.inf, 1, 3, np.inf], right=False,
                 labels=["< 1", "[1, 3)", ">= 3"])  # fmt: skip
    means = df.groupby(cut, observed=True).csat.agg(["size", "mean"])
    assert list(binned.late_days) == list(means.index.astype(str))
    got = _values(binned, "late_days")
    for label, row in means.iterrows():
        assert got[str(label)] == (row["size"], pytest.approx(row["mean"]))


def test_unknown_traits_and_trigger_properties_name_the_known_ones(
    delivered: tuple[Engine, pd.DataFrame],
) -> None:
    engine, _ = delivered
    with pytest.raises(Invalid, match=r"'nosuch'; known traits: segment, tenure_months"):
        compute(engine, "csat", by=["trait:nosuch"], metrics=METRICS)
    with pytest.raises(Invalid, match=r"known: trigger:late_days, trigger:order_id"):
        compute(engine, "csat", by=["trigger:nosuch"], metrics=METRICS)
    with pytest.raises(Invalid, match="record no triggering event"):
        compute(engine, "renewal_rate", by=["trigger:late_days"], metrics=METRICS)
    with pytest.raises(Invalid, match="its values are strings"):
        compute(engine, "csat", by=["segment"], metrics=METRICS, bins={"segment": ["1"]})
    with pytest.raises(Invalid, match="edges must increase"):
        compute(engine, "csat", by=["trait:tenure_months"], metrics=METRICS,
                bins={"trait:tenure_months": ["6", "0"]})  # fmt: skip
    with pytest.raises(Invalid, match="DIMENSION=EDGES"):
        parse_bins(["0,6"], ["trait:tenure_months", "trigger:late_days"])


def test_api_refuses_an_unknown_trait_and_bins_on_request(
    seeded: Engine, app_client: TestClient, read_headers: dict[str, str]
) -> None:
    df = _write(seeded)
    bad = app_client.get("/api/v1/metrics/csat", params={"by": "trait:nosuch"},
                         headers=read_headers)  # fmt: skip
    assert bad.status_code == 422 and "known traits: segment, tenure_months" in bad.text
    ok = app_client.get("/api/v1/metrics/csat_mean", headers=read_headers,
                        params={"by": "trigger:late_days", "bins": "1,3"})  # fmt: skip
    assert ok.status_code == 200, ok.text
    labels = [r["late_days"] for r in ok.json()["rows"]]
    assert labels == ["< 1", "[1, 3)", ">= 3"]
    assert sum(r["n"] for r in ok.json()["rows"]) == len(df)
    wrong = app_client.get("/api/v1/metrics/csat_mean", headers=read_headers,
                           params={"by": "trigger:late_days", "bins": "month=1,3"})  # fmt: skip
    assert wrong.status_code == 422 and "not sliced by it" in wrong.text


def test_cli_refuses_an_unknown_trait_and_bins_on_request(
    duckdb_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with duckdb_engine.begin() as conn:
        f.org(conn)
    _write(duckdb_engine)
    duckdb_engine.dispose()
    monkeypatch.setenv("CXM_DATABASE_URL", str(duckdb_engine.url))
    runner = CliRunner()
    run = runner.invoke(cli, ["metrics", "csat", "--by", "trait:nosuch"])
    assert run.exit_code == 2  # bad input (docs/cli.md)
    assert "no customer has the trait 'nosuch'" in run.output and "tenure_months" in run.output
    run = runner.invoke(cli, ["metrics", "csat_mean", "--by", "trait:tenure_months",
                              "--bins", "0,6,12,24", "--format", "json"])  # fmt: skip
    assert run.exit_code == 0, run.output
    labels = [r["tenure_months"] for r in json.loads(run.output)]
    assert labels == ["[0, 6)", "[6, 12)", "[12, 24)", ">= 24"]


def test_a_declared_type_replaces_the_inferred_one(
    seeded: Engine,
    app_client: TestClient,
    read_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    df = _write(seeded)
    backend = analytics(seeded)  # one backend throughout, as a server's readers keep theirs
    before = compute(backend, "csat", by=["trait:tenure_months"], metrics=METRICS)
    assert list(before.tenure_months) == [str(v) for v in sorted(df.tenure_months.unique())]
    listed = {r["name"]: r for r in app_client.get("/api/v1/traits", headers=read_headers).json()}
    assert listed["tenure_months"]["type"] == "number"
    assert listed["tenure_months"]["customers"] == 90
    assert app_client.put("/api/v1/traits/tenure_months", json={"type": "string"},
                          headers=read_headers).status_code == 403  # fmt: skip
    bad = app_client.put("/api/v1/traits/tenure_months", json={"type": "integer"},
                         headers=admin_headers)  # fmt: skip
    assert bad.status_code == 422 and "number, date, boolean, string" in bad.text
    ok = app_client.put("/api/v1/traits/tenure_months", json={"type": "string"},
                        headers=admin_headers)  # fmt: skip
    assert ok.status_code == 200
    result = compute(backend, "csat", by=["trait:tenure_months"], metrics=METRICS)
    backend.disconnect()
    # Read as text now: "10" sorts before "2".
    assert list(result.tenure_months) == sorted(str(v) for v in df.tenure_months.unique())
    with pytest.raises(Invalid, match="its values are strings"):
        compute(seeded, "csat", by=["trait:tenure_months"], metrics=METRICS,
                bins={"trait:tenure_months": ["0", "6"]})  # fmt: skip


def test_cli_lists_and_declares_trait_types(
    duckdb_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(duckdb_engine)
    duckdb_engine.dispose()
    monkeypatch.setenv("CXM_DATABASE_URL", str(duckdb_engine.url))
    runner = CliRunner()
    out = runner.invoke(cli, ["customers", "traits", "--format", "json"])
    assert out.exit_code == 0, out.output
    assert {r["name"]: r["type"] for r in json.loads(out.output)} == {
        "segment": "string", "tenure_months": "number"}  # fmt: skip
    assert runner.invoke(cli, ["customers", "trait-type", "segment", "colour"]).exit_code == 2
    assert runner.invoke(cli, ["customers", "trait-type", "segment", "boolean"]).exit_code == 0
    out = runner.invoke(cli, ["customers", "traits", "--format", "json"])
    assert {r["name"]: r["declared"] for r in json.loads(out.output)}["segment"] is True


def test_slice_targets_hold_for_typed_and_trigger_slices(
    delivered: tuple[Engine, pd.DataFrame],
) -> None:
    engine, _ = delivered
    with engine.begin() as conn:
        set_target(conn, METRICS, "csat", 55.0, "segment", "business")
        set_target(conn, METRICS, "csat", 90.0, "trigger:late_days", "0")
    by_segment = compute(engine, "csat", by=["segment"], metrics=METRICS)
    assert dict(zip(by_segment.segment, by_segment.target, strict=True)) == {
        "business": 55.0, "consumer": 80.0}  # fmt: skip
    late = compute(engine, "csat", by=["trigger:late_days"], metrics=METRICS)
    assert dict(zip(late.late_days, late.target, strict=True))["0"] == 90.0
    assert set(late.target[late.late_days != "0"]) == {80.0}


def test_date_traits_sort_and_bin_by_day(delivered: tuple[Engine, pd.DataFrame]) -> None:
    engine, df = delivered
    rng = np.random.default_rng(4)
    signup = {f"c{i:02d}": dt.date(2023, 1, 1) + dt.timedelta(days=int(rng.integers(0, 900)))
              for i in range(90)}  # fmt: skip
    with engine.begin() as conn:
        customers.set_traits(conn, [(c, "signup", d.isoformat(), T0) for c, d in signup.items()])
        assert traits.types(conn)["signup"] == "date"
    df = df.assign(signup=pd.to_datetime(df.customer_id.map(signup)))
    edges = ["2024-01-01", "2025-01-01"]
    result = compute(engine, "csat", by=["trait:signup"], metrics=METRICS,
                     bins={"trait:signup": edges})  # fmt: skip
    cut = pd.cut(df.signup, [pd.Timestamp.min, *map(pd.Timestamp, edges), pd.Timestamp.max],
                 right=False, labels=["< 2024-01-01", "[2024-01-01, 2025-01-01)",
                                      ">= 2025-01-01"])  # fmt: skip
    expected = df.groupby(cut, observed=True).top_box.agg(["size", "mean"])
    assert list(result.signup) == [str(v) for v in expected.index]
    got = _values(result, "signup")
    for label, row in expected.iterrows():
        assert got[str(label)] == (row["size"], pytest.approx(100 * row["mean"]))
    days = compute(engine, "csat", by=["trait:signup"], metrics=METRICS)
    assert list(days.signup) == sorted({d.isoformat() for d in df.signup.dt.date})
    with pytest.raises(Invalid, match="not all dates"):
        compute(engine, "csat", by=["trait:signup"], metrics=METRICS,
                bins={"trait:signup": ["6", "12"]})  # fmt: skip

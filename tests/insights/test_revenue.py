"""Revenue at risk by NPS category (against pandas over the raw tables) and by signal, and the
value of fixing a signal, on the demo company; the CLI and the scoped API."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cxm.cli.main import app as cli
from cxm.config import load_settings
from cxm.insights import service
from cxm.insights.revenue import Revenue
from cxm.org import auth
from tests.conftest import make_key


@pytest.fixture(scope="module")
def result(demo_company: tuple[Engine, Path]) -> Revenue:
    engine, root = demo_company
    return service.revenue(engine, root, reduction=0.5)


def _pandas_categories(engine: Engine) -> pd.DataFrame:
    """The NPS-category table recomputed with pandas from the raw log and answers."""
    with engine.connect() as conn:
        log = pd.DataFrame(conn.execute(sa.text(
            "select customer_id, name, event_time, revenue from interactions "
            "where customer_id is not null")).all())  # fmt: skip
        answers = pd.DataFrame(conn.execute(sa.text(
            "select customer_id, submitted_at, nps from responses where nps is not null "
            "and customer_id is not null and respondent_kind = 'customer'")).all())  # fmt: skip
    end = log.event_time.max()
    acq = log[log.name.isin(["invoice_sent", "subscription_renewed"])]
    last_acq = acq.groupby("customer_id").event_time.max()
    cancel = log[log.name == "subscription_cancelled"].groupby("customer_id").event_time.max()
    c = pd.DataFrame({"last_acq": last_acq}).join(cancel.rename("cancel"))
    c["churned"] = (c.cancel.notna() & (c.cancel >= c.last_acq)).astype(int)
    c["ref"] = c.cancel.where(c.churned == 1, end)
    inv = log[log.name == "invoice_sent"].join(c.ref, on="customer_id", how="inner")
    inv = inv[(inv.event_time <= inv.ref) & (inv.event_time > inv.ref - pd.Timedelta(days=365))]
    c["revenue"] = inv.groupby("customer_id").revenue.sum()
    c["revenue"] = c.revenue.fillna(0.0)
    a = answers.join(c.ref, on="customer_id", how="inner")
    a = a[a.submitted_at < a.ref].sort_values("submitted_at").groupby("customer_id").nps.last()
    c["category"] = pd.cut(a.reindex(c.index), [-1, 6, 8, 10],
                           labels=["detractor", "passive", "promoter"]).astype(object)  # fmt: skip
    c["category"] = c.category.fillna("none")
    return c


def test_revenue_by_nps_category_matches_pandas_over_the_raw_tables(
    demo_company: tuple[Engine, Path], result: Revenue
) -> None:
    c = _pandas_categories(demo_company[0])
    assert result.customers == len(c)
    for row in result.categories:
        f = c[c.category == row.category]
        assert row.customers == len(f), row.category
        assert row.churned == int(f.churned.sum())
        assert row.revenue_active == pytest.approx(f.revenue[f.churned == 0].sum())
        assert row.revenue_lost == pytest.approx(f.revenue[f.churned == 1].sum())
        assert row.revenue_at_risk == pytest.approx(row.revenue_active * row.churn_rate)
    by = {r.category: r for r in result.categories}
    # The demo's frictions lower the score and raise churn: detractors churn more than promoters.
    assert by["detractor"].churn_rate > by["promoter"].churn_rate


def test_each_planted_friction_puts_revenue_at_risk_and_fixing_it_keeps_a_share(
    demo_company: tuple[Engine, Path], result: Revenue
) -> None:
    truth = json.loads((demo_company[1] / "files" / "ground_truth.json").read_text())
    planted = {f["friction"] for f in truth["frictions"]}
    by = {s.key: s for s in result.signals}
    assert planted <= set(by)
    for key in planted:
        s = by[key]
        assert s.extra_churned > 0 and s.revenue_at_risk > 0
        assert s.customers_kept == pytest.approx(0.5 * s.extra_churned)
        assert s.revenue_kept == pytest.approx(0.5 * s.revenue_at_risk)
    whole = service.revenue(demo_company[0], demo_company[1], reduction=1.0)
    for s in whole.signals:
        assert s.revenue_kept == pytest.approx(s.revenue_at_risk)
    churn = service.attribution(demo_company[0], demo_company[1], "churn")
    for e in churn.signals:  # the same model as the churn attribution
        assert by[e.key].extra_churned == pytest.approx(e.cost)


def test_cli_and_api_revenue(demo_company: tuple[Engine, Path], result: Revenue,
                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from cxm.web.app import create_app

    engine, root = demo_company
    monkeypatch.setenv("CXM_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CXM_DATA_DIR", str(root))
    out = CliRunner().invoke(cli, ["insights", "revenue", "--json"])
    assert out.exit_code == 0, out.output
    # The same figures as the service's (sums may differ in the last digit with the order
    # the engine adds them in).
    shown = json.loads(out.output)["categories"]
    expected = [vars(c) for c in result.categories]
    assert [sorted(c) for c in shown] == [sorted(c) for c in expected]
    for got, want in zip(shown, expected, strict=True):
        for k, v in want.items():
            assert got[k] == (pytest.approx(v, rel=1e-9) if isinstance(v, float) else v), k
    assert CliRunner().invoke(cli, ["insights", "revenue", "--reduce", "150"]).exit_code == 2
    with engine.begin() as conn:
        uid = auth.create_user(conn, "lead.service@example.com", "manager",
                               department_key="service")  # fmt: skip
        manager = {"Authorization": f"Bearer {auth.create_api_key(conn, 'read', user_id=uid)}"}
    settings = load_settings(data_dir=root, database_url=str(engine.url))
    with TestClient(create_app(settings, engine=engine, run_worker=False)) as client:
        everyone = client.get("/api/v1/insights/revenue", headers=make_key(engine, "read"))
        assert everyone.status_code == 200, everyone.text
        assert len(everyone.json()["signals"]) == len(result.signals)
        mine = client.get("/api/v1/insights/revenue?reduce=20", headers=manager).json()
        assert {s["department"] for s in mine["signals"]} == {"service"}
        assert mine["reduction"] == pytest.approx(0.2)
        bad = client.get("/api/v1/insights/revenue?reduce=-1", headers=manager)
        assert bad.status_code == 422

"""The dashboards' insights on the demo company: each scorecard lists its signals with effect,
reach, trend and cost; the overview ranks departments by what their frictions cost."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.config import load_settings
from cxm.errors import Conflict
from cxm.insights import analytics, service
from cxm.store.analytics import reading
from tests.web.test_pages import ROLES_USERS, as_role, sign_in


def test_scorecards_and_overview_show_what_each_departments_frictions_cost(
    demo_company: tuple[Engine, Path],
) -> None:
    from cxm.web.app import create_app

    engine, root = demo_company
    with reading(engine) as con:
        panels = service.panels(con, root)
    revenue = {s.key: s for s in service.revenue(engine, root, reduction=1.0).signals}
    nps = {e.key: e for e in service.attribution(engine, root, "nps").signals}
    chain = panels.department("supply_chain")
    assert chain is not None
    assert {s.key for s in chain.signals} == {"late_delivery", "damaged_item"}
    for s in chain.signals:  # the same figures as the attribution and the revenue commands
        # Equal up to the order the engine adds in (the last digits of a float sum).
        assert s.revenue_at_risk == pytest.approx(revenue[s.key].revenue_at_risk, rel=1e-9)
        assert (s.nps_points, s.reach) == pytest.approx(
            (nps[s.key].nps_points, nps[s.key].reach), rel=1e-9
        )
        assert len(s.trend) >= 5 and all(n > 0 for _, n in s.trend)
    assert chain.revenue_at_risk == pytest.approx(sum(s.revenue_at_risk for s in chain.signals))
    ranked = [d.revenue_at_risk for d in panels.departments]
    assert ranked == sorted(ranked, reverse=True)
    settings = load_settings(data_dir=root, database_url=str(engine.url))
    with TestClient(create_app(settings, engine=engine, run_worker=False)) as client:
        as_role(client, engine, "cx_lead")
        card = client.get("/departments/supply_chain")
        assert card.status_code == 200
        assert "What its touchpoints cost" in card.text and "Late delivery" in card.text
        quiet = client.get("/departments/marketing")
        assert quiet.status_code == 200
        assert "No experience signals at" in quiet.text
        home = client.get("/")
        assert home.status_code == 200
        section = home.text.split('id="cost-title"', 1)[1].split("</section>", 1)[0]
        order = [d.name.replace("&", "&amp;") for d in panels.departments if d.signals]
        where = [section.index(f">{name}</a></th>") for name in order]
        assert where == sorted(where)  # ranked by revenue at risk
        assert "No signals at the touchpoints of" in section


# The page's 2026-10-01 to 2026-10-31: about 300 of the 479 answers (given from mid-September).
SINCE, UNTIL = dt.datetime(2026, 10, 1), dt.datetime(2026, 11, 1)


def test_the_panels_follow_the_pages_period_and_equal_a_computation_by_hand(
    demo_company: tuple[Engine, Path],
) -> None:
    from cxm.web.app import create_app

    engine, root = demo_company
    with reading(engine) as con:
        whole = service.panels(con, root)
        part = service.panels(con, root, SINCE, UNTIL)
        usable = list(service.signals(root).values())
        keys = [s.key for s in usable]
        # By hand: every answer's signals over the whole log, cut to the period in pandas.
        answers = analytics.with_controls(analytics.answer_signals(con, usable), con).execute()
        events = analytics.signal_events(con, usable).execute()
    answers = answers[(answers.submitted_at >= SINCE) & (answers.submitted_at < UNTIL)]
    answers = answers.dropna(subset=["segment", "tenure_months"]).reset_index(drop=True)
    segments = answers.segment.astype(str)
    x = pd.concat([answers[keys].astype(float),
                   pd.get_dummies(segments, prefix="s", dtype=float).drop(
                       columns=f"s_{segments.value_counts().index[0]}"),
                   pd.to_numeric(answers.tenure_months).astype(float)], axis=1)  # fmt: skip
    points = np.where(answers.nps >= 9, 100.0, np.where(answers.nps <= 6, -100.0, 0.0))
    fit = sm.OLS(points, sm.add_constant(x)).fit()
    chain, whole_chain = part.department("supply_chain"), whole.department("supply_chain")
    assert chain is not None and whole_chain is not None
    for s in chain.signals:
        assert s.reach == pytest.approx(float(answers[s.key].mean()), rel=1e-9)
        assert s.nps_points == pytest.approx(float(fit.params[s.key]), rel=1e-6)
        month = events[(events.signal == s.key) & (events.event_time >= SINCE)
                       & (events.event_time < UNTIL)]  # fmt: skip
        by_month = month.groupby(month.event_time.dt.strftime("%Y-%m")).customer_id.nunique()
        assert s.trend == list(by_month.items())
    # A narrower period changes the figures.
    before = {s.key: s for s in whole_chain.signals}
    assert all(s.reach != before[s.key].reach for s in chain.signals)
    assert all(s.nps_points != before[s.key].nps_points for s in chain.signals)
    assert chain.revenue_at_risk != whole_chain.revenue_at_risk
    settings = load_settings(data_dir=root, database_url=str(engine.url))
    with TestClient(create_app(settings, engine=engine, run_worker=False)) as client:
        try:
            as_role(client, engine, "cx_lead")
        except Conflict:  # the demo company is shared: another test made the CX lead
            assert sign_in(client, ROLES_USERS["cx_lead"][0]) == 303
        card = client.get("/departments/supply_chain?start=2026-10-01&end=2026-10-31")
        assert card.status_code == 200
        late = next(s for s in chain.signals if s.key == "late_delivery")
        row = card.text.split(">Late delivery</th>", 1)[1].split("</tr>", 1)[0]
        assert f"<td>{late.reach * 100:.1f}%</td>" in row
        assert f"{late.nps_points:+.1f} (" in row
        assert "from 2026-10-01 to 2026-10-31" in card.text
        home = client.get("/?start=2026-10-01&end=2026-10-31")
        section = home.text.split('id="cost-title"', 1)[1].split("</section>", 1)[0]
        assert f"{chain.revenue_at_risk:,.0f}" in section

"""The dashboards' insights on the demo company: each scorecard lists its signals with effect,
reach, trend and cost; the overview ranks departments by what their frictions cost."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.config import load_settings
from cxm.insights import service
from cxm.store.analytics import reading
from tests.web.test_pages import as_role


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

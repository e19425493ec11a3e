"""Keys left on pages: job kinds on the status page, metric alerts on the overview, roles."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.config import load_settings
from cxm.metrics.facts import metric_alerts
from cxm.store import jobs, utcnow
from cxm.web.app import job_handlers
from cxm.web.names import JOB_KINDS
from tests.actions.conftest import setup_org
from tests.web.test_names_and_lists import _text
from tests.web.test_pages import as_role


def test_every_kind_of_job_the_worker_runs_has_a_name(tmp_path: Path) -> None:
    kinds = set(job_handlers(load_settings(data_dir=tmp_path)))
    assert kinds - set(JOB_KINDS) == set()


def test_the_status_page_names_job_kinds(app_client: TestClient, seeded: Engine) -> None:
    with seeded.begin() as conn:
        jobs.enqueue(conn, "actions.sla", {"case_id": "x"}, run_at=utcnow() + dt.timedelta(days=1))
        jobs.enqueue(conn, "text.discover", {}, run_at=utcnow() + dt.timedelta(days=1))
    page = _text(as_role(app_client, seeded, "admin").get("/status").text)
    jobs_table = re.search(r"Kind Waiting(.*?)Last errors", page)
    assert jobs_table is not None
    assert "Case SLA checks 1" in jobs_table.group(1)
    assert "Theme discovery 1" in jobs_table.group(1)
    assert "actions.sla" not in page and "text.discover" not in page


def test_the_overview_names_an_alert_s_metric_and_slice(
    app_client: TestClient, seeded: Engine
) -> None:
    with seeded.begin() as conn:
        setup_org(conn)
        conn.execute(
            metric_alerts.insert().values(
                id="a1", metric="csat", grain="month", slice="touchpoint=delivery",
                period="2026-11-01", previous_period="2026-10-01", value=71.5,
                previous_value=80.25, p_value=0.001, p_adjusted=0.004,
                method="two-proportion z", status="open", created_at=utcnow(),
            )
        )  # fmt: skip
    page = _text(as_role(app_client, seeded, "cx_lead").get("/").text)
    alerts = re.search(r"Open alerts(.*)", page)
    assert alerts is not None
    assert "CSAT Home delivery, month of 2026-11-01" in alerts.group(1)
    assert "touchpoint=delivery" not in page
    assert "(CX lead)" in page and "(cx_lead)" not in page  # the signed-in role, by name

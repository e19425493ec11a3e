"""The weekly department digest: its figures against hand counts, the schedule through a real
SMTP server (sent once a week, a failure recorded and retried), and its scope."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.actions import digest, service
from cxm.actions.tables import cases, report_sends
from cxm.config import load_settings
from cxm.errors import Forbidden, Invalid
from cxm.org import auth
from cxm.org.scope import Scope
from cxm.text.tables import text_themes
from cxm.yamldoc import parse
from tests.actions.conftest import DETRACTOR_RULES, Inbox, add_response, setup_org
from tests.conftest import make_key

WEEK = dt.date(2026, 11, 16)  # a Monday
THIS = dt.datetime(2026, 11, 17, 10, tzinfo=dt.UTC)
LAST = dt.datetime(2026, 11, 10, 10, tzinfo=dt.UTC)
SENDING_DAY = dt.datetime(2026, 11, 23, 7, tzinfo=dt.UTC)  # the Monday after WEEK


@pytest.fixture
def store(engine: Engine) -> Engine:
    """Supply chain: delivery CSAT 40 answers this week (30 top-two-box), 40 last week (20);
    returns CSAT this week 5 of 5 each week (below the minimum sample); one breached case."""
    with engine.begin() as conn:
        setup_org(conn)
        for csat in [5] * 30 + [2] * 10:
            add_response(conn, None, "delivery", csat=csat, at=THIS, survey="delivery_csat")
        for csat in [4] * 20 + [1] * 20:
            add_response(conn, None, "delivery", csat=csat, at=LAST, survey="delivery_csat")
        late = [
            add_response(conn, None, "delivery", csat=1, at=THIS, survey="delivery_csat")
            for _ in range(3)
        ]
        for rid, theme in zip(late, ["late_delivery", "late_delivery", "damaged"], strict=True):
            conn.execute(
                text_themes.insert().values(
                    source="survey_response", source_id=rid, taxonomy="starter",
                    theme_key=theme, method="keyword", similarity=None, tagged_at=THIS,
                )
            )  # fmt: skip
        for _ in range(5):
            add_response(conn, None, "returns", csat=5, at=THIS, survey="delivery_csat")
            add_response(conn, None, "support_chat", nps=0, at=THIS)  # another department
        service.apply_rules(conn, parse(DETRACTOR_RULES))
        service.run_rules(conn)
        first = conn.execute(
            sa.select(cases.c.id).where(cases.c.department_key == "service").limit(1)
        ).scalar_one()
        conn.execute(cases.update().where(cases.c.id == first).values(sla_state="breached"))
        auth.create_user(conn, "maria@example.com", "manager", password="a long password",
                         department_key="supply_chain")  # fmt: skip
    return engine


def test_the_digest_reports_the_week_against_the_one_before(store: Engine) -> None:
    d = digest.build(store, "supply_chain", WEEK)
    csat = next(s for s in d.scores if s.metric == "csat")
    # 30 of 43 this week in the top two boxes (the three late ones score 1), 20 of 40 before.
    assert csat.n == 48 and csat.previous_n == 40  # returns' five answers count for the dept
    assert csat.value == pytest.approx(100 * 35 / 48)
    assert csat.previous == pytest.approx(50.0)
    assert csat.change == pytest.approx(100 * 35 / 48 - 50.0)
    assert csat.ci_low is not None and csat.ci_low < csat.value < csat.ci_high
    nps = next(s for s in d.scores if s.metric == "nps")
    assert nps.n == 0 and nps.value is None  # the service desk's detractors are not theirs
    # Movers: only touchpoints with enough answers in both weeks (returns has 5, then none).
    assert [(m["touchpoint"], m["metric"]) for m in d.movers] == [("Home delivery", "csat")]
    assert d.movers[0]["change"] == pytest.approx(100 * 30 / 43 - 50.0)
    assert [(t["theme"], t["mentions"]) for t in d.themes] == [
        ("late_delivery", 2),
        ("damaged", 1),
    ]
    assert d.overdue == []  # the breached case belongs to Customer Service
    service_digest = digest.build(store, "service", WEEK)
    assert len(service_digest.overdue) == 1


def test_a_week_must_start_on_a_monday(store: Engine) -> None:
    with pytest.raises(Invalid, match="starts on a Monday; 2026-11-17 is a Tuesday"):
        digest.build(store, "supply_chain", WEEK + dt.timedelta(days=1))


def test_subscribers_get_one_email_a_week_and_a_failure_is_retried(
    store: Engine, smtp: tuple[int, Inbox], refused_port: int
) -> None:
    port, inbox = smtp
    with store.begin() as conn:
        digest.subscribe(conn, Scope("admin"), "maria@example.com", "supply_chain", weekday=0)
    down = load_settings(smtp_port=refused_port, base_url="http://cxm.test")
    assert digest.send_due(store, down, now=SENDING_DAY) == {"sent": 0, "failed": 1}
    with store.connect() as conn:
        (status, error) = conn.execute(sa.select(report_sends.c.status, report_sends.c.error)).one()
    assert status == "failed" and "no mail server answered" in error and "Errno" not in error
    up = load_settings(smtp_port=port, base_url="http://cxm.test")
    assert digest.send_due(store, up, now=SENDING_DAY) == {"sent": 1, "failed": 0}
    assert digest.send_due(store, up, now=SENDING_DAY + dt.timedelta(hours=3)) == {
        "sent": 0,
        "failed": 0,
    }
    tuesday = SENDING_DAY + dt.timedelta(days=1)
    assert digest.send_due(store, up, now=tuesday) == {"sent": 0, "failed": 0}
    (mail,) = inbox.messages
    assert mail["to"] == "maria@example.com"
    message = email.message_from_string(mail["data"], policy=email.policy.default)
    assert message["Subject"] == (
        "Supply Chain & Delivery: your week in customer experience (16 Nov to 22 Nov 2026)"
    )
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    # 35 of 48 in the top two boxes against 20 of 40: 72.9% and +22.9 points.
    assert "- CSAT: 72.9% (n=48, 95% CI " in text and "; +22.9 pts" in text
    assert "- late_delivery: 2 comments" in text
    assert "Open cases past their SLA: 0" in text
    assert "http://cxm.test/departments/supply_chain" in text
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert "<li>late_delivery: 2 comments</li>" in html


def test_a_manager_subscribes_to_their_own_department_only(store: Engine) -> None:
    manager = Scope("manager", department_key="supply_chain")
    with store.begin() as conn:
        with pytest.raises(Forbidden, match="own department"):
            digest.subscribe(conn, manager, "maria@example.com", "service")
        digest.subscribe(conn, manager, "maria@example.com", "supply_chain")


def test_the_api_hides_another_departments_digest(store: Engine, tmp_path: Path) -> None:
    from cxm.web.app import create_app

    with store.begin() as conn:
        maria = next(u for u in auth.list_users(conn) if u["email"] == "maria@example.com")
        token = auth.create_api_key(conn, "read", user_id=str(maria["id"]))
    settings = load_settings(data_dir=tmp_path, database_url=str(store.url))
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings, engine=store, run_worker=False)) as api:
        own = api.get("/api/v1/reports/digest/supply_chain?week=2026-11-16", headers=headers)
        assert own.status_code == 200, own.text
        csat = next(s for s in own.json()["scores"] if s["metric"] == "csat")
        assert csat["n"] == 48
        other = api.get("/api/v1/reports/digest/service?week=2026-11-16", headers=headers)
        assert other.status_code == 404
        admin = make_key(store, "admin")
        tuesday = api.get("/api/v1/reports/digest/service?week=2026-11-17", headers=admin)
        assert tuesday.status_code == 422 and "Monday" in tuesday.text


def test_the_demo_subscribes_its_manager_and_sends_the_last_week_once(
    store: Engine, smtp: tuple[int, Inbox], refused_port: int
) -> None:
    from cxm.demo.load import DIGEST_READER, send_demo_digest

    port, inbox = smtp
    with store.begin() as conn:
        auth.create_user(conn, DIGEST_READER, "manager", password="a long password",
                         department_key="supply_chain")  # fmt: skip
    down = send_demo_digest(store, load_settings(smtp_port=refused_port))
    assert "not sent to delivery.manager@northwind.example" in down
    # The last answers are on Tuesday 17 November: the last complete week is the one before.
    assert "cxm reports digest supply_chain --week 2026-11-09" in down
    sent = send_demo_digest(store, load_settings(smtp_port=port))
    assert sent == f"the week of 2026-11-09 sent to {DIGEST_READER}"
    (mail,) = inbox.messages
    assert "(9 Nov to 15 Nov 2026)" in mail["data"]
    with store.connect() as conn:
        assert len(digest.subscriptions(conn, DIGEST_READER)) == 1  # subscribed once

"""Kudos: positive comments about an employee reach them and their manager, nobody else."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.engine import Engine

from cxm.employees import kudos
from cxm.employees.directory import EmployeeIn, apply
from cxm.interactions.tables import interactions
from cxm.surveys.facts import responses_table
from tests.employees.factories import build_org

T = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)


@pytest.fixture
def store(engine: Engine) -> Engine:
    with engine.begin() as conn:
        build_org(conn)
        apply(conn, [EmployeeIn("E1", "ops_a", name="Ada Lead"),
                     EmployeeIn("E2", "ops_a", name="Bo Member", manager_id="E1"),
                     EmployeeIn("E3", "ops_a", name="Cy Peer", manager_id="E1")])  # fmt: skip
        conn.execute(interactions.insert(), [
            {"event_id": f"t{i}", "type": "track", "name": "ticket_closed", "event_time": T,
             "received_at": T, "customer_id": "c1", "touchpoint_key": "support_chat",
             "properties": {"agent_id": "E2"}, "source": "api"} for i in (1, 2)
        ])  # fmt: skip
        rows = [("r1", "t1", 5, "Quick and kind help"), ("r2", "t2", 1, "Rude and slow"),
                ("r3", None, 5, "Thanks to ada lead in the store!"),
                ("r4", None, 2, "Ada Lead was no help")]  # fmt: skip
        for rid, trigger, csat, comment in rows:
            conn.execute(responses_table.insert().values(
                id=rid, survey_key="support_csat", survey_version=1, respondent_kind="customer",
                customer_id="c1", trigger_event_id=trigger, touchpoint_key="support_chat",
                started_at=T, submitted_at=T, completed=True, csat=csat, comment=comment,
                source="web"))  # fmt: skip
    return engine


def test_kudos_reach_the_employee_and_their_manager_only(store: Engine) -> None:
    with store.connect() as conn:
        bo = kudos.feed(store, conn, "E2")
        ada = kudos.feed(store, conn, "E1")
        cy = kudos.feed(store, conn, "E3")
    assert [(k.employee_id, k.comment, k.why) for k in bo] == [
        ("E2", "Quick and kind help", "handled")]  # fmt: skip
    assert sorted((k.employee_id, k.why) for k in ada) == [("E1", "named"), ("E2", "handled")]
    assert cy == []  # a peer sees no colleague's kudos
    assert all("Rude" not in k.comment and "no help" not in k.comment for k in ada)

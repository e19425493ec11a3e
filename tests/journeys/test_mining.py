"""Mining a journey over a small log, checked against counts worked out by hand."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy.engine import Connection, Engine

from cxm.errors import Invalid
from cxm.interactions import service as interactions
from cxm.journeys import service
from cxm.journeys.definitions import Journey, from_doc
from cxm.org import service as org
from cxm.surveys.tables import responses
from cxm.yamldoc import parse
from tests.web.factories import ORG

JOURNEY = """\
name: orders
case: order_id
activities:
  - {event: order_placed, where: {fulfilment: carry_out}, label: order_collected}
  - {event: order_placed}
  - {event: delivery_late}
  - {event: order_delivered}
  - {event: ticket_opened, has: [repeat_of], label: repeat contact}
  - {event: ticket_opened}
  - {event: return_requested}
start: [order_placed]
success: [order_delivered]
failure: [return_requested]
max_duration: 10d
"""

# (customer, order, event, touchpoint, day of September, extra properties)
LOG: list[tuple[str, str | None, str, str, int, dict[str, Any]]] = [
    ("a", "O1", "order_placed", "invoice", 1, {}),
    ("a", "O1", "order_delivered", "delivery", 3, {}),
    ("b", "O2", "order_placed", "invoice", 1, {}),
    ("b", "O2", "delivery_late", "delivery", 2, {}),
    ("b", "O2", "order_delivered", "delivery", 4, {}),
    ("b", "O2", "ticket_opened", "support_chat", 5, {}),
    ("b", "O2", "ticket_opened", "support_chat", 6, {"repeat_of": "T1"}),
    ("b", "O2", "return_requested", "delivery", 7, {}),
    ("c", "O3", "order_placed", "invoice", 1, {}),
    ("c", "O3", "order_delivered", "delivery", 2, {}),
    ("c", "O4", "delivery_late", "delivery", 1, {}),  # no start: not a case
    ("a", "O5", "order_placed", "invoice", 1, {}),
    ("a", "O5", "order_delivered", "delivery", 20, {}),  # after the 10 days: left out
    ("a", None, "ticket_opened", "support_chat", 2, {}),  # no order id: in no case
    ("c", "O6", "order_placed", "invoice", 1, {"fulfilment": "carry_out"}),  # never starts
    ("b", None, "subscription_cancelled", "support_chat", 10, {}),
]


def _journey() -> Journey:
    return from_doc(parse(JOURNEY, "orders.yaml"))


def ingest_log(conn: Connection) -> dict[str, str]:
    """The org and ``LOG`` in the store; each customer letter's customer id."""
    events = []
    for n, (who, order, name, tp, day, extra) in enumerate(LOG):
        props = {**({"order_id": order} if order else {}), **extra}
        events.append({
            "event_id": f"e{n}", "name": name, "email": f"{who}@x.com", "touchpoint": tp,
            "timestamp": f"2026-09-{day:02d}T10:00:00Z", "properties": props,
        })  # fmt: skip
    org.apply_org(conn, parse(ORG))
    stored = interactions.ingest(conn, events, "api")
    return {LOG[r.index][0]: r.customer_id for r in stored}


@pytest.fixture
def store(seeded: Engine) -> Engine:
    with seeded.begin() as conn:
        ids = ingest_log(conn)
        at = dt.datetime(2026, 9, 8, tzinfo=dt.UTC)
        conn.execute(responses.insert(), [{
            "id": "r1", "survey_key": "nps", "survey_version": 1, "respondent_kind": "customer",
            "customer_id": ids["b"], "completed": True, "started_at": at, "submitted_at": at,
            "nps": 2, "nps_category": "detractor", "source": "import",
        }])  # fmt: skip
    return seeded


def test_cases_outcomes_and_throughput_follow_the_definition(store: Engine) -> None:
    s = service.summary(store, _journey())
    assert s["cases"] == 4  # O1, O2, O3, O5
    assert {k: v["count"] for k, v in s["outcomes"].items()} == {
        "success": 2, "failure": 1, "open": 1,
    }  # fmt: skip
    assert s["churn"]["count"] == 1  # b cancelled after O2 started
    assert s["nps"]["n"] == 1 and s["nps"]["nps"] == -100.0
    # O5 0 h, O3 24 h, O1 48 h, O2 144 h
    assert s["throughput_hours"]["median"] == pytest.approx(36.0)
    assert s["throughput_hours"]["mean"] == pytest.approx(54.0)
    assert s["rework"]["count"] == 0  # the repeat ticket carries its own label


def test_directly_follows_graph_counts_each_step_and_its_median_time(store: Engine) -> None:
    g = service.directly_follows(store, _journey())
    edges = {(e["source"], e["target"]): e for e in g["edges"]}
    assert {k: e["frequency"] for k, e in edges.items()} == {
        ("order_placed", "order_delivered"): 2,
        ("order_placed", "delivery_late"): 1,
        ("delivery_late", "order_delivered"): 1,
        ("order_delivered", "ticket_opened"): 1,
        ("ticket_opened", "repeat contact"): 1,
        ("repeat contact", "return_requested"): 1,
    }
    assert edges[("order_placed", "order_delivered")]["median_hours"] == pytest.approx(36.0)
    nodes = {n["activity"]: n["events"] for n in g["nodes"]}
    assert nodes["order_placed"] == 4 and "order_collected" not in nodes


def test_variants_are_counted_with_their_share(store: Engine) -> None:
    v = service.variants(store, _journey())
    assert v["distinct"] == 3
    top = v["variants"][0]
    assert (top["variant"], top["cases"], top["share"]) == (
        "order_placed → order_delivered", 2, 0.5,
    )  # fmt: skip
    failed = next(r for r in v["variants"] if r["failure"]["count"])
    assert failed["variant"].startswith("order_placed → delivery_late")


def test_hand_offs_are_changes_of_owning_department(store: Engine) -> None:
    pairs = {(p["source"], p["target"]): p["frequency"] for p in
             service.summary(store, _journey())["handoffs"]["pairs"]}  # fmt: skip
    assert pairs == {("billing", "supply_chain"): 3, ("supply_chain", "service"): 1,
                     ("service", "supply_chain"): 1}  # fmt: skip


def test_friction_ranks_the_paths_of_failed_cases_with_lift(store: Engine) -> None:
    f = service.friction(store, _journey(), min_cases=1, limit=100)
    assert f["base"]["count"] == 1 and f["base"]["n"] == 4
    late = next(r for r in f["sequences"] if r["path"] == "delivery_late")
    assert late["cases"] == 1 and late["rate"]["rate"] == 1.0 and late["lift"] == 4.0
    assert late["rate"]["low"] < 1.0  # Wilson: one case proves little
    assert all("return_requested" not in r["path"] for r in f["sequences"])
    assert f["sequences"][0]["lift"] == 4.0


def test_drop_off_counts_cases_ending_at_a_step_without_success(store: Engine) -> None:
    acts = {a["activity"]: a for a in service.summary(store, _journey())["activities"]}
    # O2 ends at return_requested (failure), O5 at order_placed (open); O1 and O3 succeeded.
    assert {k: a["dropped"] for k, a in acts.items() if a["dropped"]} == {
        "return_requested": 1, "order_placed": 1,
    }  # fmt: skip
    assert acts["order_placed"]["drop_off"] == 0.25
    assert acts["ticket_opened"]["rework_cases"] == 0 and acts["ticket_opened"]["cases"] == 1


def test_steps_and_hand_offs_carry_churn_and_nps_of_their_cases(store: Engine) -> None:
    s = service.summary(store, _journey())
    late = next(a for a in s["activities"] if a["activity"] == "delivery_late")
    assert late["churn"]["count"] == 1 and late["churn"]["n"] == 1  # only O2, b churned
    assert (late["nps"]["n"], late["nps"]["nps"]) == (1, -100.0)  # b's detractor answer
    placed = next(a for a in s["activities"] if a["activity"] == "order_placed")
    assert (placed["churn"]["count"], placed["churn"]["n"]) == (1, 4)
    pair = next(h for h in s["handoffs"]["pairs"] if h["source"] == "billing")
    assert (pair["cases"], pair["churn"]["count"], pair["failure"]["count"]) == (3, 1, 1)
    v = service.variants(store, _journey())["variants"]
    assert next(r for r in v if r["failure"]["count"])["nps"]["nps"] == -100.0
    assert v[0]["nps"] is None  # a and c never answered


def test_a_period_keeps_the_cases_starting_in_it(store: Engine) -> None:
    # Every case starts on 1 September; none starts in the days after.
    first = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    assert (
        service.summary(store, _journey(), since=first, until=first + dt.timedelta(days=1))["cases"]
        == 4
    )
    later = service.variants(store, _journey(), since=first + dt.timedelta(hours=11))
    assert later["distinct"] == 0 and later["variants"] == []


def test_an_empty_period_is_refused(store: Engine) -> None:
    first = dt.datetime(2026, 9, 1)
    with pytest.raises(Invalid, match="the period is empty"):
        service.friction(store, _journey(), since=first, until=first)


def test_detractor_friction_reads_only_cases_whose_customers_answered(store: Engine) -> None:
    f = service.friction(store, _journey(), "detractor", min_cases=1, limit=100)
    assert (f["base"]["n"], f["base"]["count"]) == (1, 1)  # only b answered (a detractor)
    assert f["sequences"] and all(r["cases"] == 1 for r in f["sequences"])
    assert any(r["path"] == "delivery_late" for r in f["sequences"])


def test_map_nodes_name_the_department_owning_the_activity(store: Engine) -> None:
    nodes = service.directly_follows(store, _journey())["nodes"]
    assert {n["activity"]: n["department"] for n in nodes} == {
        "order_placed": "billing", "delivery_late": "supply_chain",
        "order_delivered": "supply_chain", "ticket_opened": "service",
        "repeat contact": "service", "return_requested": "supply_chain",
    }  # fmt: skip


def test_reads_of_a_mined_view_equal_the_reads_on_their_own(store: Engine) -> None:
    journey = _journey()
    with service.mined(store, journey) as m:
        shared = (service.summary(m, journey), service.variants(m, journey),
                  service.directly_follows(m, journey), service.stage_flows(m, journey),
                  service.friction(m, journey, min_cases=1))  # fmt: skip
        with pytest.raises(ValueError, match="mined view"):
            service.summary(m, journey, outcome="failure")
    alone = (service.summary(store, journey), service.variants(store, journey),
             service.directly_follows(store, journey), service.stage_flows(store, journey),
             service.friction(store, journey, min_cases=1))  # fmt: skip
    assert shared == alone

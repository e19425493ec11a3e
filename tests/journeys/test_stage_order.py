"""Conformance to a journey's defined stage order, on a small log whose deviations are known:
the engine's counts, the page, the CLI, and pm4py's alignments on the stage-order net."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cxm.errors import Invalid
from cxm.interactions import service as interactions
from cxm.journeys import conformance, mining, service
from cxm.journeys.definitions import Journey, from_doc
from cxm.org import service as org
from cxm.store.analytics import reading
from cxm.yamldoc import parse

ORG = """\
touchpoints:
  - {key: checkout, name: Checkout, channel: web, stage: buy, owner: {department: sales}}
  - {key: delivery, name: Home delivery, channel: delivery, stage: receive,
     owner: {department: supply_chain}}
  - {key: returns, name: Returns, channel: delivery, stage: get help,
     owner: {department: supply_chain}}
  - {key: app, name: App, channel: app, stage: use, owner: {department: product}}
  - {key: chat, name: Support chat, channel: chat, stage: get help, owner: {department: service}}
  - {key: invoice, name: Invoice, channel: billing, stage: pay, owner: {department: billing}}
"""

JOURNEY = """\
name: orders
case: order_id
activities: [{event: '*'}]
start: ['*']
success: [delivered]
max_duration: 30d
stages: [buy, receive, {stage: use, optional: true}, {stage: get help, optional: true}]
"""

# Per case: its events' touchpoints in order (None: an event at no touchpoint), and why.
CASES: dict[str, tuple[list[str | None], str | None]] = {
    "C1": (["checkout", "delivery", "app"], None),
    "C2": (["checkout", "delivery", "delivery", "chat"], None),  # a stage repeated in place
    "C3": (["checkout", "chat"], "skipped stage"),  # buy -> get help passes over receive
    "C4": (["delivery", "chat"], "skipped stage"),  # starts past buy
    "C5": (["checkout", "delivery", "chat", "delivery"], "backwards hand-off"),  # service -> supply
    "C6": (["checkout", "delivery", "returns", "delivery"], "backwards"),  # supply_chain both
    "C7": (["checkout", "invoice", "delivery"], "undefined stage"),  # pay is not in the order
    "C8": (["checkout", None, "delivery"], None),  # an event without a stage is left out
    "C9": ([None, None], None),  # nothing staged: not checked
}
NAMES = {"checkout": "ordered", "delivery": "delivered", "returns": "returned",
         "app": "registered", "chat": "asked", "invoice": "billed", None: "noted"}  # fmt: skip


def _journey(text: str = JOURNEY) -> Journey:
    return from_doc(parse(text, "orders.yaml"))


@pytest.fixture
def store(seeded: Engine) -> Engine:
    events = []
    for case, (touchpoints, _) in CASES.items():
        for k, tp in enumerate(touchpoints):
            events.append({
                "event_id": f"{case}-{k}", "name": NAMES[tp], "email": f"{case}@x.com",
                "timestamp": f"2026-09-01T{10 + k:02d}:00:00Z", "properties": {"order_id": case},
                **({"touchpoint": tp} if tp else {}),
            })  # fmt: skip
    with seeded.begin() as conn:
        org.apply_org(conn, parse(ORG))
        interactions.ingest(conn, events, "api")
    return seeded


def test_cases_and_deviations_are_the_known_ones(store: Engine) -> None:
    out = conformance.stage_order(store, _journey())
    assert out["cases"] == 9 and out["staged"] == 8
    assert (out["conforming"]["count"], out["conforming"]["n"]) == (3, 8)
    kinds = {k["kind"]: k["count"] for k in out["kinds"]}
    assert kinds == {"skipped stage": 2, "backwards": 1, "backwards hand-off": 1,
                     "undefined stage": 1}  # fmt: skip
    found = {(d["kind"], d["source"], d["target"], d["cases"], d["events"], tuple(d["skipped"]))
             for d in out["deviations"]}  # fmt: skip
    assert found == {
        ("skipped stage", "buy", "get help", 1, 1, ("receive",)),
        ("skipped stage", mining.START, "receive", 1, 1, ("buy",)),
        ("backwards hand-off", "get help", "receive", 1, 1, ()),
        ("backwards", "get help", "receive", 1, 1, ()),
        ("undefined stage", "buy", "pay", 1, 1, ()),
    }
    assert out["stages"][2] == {"stage": "use", "optional": True}


def test_each_case_deviates_as_written(store: Engine) -> None:
    with reading(store) as con:
        ev = mining.events(con, _journey())
        dev = mining.stage_deviations(con, ev, _journey()).to_pyarrow().to_pylist()
    got = {r["case_id"]: r["kind"] for r in dev}
    assert len(dev) == len(got)  # one deviation per deviating case here
    assert got == {c: why for c, (_, why) in CASES.items() if why}


def test_pm4py_alignments_on_the_stage_net_fit_exactly_the_conforming_cases(
    store: Engine,
) -> None:
    journey = _journey()
    with reading(store) as con:
        ev = mining.events(con, journey)
        rows = mining.stage_sequences(con, ev).to_pyarrow().to_pylist()
        off = {r["case_id"] for r in
               mining.stage_deviations(con, ev, journey).to_pyarrow().to_pylist()}  # fmt: skip
    rows.sort(key=lambda r: r["case_id"])
    assert [r["stages"] for r in rows][:2] == ["buy → receive → use", "buy → receive → get help"]
    fitness = conformance.stage_alignments(journey, [r["stages"].split(mining.SEP) for r in rows])
    fits = {r["case_id"] for r, f in zip(rows, fitness, strict=True) if f == pytest.approx(1.0)}
    assert fits == {r["case_id"] for r in rows} - off == {"C1", "C2", "C8"}


def test_without_stages_the_org_order_is_used_with_every_stage_optional(store: Engine) -> None:
    journey = _journey(JOURNEY.replace(
        "stages: [buy, receive, {stage: use, optional: true}, {stage: get help, optional: true}]\n",
        ""))  # fmt: skip
    out = conformance.stage_order(store, journey)
    kinds = {k["kind"]: k["count"] for k in out["kinds"]}
    # Only moves back remain: get help and pay come after receive in the org model's order.
    assert kinds == {"skipped stage": 0, "backwards": 1, "backwards hand-off": 2,
                     "undefined stage": 0}  # fmt: skip
    assert (out["conforming"]["count"], out["staged"]) == (5, 8)


@pytest.mark.parametrize(("stages", "message"), [
    ("[buy, shopping]", "'shopping' is not a stage"),
    ("[buy, buy]", "'buy' is listed twice"),
    ("[]", "at least one stage"),
])  # fmt: skip
def test_a_bad_stage_order_names_the_mistake(stages: str, message: str) -> None:
    text = JOURNEY.replace(
        "[buy, receive, {stage: use, optional: true}, {stage: get help, optional: true}]", stages
    )
    with pytest.raises(Invalid, match=message):
        _journey(text)


def test_cli_show_prints_the_stage_order_check(store: Engine, monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:  # fmt: skip
    from cxm.cli.main import app

    monkeypatch.setenv("CXM_DATABASE_URL", store.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CXM_DATA_DIR", str(tmp_path))
    (tmp_path / "journeys").mkdir()
    (tmp_path / "journeys" / "orders.yaml").write_text(JOURNEY)
    runner = CliRunner()
    done = runner.invoke(app, ["journeys", "show", "orders", "--format", "json"])
    assert done.exit_code == 0, done.output
    shown = json.loads(done.output)["stage_order"]
    assert shown == json.loads(json.dumps(conformance.stage_order(store, _journey()), default=str))
    text = runner.invoke(app, ["journeys", "show", "orders"])
    assert text.exit_code == 0, text.output
    assert "follow the stage order buy → receive → use? → get help?: 3 of 8" in text.output
    assert "backwards hand-off: get help → receive" in text.output


def test_the_summary_reads_one_mined_view(store: Engine) -> None:
    journey = _journey()
    with service.mined(store, journey) as m:
        assert conformance.stage_order(m, journey) == conformance.stage_order(store, journey)

"""Partners in the org file: declared, named by touchpoints, exported, refused when unknown."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cxm.cli.main import app
from cxm.errors import Invalid, NotFound
from cxm.interactions import service as interactions
from cxm.metrics import load as load_metrics
from cxm.metrics import service as metrics
from cxm.org import auth, service
from cxm.surveys.tables import responses
from cxm.yamldoc import parse

runner = CliRunner()

ORG = """\
partners:
  - {key: swiftpost, name: SwiftPost Couriers, kind: courier}
  - {key: fitters, name: Fitters Ltd, kind: installer}
touchpoints:
  - key: delivery
    name: Home delivery
    channel: delivery
    stage: receive
    owner: {department: supply_chain}
    partner: swiftpost
  - key: support_chat
    name: Support chat
    channel: chat
    stage: get help
    owner: {department: service}
"""


def test_partners_apply_export_and_round_trip(seeded: Engine) -> None:
    with seeded.begin() as conn:
        first = service.apply_org(conn, parse(ORG))
    with seeded.begin() as conn:
        again = service.apply_org(conn, parse(ORG))
        found = {p.key: p for p in service.list_partners(conn)}
        delivery = service.get_touchpoint(conn, "delivery")
        chat = service.get_touchpoint(conn, "support_chat")
        exported = service.export_org(conn)
    assert first.created["partners"] == 2 and "partners" not in again.created
    assert found["swiftpost"].kind == "courier" and found["swiftpost"].touchpoints == ["delivery"]
    assert found["fitters"].touchpoints == []
    # Run by the partner, still owned by the department.
    assert delivery.partner_key == "swiftpost" and delivery.department_key == "supply_chain"
    assert chat.partner_key is None
    assert {p["key"] for p in exported["partners"]} == {"swiftpost", "fitters"}
    by_key = {t["key"]: t for t in exported["touchpoints"]}
    assert by_key["delivery"]["partner"] == "swiftpost" and "partner" not in by_key["support_chat"]
    with seeded.begin() as conn:  # the export is a valid org file that changes nothing
        summary = service.apply_org(conn, parse(yaml.safe_dump(exported)))
    assert summary.created == {} and summary.updated == {}


def test_unknown_partner_is_refused_with_its_line_and_nothing_written(seeded: Engine) -> None:
    bad = ORG.replace("partner: swiftpost", "partner: quickship")
    with seeded.begin() as conn, pytest.raises(Invalid) as caught:
        service.apply_org(conn, parse(bad))
    message = str(caught.value)
    assert "line 10" in message and "'quickship'" in message and "swiftpost" in message
    with seeded.connect() as conn:
        assert service.list_partners(conn) == []
    twice = ORG.replace("key: fitters", "key: swiftpost")
    with seeded.begin() as conn, pytest.raises(Invalid, match=r"line 3.*appears twice"):
        service.apply_org(conn, parse(twice))
    wrong_kind = ORG.replace("kind: installer", "kind: plumber")
    with seeded.begin() as conn, pytest.raises(Invalid, match="line 3"):
        service.apply_org(conn, parse(wrong_kind))


def test_partner_users_need_a_known_partner_and_nothing_else(seeded: Engine) -> None:
    with seeded.begin() as conn:
        service.apply_org(conn, parse(ORG))
    with seeded.begin() as conn:
        with pytest.raises(Invalid, match="needs a partner"):
            auth.create_user(conn, "p@x.example", "partner")
        with pytest.raises(NotFound, match="known: fitters, swiftpost"):
            auth.create_user(conn, "p@x.example", "partner", partner_key="nobody")
        with pytest.raises(Invalid, match="not to a department"):
            auth.create_user(
                conn, "p@x.example", "partner", partner_key="swiftpost", department_key="service"
            )
        with pytest.raises(Invalid, match="only users of role 'partner'"):
            auth.create_user(conn, "m@x.example", "manager", department_key="service",
                             partner_key="swiftpost")  # fmt: skip
        user_id = auth.create_user(conn, "p@x.example", "partner", partner_key="swiftpost")
        who = auth.principal_for_user(conn, user_id)
    assert who is not None and who.role == "partner" and who.partner_key == "swiftpost"


def test_cli_lists_partners_and_creates_partner_users(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CXM_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CXM_DATA_DIR", str(tmp_path))
    assert runner.invoke(app, ["init"]).exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(ORG.replace("partner: swiftpost", "partner: quickship"))
    refused = runner.invoke(app, ["org", "apply", str(bad)])
    assert refused.exit_code == 2 and "line 10" in refused.output and "quickship" in refused.output
    good = tmp_path / "org.yaml"
    good.write_text(ORG)
    assert runner.invoke(app, ["org", "apply", str(good)]).exit_code == 0
    listed = json.loads(runner.invoke(app, ["org", "partners", "--json"]).output)
    rows = listed["rows"] if isinstance(listed, dict) else listed
    assert {r["key"]: r["touchpoints"] for r in rows} == {"swiftpost": ["delivery"], "fitters": []}
    table = runner.invoke(app, ["org", "touchpoints"]).output
    assert "swiftpost" in next(line for line in table.splitlines() if "delivery" in line)
    user = ["users", "create", "d@swiftpost.example", "--role", "partner"]
    created = runner.invoke(app, [*user, "--partner", "swiftpost", "--password", "long password"])
    assert created.exit_code == 0, created.output
    refused_user = runner.invoke(
        app, ["users", "create", "e@x.example", "--role", "partner", "--password", "long password"]
    )
    # Refused input exits as a bad org file does, naming what is missing.
    assert refused_user.exit_code == 2 and "needs a partner" in refused_user.output


SHARED = ORG.replace(
    "    partner: swiftpost\n", "    partner: swiftpost\n    partner_runs: marked\n"
)


def _deliveries(engine: Engine) -> dict[str, list[int]]:
    """Six deliveries, three carried by SwiftPost (named in ``properties.partner``), each
    answered with a CSAT; returns the scores by who carried the delivery."""
    carried = {"swiftpost": [5, 4, 1], "(none)": [2, 1, 5]}
    events, rows = [], []
    for carrier, scores in carried.items():
        for score in scores:
            i = len(events)
            props = {"order_id": f"NW-{i}"} | ({"partner": carrier} if carrier != "(none)" else {})
            events.append({"event_id": f"d{i}", "name": "order_delivered", "touchpoint": "delivery",
                           "email": f"c{i}@example.com", "properties": props,
                           "timestamp": f"2026-09-0{i + 1}T10:00:00Z"})  # fmt: skip
            at = dt.datetime(2026, 9, i + 2, 9, tzinfo=dt.UTC)
            rows.append({
                "id": f"r{i}", "survey_key": "delivery_csat", "survey_version": 1,
                "respondent_kind": "customer", "customer_id": None, "employee_id": None,
                "invitation_id": None, "trigger_event_id": f"d{i}", "touchpoint_key": "delivery",
                "channel": None, "language": "en", "started_at": at, "submitted_at": at,
                "completed": True, "nps": None, "nps_category": None, "csat": score, "ces": None,
                "comment": None, "source": "import",
            })  # fmt: skip
    with engine.begin() as conn:
        interactions.ingest(conn, events, "api")
        conn.execute(responses.insert(), rows)
    return carried


def test_a_partner_running_marked_interactions_gets_only_those(seeded: Engine) -> None:
    with seeded.begin() as conn:
        service.apply_org(conn, parse(SHARED))
        exported = service.export_org(conn)
    by_key = {t["key"]: t for t in exported["touchpoints"]}
    assert by_key["delivery"]["partner_runs"] == "marked"
    assert "partner_runs" not in by_key["support_chat"]
    carried = _deliveries(seeded)
    definitions = load_metrics()
    # A handful of answers: the shipped minimum sample would hide the figures.
    csat = {"csat": replace(definitions["csat"], min_sample=1)}
    # Answers follow the delivery that triggered them; the rest of the touchpoint is in-house.
    got = metrics.compute(seeded, "csat", ["partner"], metrics=csat)
    rows = {r["partner"]: (int(r["n"]), r["value"]) for r in got.to_dict("records")}
    assert rows == {
        carrier: (len(s), pytest.approx(100 * sum(v >= 4 for v in s) / len(s)))
        for carrier, s in carried.items()
    }
    # Interaction rows follow their own mark.
    count = replace(definitions["renewal_rate"], name="deliveries", kind="count",
                    filters={"name": "order_delivered"}, success=None)  # fmt: skip
    made = metrics.compute(seeded, "deliveries", ["partner"], metrics={"deliveries": count})
    assert {r["partner"]: int(r["n"]) for r in made.to_dict("records")} == {
        "swiftpost": 3, "(none)": 3,
    }  # fmt: skip
    # Without the mark, the partner runs the whole touchpoint again.
    with seeded.begin() as conn:
        service.apply_org(conn, parse(ORG))
    whole = metrics.compute(seeded, "csat", ["partner"], metrics=csat).to_dict("records")
    assert [(r["partner"], int(r["n"])) for r in whole] == [("swiftpost", 6)]


def test_marked_needs_a_partner(seeded: Engine) -> None:
    bad = SHARED.replace("    partner: swiftpost\n", "")
    with seeded.begin() as conn, pytest.raises(Invalid, match=r"partner_runs.*names no partner"):
        service.apply_org(conn, parse(bad))

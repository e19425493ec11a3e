"""Survey definitions: validation with paths, versioning, export, templates."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Engine

from cxm.errors import Invalid
from cxm.surveys import service
from cxm.surveys.schemas import parse_logic
from cxm.surveys.tables import survey_versions, surveys
from cxm.yamldoc import parse
from tests.conftest import migrated_duckdb
from tests.surveys.conftest import DELIVERY, apply


def test_templates_publish_and_reapply_unchanged(engine: Engine) -> None:
    with engine.begin() as conn:
        first = service.apply_templates(conn)
    assert {r.key for r in first} == {
        "relationship_nps", "support_csat", "self_service_ces", "delivery_csat", "employee_pulse",
        "partner_pulse",
    }  # fmt: skip
    assert {r.status for r in first} == {"created"}
    with engine.begin() as conn:
        again = service.apply_templates(conn)
        listed = service.list_surveys(conn)
    assert {r.status for r in again} == {"unchanged"}
    assert {s.key: s.kind for s in listed}["employee_pulse"] == "employee"
    assert {s.key: s.kind for s in listed}["partner_pulse"] == "partner"


def test_a_change_publishes_a_new_version_and_keeps_the_old(engine: Engine) -> None:
    with engine.begin() as conn:
        assert apply(conn).version == 1
        changed = apply(conn, DELIVERY.replace("How satisfied are you?", "Happy with it?"))
        assert (changed.status, changed.version) == ("updated", 2)
        old = service.get_definition(conn, "delivery_csat", 1)
        assert old.questions[0].text["en"] == "How satisfied are you?"
        current = service.get_definition(conn, "delivery_csat")
        assert current.questions[0].text["en"] == "Happy with it?"


def test_export_reads_back_unchanged(engine: Engine) -> None:
    with engine.begin() as conn:
        apply(conn)
        exported = yaml.safe_dump(service.export_definition(conn, "delivery_csat"))
        result = service.apply_definition(conn, parse(exported, "exported.yaml"))
    assert result.status == "unchanged"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("type: open_text", "type: essay"), "questions.1.type"),
        (('show_if: "csat <= 3"', 'show_if: "nps <= 3"'), "refers to 'nps', which is no question"),
        (('show_if: "csat <= 3"', 'show_if: "csat <= 9"'), "outside the scale of 'csat' (1..5)"),
        ((', de: "Was lief schief?"', ""), "question 'what_wrong' has no translation for de"),
        (("delay: 2h", "delay: soon"), "triggers.0.delay"),
    ],
)
def test_invalid_definitions_name_the_path_and_change_nothing(
    engine: Engine, change: tuple[str, str], expected: str
) -> None:
    bad = DELIVERY.replace(*change)
    assert bad != DELIVERY
    with pytest.raises(Invalid) as err, engine.begin() as conn:
        apply(conn, bad)
    assert expected in str(err.value) and "survey.yaml line" in str(err.value)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(surveys)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(survey_versions)).scalar() == 0


def test_rating_scale_out_of_range_is_rejected(engine: Engine) -> None:
    text = DELIVERY.replace(
        "  - {id: touchpoint, type: hidden}",
        "  - {id: r, type: rating, scale: {min: 5, max: 3}, text: {en: R, de: R}}\n"
        "  - {id: touchpoint, type: hidden}",
    )
    expected = r"questions\.3\.scale: scale 5\.\.3 is out of range"
    with pytest.raises(Invalid, match=expected), engine.begin() as conn:
        apply(conn, text)


def test_logic_parser_reads_and_or() -> None:
    logic = parse_logic("nps <= 6 and reason == 'late' or nps == 10")
    assert [[c.question for c in g] for g in logic] == [["nps", "reason"], ["nps"]]
    with pytest.raises(ValueError):
        parse_logic("nps <=")


def test_a_new_version_is_answered_as_soon_as_it_is_published(engine: Engine) -> None:
    with engine.begin() as conn:
        apply(conn)
        token = service.create_invitation(conn, "delivery_csat").token
        assert token is not None
        first = service.session_for_token(conn, token)  # version 1, parsed and kept
        apply(conn, DELIVERY.replace("How satisfied are you?", "Happy with it?"))
        later = service.session_for_token(conn, token)  # nothing answered yet: the current one
        started = service.session_for_token(conn, token)
        service.save_answer(conn, started, "csat", ["4"])
    assert (first.version, first.defn.questions[0].text["en"]) == (1, "How satisfied are you?")
    assert (later.version, later.defn.questions[0].text["en"]) == (2, "Happy with it?")
    with engine.begin() as conn:
        apply(conn, DELIVERY.replace("How satisfied are you?", "Pleased?"))  # version 3
        resumed = service.session_for_token(conn, token)
    # A response started on version 2 is finished on version 2, whatever is current.
    assert (resumed.version, resumed.defn.questions[0].text["en"]) == (2, "Happy with it?")


def test_kept_definitions_never_cross_surveys_or_stores(engine: Engine, tmp_path: Path) -> None:
    other = migrated_duckdb(tmp_path / "other.duckdb")
    try:
        texts = {engine: "In this store?", other: "In the other store?"}
        tokens = {}
        for store, text in texts.items():  # the same survey key and version 1 in each store
            with store.begin() as conn:
                apply(conn, DELIVERY.replace("How satisfied are you?", text))
                apply(conn, DELIVERY.replace("delivery_csat", "pickup_csat"))
                tokens[store] = [
                    service.create_invitation(conn, key).token
                    for key in ("delivery_csat", "pickup_csat")
                ]
        for _ in range(2):  # the second round is served from what the first one kept
            for store, text in texts.items():
                with store.begin() as conn:
                    delivery, pickup = (
                        service.session_for_token(conn, str(t)) for t in tokens[store]
                    )
                assert (delivery.defn.key, delivery.version) == ("delivery_csat", 1)
                assert delivery.defn.questions[0].text["en"] == text
                assert (pickup.defn.key, pickup.version) == ("pickup_csat", 1)
                assert pickup.defn.questions[0].text["en"] == "How satisfied are you?"
    finally:
        other.dispose()

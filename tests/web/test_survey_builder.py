"""The visual survey builder edits the same definition as the YAML view: add, reorder,
remove and reword questions, display logic and translations; nothing is live until published."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from cxm.errors import Invalid
from cxm.surveys import service as surveys
from cxm.web import survey_builder
from cxm.yamldoc import read
from tests.web.test_pages import as_role

TEMPLATE = Path(surveys.__file__).parent / "templates" / "support_csat.yaml"


def _doc() -> dict[str, object]:
    return dict(yaml.safe_load(TEMPLATE.read_text(encoding="utf-8")))


def _ids(doc: dict[str, object]) -> list[str]:
    return [q["id"] for q in doc["questions"]]  # type: ignore[attr-defined, index]


def test_reorder_add_remove_and_translate_leave_the_original_alone() -> None:
    doc = _doc()
    first, second = _ids(doc)[:2]
    moved = survey_builder.apply(doc, f"down:{first}", {}, "en")
    assert _ids(moved)[:2] == [second, first] and _ids(doc)[:2] == [first, second]
    added = survey_builder.apply(
        moved, "add", {"new_type": "rating", "new_id": "speed", "new_text": "How fast?"}, "en"
    )
    assert _ids(added)[-1] == "speed"
    assert added["questions"][-1]["scale"] == {"min": 1, "max": 5}  # type: ignore[index]
    edits = {f"text:{first}": "Wie zufrieden?", f"show_if:{first}": "csat <= 3"}
    german = survey_builder.apply(added, "save", edits, "de")
    question = next(q for q in german["questions"] if q["id"] == first)  # type: ignore[attr-defined]
    assert question["text"]["de"] == "Wie zufrieden?" and "en" in question["text"]
    assert question["show_if"] == "csat <= 3"
    removed = survey_builder.apply(german, "remove:speed", {}, "en")
    assert "speed" not in _ids(removed)


@pytest.mark.parametrize(
    ("op", "form", "says"),
    [
        ("add", {"new_type": "nps", "new_id": "Bad Id", "new_text": "x"}, "lower-case"),
        ("add", {"new_type": "video", "new_id": "v", "new_text": "x"}, "choose one of"),
        ("add", {"new_type": "nps", "new_id": "csat", "new_text": "x"}, "is taken"),
        ("up:nowhere", {}, "not in the definition"),
        ("explode", {}, "not an edit"),
    ],
)
def test_a_bad_edit_is_refused_with_the_fix(op: str, form: dict[str, str], says: str) -> None:
    with pytest.raises(Invalid, match=says):
        survey_builder.apply(_doc(), op, form, "en")


def test_the_builder_changes_the_text_the_yaml_view_shows_and_publishes_nothing(
    app_client: TestClient, seeded: Engine
) -> None:
    with seeded.begin() as conn:
        surveys.apply_definition(conn, read(TEMPLATE))
    client = as_role(app_client, seeded, "cx_lead")
    page = client.get("/surveys/support_csat").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    text = re.search(r"<textarea id=\"definition\"[^>]*>(.*?)</textarea>", page, re.S)
    assert token and text and 'id="builder"' in page
    answer = client.post("/surveys/support_csat", data={
        "csrf_token": token.group(1), "definition": html.unescape(text.group(1)),
        "language": "en", "builder": "add", "new_type": "open_text", "new_id": "why",
        "new_text": "Why that score?"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    edited = re.search(r"<textarea id=\"definition\"[^>]*>(.*?)</textarea>", answer.text, re.S)
    assert edited and "Why that score?" in html.unescape(edited.group(1))
    assert "Why that score?" in answer.text.split('class="preview"')[1]  # the preview shows it
    with seeded.connect() as conn:
        assert surveys.current_version(conn, "support_csat") == 1  # not published
        assert "why" not in [q.id for q in surveys.get_definition(conn, "support_csat").questions]


def _question(doc: dict[str, object], qid: str) -> dict[str, object]:
    return next(q for q in doc["questions"] if q["id"] == qid)  # type: ignore[attr-defined]


def test_options_are_added_reworded_translated_and_removed() -> None:
    doc = _doc()
    added = survey_builder.apply(doc, "add_option:resolved", {"new_option:resolved": "Partly"},
                                 "en")  # fmt: skip
    options = _question(added, "resolved")["options"]
    assert options[-1] == {"value": "partly", "text": {"en": "Partly", "de": "Partly"}}  # type: ignore[index]
    again = survey_builder.apply(added, "add_option:resolved", {"new_option:resolved": "Partly!"},
                                 "en")  # fmt: skip
    assert _question(again, "resolved")["options"][-1]["value"] == "partly_2"  # type: ignore[index]
    german = survey_builder.apply(added, "save", {"option:resolved:partly": "Teilweise"}, "de")
    assert _question(german, "resolved")["options"][-1]["text"] == {  # type: ignore[index]
        "en": "Partly",
        "de": "Teilweise",
    }
    removed = survey_builder.apply(german, "remove_option:resolved:no", {}, "en")
    assert [o["value"] for o in _question(removed, "resolved")["options"]] == ["yes", "partly"]  # type: ignore[attr-defined]
    assert survey_builder.problems(removed) == {}
    assert len(_question(doc, "resolved")["options"]) == 2  # type: ignore[arg-type]


def test_a_rating_scale_gets_its_ends_and_their_labels() -> None:
    doc = survey_builder.apply(
        _doc(), "add", {"new_type": "rating", "new_id": "speed", "new_text": "How fast?"}, "en"
    )
    form = {"scale_min:speed": "0", "scale_max:speed": "10",
            "scale_min_label:speed": "Very slow", "scale_max_label:speed": "Very fast"}  # fmt: skip
    edited = survey_builder.apply(doc, "save", form, "en")
    assert _question(edited, "speed")["scale"] == {
        "min": 0,
        "max": 10,
        "min_label": {"en": "Very slow"},
        "max_label": {"en": "Very fast"},
    }
    backwards = survey_builder.apply(doc, "save", {"scale_min:speed": "9", "scale_max:speed": "3"},
                                     "en")  # fmt: skip
    problems = survey_builder.problems(backwards)
    assert list(problems) == ["bq-speed"] and "min must be below max" in problems["bq-speed"][0]
    with pytest.raises(survey_builder.EditRefused, match="whole number") as refused:
        survey_builder.apply(doc, "save", {"scale_min:speed": "low"}, "en")
    assert refused.value.anchor == "bq-speed"


def test_triggers_are_added_edited_and_removed_with_their_where_rules() -> None:
    doc = _doc()
    new = {"new_trigger_event": "order_delivered", "new_trigger_channel": "sms",
           "new_trigger_delay": "1d"}  # fmt: skip
    added = survey_builder.apply(doc, "add_trigger", new, "en")
    assert added["triggers"][-1] == {"event": "order_delivered", "delay": "1d", "channel": "sms"}  # type: ignore[index]
    form = {"trigger_event:1": "order_delivered", "trigger_channel:1": "email",
            "trigger_delay:1": "30m", "trigger_touchpoint:1": "delivery",
            "trigger_where:1": "plan = gold\nitems = 3\nfirst = true"}  # fmt: skip
    edited = survey_builder.apply(added, "save", form, "en")
    assert edited["triggers"][1] == {  # type: ignore[index]
        "event": "order_delivered",
        "delay": "30m",
        "channel": "email",
        "touchpoint": "delivery",
        "where": {"plan": "gold", "items": 3, "first": True},
    }
    assert edited["triggers"][0]["event"] == "ticket_closed"  # type: ignore[index]
    removed = survey_builder.apply(edited, "remove_trigger:0", {}, "en")
    assert [t["event"] for t in removed["triggers"]] == ["order_delivered"]  # type: ignore[attr-defined]
    late = survey_builder.apply(edited, "save", {"trigger_event:0": "ticket_closed",
                                                 "trigger_delay:0": "soon"}, "en")  # fmt: skip
    assert list(survey_builder.problems(late)) == ["btr-0"]
    with pytest.raises(survey_builder.EditRefused, match="one rule a line") as refused:
        survey_builder.apply(edited, "save", {"trigger_event:1": "x", "trigger_where:1": "gold"},
                             "en")  # fmt: skip
    assert refused.value.anchor == "btr-1"


def _builder_post(client: TestClient, page: str, **fields: str) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    text = re.search(r"<textarea id=\"definition\"[^>]*>(.*?)</textarea>", page, re.S)
    assert token and text
    answer = client.post("/surveys/support_csat", data={
        "csrf_token": token.group(1), "definition": html.unescape(text.group(1)),
        "language": "en", **fields})  # fmt: skip
    return f"{answer.status_code}\n{answer.text}"


def test_an_edit_that_breaks_the_definition_is_refused_next_to_its_trigger(
    app_client: TestClient, seeded: Engine
) -> None:
    with seeded.begin() as conn:
        surveys.apply_definition(conn, read(TEMPLATE))
    client = as_role(app_client, seeded, "cx_lead")
    page = client.get("/surveys/support_csat").text
    assert 'id="btr-0"' in page and 'name="trigger_delay:0" value="2h"' in page
    assert 'name="option:resolved:yes" value="Yes"' in page
    answer = _builder_post(client, page, builder="save", **{"trigger_event:0": "ticket_closed",
                           "trigger_channel:0": "email", "trigger_delay:0": "soon"})  # fmt: skip
    status, body = answer.split("\n", 1)
    assert status == "422"
    trigger = body.split('id="btr-0"')[1].split("</fieldset>")[0]
    assert "delay &#39;soon&#39; is not like 30m" in trigger  # inline, in the trigger's box
    edited = re.search(r"<textarea id=\"definition\"[^>]*>(.*?)</textarea>", body, re.S)
    assert edited and "delay: 2h" in html.unescape(edited.group(1))  # left as it was
    added = _builder_post(client, page, builder="add_trigger", new_trigger_event="order_delivered",
                          new_trigger_channel="sms", new_trigger_delay="1d")  # fmt: skip
    status, body = added.split("\n", 1)
    assert status == "200"
    assert 'name="trigger_event:1" value="order_delivered"' in body
    with seeded.connect() as conn:
        assert len(surveys.get_definition(conn, "support_csat").triggers) == 1  # not published

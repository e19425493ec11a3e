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
    text = re.search(r"<textarea[^>]*>(.*?)</textarea>", page, re.S)
    assert token and text and 'id="builder"' in page
    answer = client.post("/surveys/support_csat", data={
        "csrf_token": token.group(1), "definition": html.unescape(text.group(1)),
        "language": "en", "builder": "add", "new_type": "open_text", "new_id": "why",
        "new_text": "Why that score?"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    edited = re.search(r"<textarea[^>]*>(.*?)</textarea>", answer.text, re.S)
    assert edited and "Why that score?" in html.unescape(edited.group(1))
    assert "Why that score?" in answer.text.split('class="preview"')[1]  # the preview shows it
    with seeded.connect() as conn:
        assert surveys.current_version(conn, "support_csat") == 1  # not published
        assert "why" not in [q.id for q in surveys.get_definition(conn, "support_csat").questions]

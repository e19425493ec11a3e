"""The visual survey builder: edits to a survey definition made with buttons and fields
(add, reorder, remove and reword questions, their display logic and translations).

Each edit is applied to the same document the YAML view shows and returns its new text, so
both views edit one definition; nothing is published until the editor publishes a version.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

import yaml

from cxm.errors import Invalid
from cxm.surveys.schemas import KEY

NEW_TYPES = ("nps", "csat", "ces", "rating", "single_choice", "open_text")
TYPE_NAMES = {
    "nps": "NPS (0-10)", "csat": "CSAT (1-5)", "ces": "Effort, CES (1-7)",
    "rating": "Rating (1-5)", "single_choice": "Single choice", "open_text": "Open text",
    "multiple_choice": "Multiple choice", "hidden": "Hidden value",
}  # fmt: skip


def dump(doc: Mapping[str, Any]) -> str:
    """The document as the YAML view shows it."""
    return yaml.safe_dump(dict(doc), sort_keys=False, allow_unicode=True)


def _questions(doc: dict[str, Any]) -> list[dict[str, Any]]:
    questions = doc.get("questions")
    if not isinstance(questions, list):
        raise Invalid("questions: the definition has no list of questions to edit")
    return questions


def _find(questions: list[dict[str, Any]], qid: str) -> int:
    for i, q in enumerate(questions):
        if isinstance(q, dict) and q.get("id") == qid:
            return i
    known = ", ".join(str(q.get("id")) for q in questions if isinstance(q, dict))
    raise Invalid(f"question '{qid}' is not in the definition; it has: {known}")


def apply(
    doc: Mapping[str, Any], op: str, form: Mapping[str, str], language: str
) -> dict[str, Any]:
    """``doc`` after one builder operation; ``doc`` itself is left as it was.

    ``op`` is ``add``, ``save``, ``up:ID``, ``down:ID`` or ``remove:ID``. ``add`` reads
    ``new_type``, ``new_id`` and ``new_text``; ``save`` reads each question's ``text:ID``,
    ``show_if:ID`` and ``required:ID`` fields, and ``title``; texts are written in ``language``
    (so editing in German adds or changes the German translation). Raises Invalid naming the
    field and the fix.
    """
    out = copy.deepcopy(dict(doc))
    questions = _questions(out)
    verb, _, qid = op.partition(":")
    if verb in ("up", "down", "remove"):
        i = _find(questions, qid)
        if verb == "remove":
            if len(questions) == 1:
                raise Invalid("a survey needs at least one question; add another first")
            questions.pop(i)
        else:
            j = i - 1 if verb == "up" else i + 1
            if 0 <= j < len(questions):
                questions[i], questions[j] = questions[j], questions[i]
    elif verb == "add":
        languages = [str(x) for x in out.get("languages") or [language]]
        out["questions"] = [*questions, _new_question(questions, form, language, languages)]
    elif verb == "save":
        title = (form.get("title") or "").strip()
        if title:
            out["title"] = _worded(out.get("title"), language, title)
        for q in questions:
            if not isinstance(q, dict) or q.get("type") == "hidden":
                continue
            key = str(q.get("id"))
            text = (form.get(f"text:{key}") or "").strip()
            if text:
                q["text"] = _worded(q.get("text"), language, text)
            show_if = (form.get(f"show_if:{key}") or "").strip()
            if show_if:
                q["show_if"] = show_if
            else:
                q.pop("show_if", None)
            q["required"] = form.get(f"required:{key}") == "yes"
    else:
        raise Invalid(f"builder: '{op}' is not an edit the builder knows")
    return out


def _worded(current: Any, language: str, text: str) -> dict[str, str]:
    """A translated text with ``language`` set to ``text``, the other languages kept."""
    wording = dict(current) if isinstance(current, dict) else {}
    wording[language] = text
    return wording


def _new_question(
    questions: list[dict[str, Any]], form: Mapping[str, str], language: str, languages: list[str]
) -> dict[str, Any]:
    """A new question worded in ``language``; the survey's other languages start with the same
    words (a definition needs every translation), to be translated in their own view."""
    kind = form.get("new_type") or ""
    if kind not in NEW_TYPES:
        raise Invalid(f"new question type: choose one of {', '.join(NEW_TYPES)}")
    qid = (form.get("new_id") or "").strip()
    if not re.fullmatch(KEY, qid):
        raise Invalid("new question id: use lower-case letters, digits and _ , starting with a "
                      f"letter (e.g. reason); '{qid}' is not one")  # fmt: skip
    if any(isinstance(q, dict) and q.get("id") == qid for q in questions):
        raise Invalid(f"new question id: '{qid}' is taken; choose another")
    text = (form.get("new_text") or "").strip()
    if not text:
        raise Invalid("new question text: write the question as respondents will read it")
    every = dict.fromkeys([language, *languages])
    question: dict[str, Any] = {"id": qid, "type": kind, "required": False,
                                "text": {lang: text for lang in every}}  # fmt: skip
    if kind == "rating":
        question["scale"] = {"min": 1, "max": 5}
    if kind == "single_choice":
        question["options"] = [
            {"value": "yes", "text": dict.fromkeys(every, "Yes")},
            {"value": "no", "text": dict.fromkeys(every, "No")},
        ]
    return question


def rows(defn: Any, language: str) -> dict[str, Any]:
    """What the builder shows for a valid definition, texts in ``language`` (empty where that
    translation is missing, with the default language's text as a hint)."""
    from cxm.surveys.service import text_in

    lang = language if language in defn.languages else defn.default_language

    def own(text: Any) -> str:
        return (text or {}).get(lang, "")

    return {
        "language": lang,
        "title": own(defn.title),
        "title_hint": text_in(defn.title, defn.default_language, defn.default_language),
        "questions": [
            {"id": q.id, "type": q.type, "type_name": TYPE_NAMES.get(q.type, q.type),
             "text": own(q.text), "hint": text_in(q.text, defn.default_language,
                                                   defn.default_language),
             "show_if": q.show_if or "", "required": q.required,
             "editable": q.type != "hidden"}
            for q in defn.questions
        ],
        "new_types": [(t, TYPE_NAMES[t]) for t in NEW_TYPES],
    }  # fmt: skip

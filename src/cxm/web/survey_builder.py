"""The visual survey builder: edits to a survey definition made with buttons and fields
(add, reorder, remove and reword questions, their display logic and translations, the options
of choice questions, the scale of ratings, and the triggers that send the survey).

Each edit is applied to the same document the YAML view shows and returns its new text, so
both views edit one definition; nothing is published until the editor publishes a version.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any, get_args

import yaml
from pydantic import ValidationError

from cxm.errors import Invalid
from cxm.surveys.schemas import KEY, SurveyDefinition, Trigger, check

NEW_TYPES = ("nps", "csat", "ces", "rating", "single_choice", "multiple_choice", "open_text")
CHOICES = ("single_choice", "multiple_choice")
CHANNELS: tuple[str, ...] = get_args(Trigger.model_fields["channel"].annotation)
CHANNEL_NAMES = {"email": "Email", "sms": "Text message (SMS)",
                 "in_product": "In the product (snippet)", "link": "Link (no message)"}  # fmt: skip


class EditRefused(Invalid):
    """A builder edit that was not applied; ``anchor`` is the id of the part of the builder the
    message belongs next to (``bq-ID`` a question, ``btr-N`` a trigger, ``b-new`` and
    ``b-new-trigger`` the forms that add one)."""

    def __init__(self, message: str, anchor: str) -> None:
        super().__init__(message)
        self.anchor = anchor


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
    raise EditRefused(f"question '{qid}' is not in the definition; it has: {known}", "b-survey")


def apply(
    doc: Mapping[str, Any], op: str, form: Mapping[str, str], language: str
) -> dict[str, Any]:
    """``doc`` after one builder operation; ``doc`` itself is left as it was.

    ``op`` is ``add``, ``save``, ``up:ID``, ``down:ID``, ``remove:ID``, ``add_option:ID``,
    ``remove_option:ID:VALUE``, ``add_trigger`` or ``remove_trigger:N``. ``add`` reads
    ``new_type``, ``new_id`` and ``new_text``; ``add_option:ID`` reads ``new_option:ID``;
    ``add_trigger`` reads ``new_trigger_event``, ``new_trigger_channel`` and
    ``new_trigger_delay``. ``save`` reads ``title`` and each question's ``text:ID``,
    ``show_if:ID``, ``required:ID``, ``option:ID:VALUE`` and (ratings) ``scale_min:ID``,
    ``scale_max:ID``, ``scale_min_label:ID``, ``scale_max_label:ID``, and each trigger's
    ``trigger_event:N``, ``trigger_channel:N``, ``trigger_delay:N``, ``trigger_touchpoint:N``
    and ``trigger_where:N`` (one ``property = value`` a line). When the whole builder form is
    posted (it carries ``title``), the other edits apply its fields first, so nothing typed is
    lost. Texts are written in ``language`` (editing in German adds or changes the German
    translation). Raises EditRefused naming the field, the fix and where it belongs.
    """
    out = copy.deepcopy(dict(doc))
    questions = _questions(out)
    verb, _, qid = op.partition(":")
    if verb == "save" or (verb in VERBS and "title" in form):
        _save(out, questions, form, language)
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
        out["questions"] = [*questions, _new_question(questions, form, language, _langs(out))]
    elif verb in ("add_option", "remove_option"):
        qid, _, value = qid.partition(":")
        q = questions[_find(questions, qid)]
        if q.get("type") not in CHOICES:
            raise EditRefused(f"question '{qid}' is not a choice question", f"bq-{qid}")
        if verb == "add_option":
            q["options"] = [*(q.get("options") or []), _new_option(q, form, _langs(out))]
        else:
            kept = [o for o in q.get("options") or [] if o.get("value") != value]
            if len(kept) == len(q.get("options") or []):
                raise EditRefused(f"question '{qid}' has no option '{value}'", f"bq-{qid}")
            if not kept:
                raise EditRefused(f"question '{qid}' needs at least one option; add another "
                                  "first", f"bq-{qid}")  # fmt: skip
            q["options"] = kept
    elif verb == "add_trigger":
        out["triggers"] = [*_triggers(out), _new_trigger(form)]
    elif verb == "remove_trigger":
        triggers = _triggers(out)
        if not qid.isdigit() or int(qid) >= len(triggers):
            raise EditRefused(f"the survey has no trigger {qid}", "b-triggers")
        triggers.pop(int(qid))
        if not triggers:
            out.pop("triggers", None)
    elif verb != "save":
        raise Invalid(f"builder: '{op}' is not an edit the builder knows")
    return out


VERBS = ("add", "up", "down", "remove", "add_option", "remove_option", "add_trigger",
         "remove_trigger")  # fmt: skip


def _langs(doc: dict[str, Any]) -> list[str]:
    return [str(x) for x in doc.get("languages") or ["en"]]


def _triggers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    triggers = doc.setdefault("triggers", [])
    if not isinstance(triggers, list):
        raise EditRefused("triggers: the definition's triggers are not a list", "b-triggers")
    return triggers


def _save(
    doc: dict[str, Any], questions: list[dict[str, Any]], form: Mapping[str, str], language: str
) -> None:
    """Apply the builder's fields (texts, logic, options, scales, triggers) to ``doc``."""
    title = (form.get("title") or "").strip()
    if title:
        doc["title"] = _worded(doc.get("title"), language, title)
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
        for option in q.get("options") or []:
            worded = (form.get(f"option:{key}:{option.get('value')}") or "").strip()
            if worded:
                option["text"] = _worded(option.get("text"), language, worded)
        if q.get("type") == "rating":
            _save_scale(q, key, form, language)
    if "triggers" in doc:
        for i, trigger in enumerate(_triggers(doc)):
            if f"trigger_event:{i}" in form:
                _save_trigger(trigger, i, form)


def _save_scale(q: dict[str, Any], key: str, form: Mapping[str, str], language: str) -> None:
    scale = dict(q.get("scale") or {})
    for end in ("min", "max"):
        raw = (form.get(f"scale_{end}:{key}") or "").strip()
        if raw:
            if not re.fullmatch(r"\d{1,3}", raw):
                raise EditRefused(f"question '{key}': the scale's {end} is a whole number from "
                                  f"0 to 100, not '{raw}'", f"bq-{key}")  # fmt: skip
            scale[end] = int(raw)
        label = (form.get(f"scale_{end}_label:{key}") or "").strip()
        if label:
            scale[f"{end}_label"] = _worded(scale.get(f"{end}_label"), language, label)
        elif f"scale_{end}_label:{key}" in form and isinstance(scale.get(f"{end}_label"), dict):
            rest = {k: v for k, v in scale[f"{end}_label"].items() if k != language}
            scale[f"{end}_label"] = rest
            if not rest:
                scale.pop(f"{end}_label")
    q["scale"] = scale


def _save_trigger(trigger: dict[str, Any], i: int, form: Mapping[str, str]) -> None:
    event = (form.get(f"trigger_event:{i}") or "").strip()
    if not event:
        raise EditRefused("event: name the interaction that sends the survey (e.g. "
                          "ticket_closed)", f"btr-{i}")  # fmt: skip
    trigger["event"] = event
    trigger["channel"] = _channel(form.get(f"trigger_channel:{i}"), f"btr-{i}")
    trigger["delay"] = (form.get(f"trigger_delay:{i}") or "").strip() or "0m"
    touchpoint = (form.get(f"trigger_touchpoint:{i}") or "").strip()
    if touchpoint:
        trigger["touchpoint"] = touchpoint
    else:
        trigger.pop("touchpoint", None)
    where = _where(form.get(f"trigger_where:{i}") or "", f"btr-{i}")
    if where:
        trigger["where"] = where
    else:
        trigger.pop("where", None)


def _channel(raw: str | None, anchor: str) -> str:
    channel = (raw or "email").strip()
    if channel not in CHANNELS:
        raise EditRefused(f"channel: choose one of {', '.join(CHANNELS)}", anchor)
    return channel


def _where(text: str, anchor: str) -> dict[str, Any]:
    """``plan = gold`` lines as a trigger's where-rules; a number or true/false keeps its type."""
    rules: dict[str, Any] = {}
    for line in filter(None, (raw.strip() for raw in text.splitlines())):
        name, sep, value = line.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise EditRefused(f"where: write one rule a line, like plan = gold; '{line}' is "
                              "not one", anchor)  # fmt: skip
        try:
            typed = yaml.safe_load(value.strip())
        except yaml.YAMLError:
            typed = value.strip()
        if not isinstance(typed, str | int | float | bool):
            typed = value.strip()
        rules[name.strip()] = typed
    return rules


def _new_trigger(form: Mapping[str, str]) -> dict[str, Any]:
    event = (form.get("new_trigger_event") or "").strip()
    if not event:
        raise EditRefused("new trigger event: name the interaction that sends the survey "
                          "(e.g. ticket_closed)", "b-new-trigger")  # fmt: skip
    return {"event": event, "delay": (form.get("new_trigger_delay") or "").strip() or "0m",
            "channel": _channel(form.get("new_trigger_channel"), "b-new-trigger")}  # fmt: skip


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60]
    return slug if re.fullmatch(r"[a-z0-9_]+", slug) else "option"


def _new_option(q: dict[str, Any], form: Mapping[str, str], languages: list[str]) -> dict[str, Any]:
    """An option worded in every language alike (translated later), its value from its words."""
    qid = str(q.get("id"))
    text = (form.get(f"new_option:{qid}") or "").strip()
    if not text:
        raise EditRefused(f"question '{qid}': write the new option as respondents will read it",
                          f"bq-{qid}")  # fmt: skip
    taken = {str(o.get("value")) for o in q.get("options") or []}
    value, n = _slug(text), 2
    while value in taken:
        value, n = f"{_slug(text)}_{n}", n + 1
    return {"value": value, "text": dict.fromkeys(languages, text)}


def problems(doc: Mapping[str, Any]) -> dict[str, list[str]]:
    """What is wrong with a definition, by the builder part it belongs to (see EditRefused);
    empty when the definition is valid. Problems outside a question or trigger go under
    ``b-survey``."""
    found: dict[str, list[str]] = {}
    try:
        defn = SurveyDefinition.model_validate(dict(doc))
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
            found.setdefault(_anchor(doc, loc), []).append(_said(doc, loc, err["msg"]))
        return found
    for loc, message in check(defn):
        found.setdefault(_anchor(doc, loc), []).append(_said(doc, loc, message))
    return found


def _said(doc: Mapping[str, Any], loc: tuple[Any, ...], message: str) -> str:
    """A problem as its box shows it: the field inside a question or trigger (unless the
    message names it already), the whole path elsewhere."""
    inner = loc[2:] if _anchor(doc, loc) != "b-survey" else loc
    field = ".".join(str(p) for p in inner)
    return f"{field}: {message}" if field and not message.startswith(str(inner[-1])) else message


def _anchor(doc: Mapping[str, Any], loc: tuple[Any, ...]) -> str:
    if len(loc) >= 2 and loc[0] == "questions" and isinstance(loc[1], int):
        questions = doc.get("questions") or []
        if loc[1] < len(questions) and isinstance(questions[loc[1]], dict):
            return f"bq-{questions[loc[1]].get('id')}"
    if len(loc) >= 2 and loc[0] == "triggers" and isinstance(loc[1], int):
        return f"btr-{loc[1]}"
    return "b-survey"


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
        raise EditRefused(f"new question type: choose one of {', '.join(NEW_TYPES)}", "b-new")
    qid = (form.get("new_id") or "").strip()
    if not re.fullmatch(KEY, qid):
        raise EditRefused("new question id: use lower-case letters, digits and _ , starting "
                          f"with a letter (e.g. reason); '{qid}' is not one", "b-new")  # fmt: skip
    if any(isinstance(q, dict) and q.get("id") == qid for q in questions):
        raise EditRefused(f"new question id: '{qid}' is taken; choose another", "b-new")
    text = (form.get("new_text") or "").strip()
    if not text:
        raise EditRefused("new question text: write the question as respondents will read it",
                          "b-new")  # fmt: skip
    every = dict.fromkeys([language, *languages])
    question: dict[str, Any] = {"id": qid, "type": kind, "required": False,
                                "text": {lang: text for lang in every}}  # fmt: skip
    if kind == "rating":
        question["scale"] = {"min": 1, "max": 5}
    if kind in CHOICES:
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
             "editable": q.type != "hidden",
             "options": [{"value": o.value, "text": own(o.text),
                          "hint": text_in(o.text, defn.default_language, defn.default_language)}
                         for o in q.options or []] if q.type in CHOICES else None,
             "scale": {"min": q.scale.min, "max": q.scale.max,
                       "min_label": own(q.scale.min_label), "max_label": own(q.scale.max_label)}
                      if q.type == "rating" and q.scale else None}
            for q in defn.questions
        ],
        "new_types": [(t, TYPE_NAMES[t]) for t in NEW_TYPES],
        "triggers": [
            {"event": t.event, "channel": t.channel, "delay": t.delay,
             "touchpoint": t.touchpoint or "",
             "where": "\n".join(f"{k} = {_scalar(v)}" for k, v in t.where.items())}
            for t in defn.triggers
        ],
        "channels": [(c, CHANNEL_NAMES.get(c, c)) for c in CHANNELS],
    }  # fmt: skip


def _scalar(value: Any) -> str:
    """A where-rule's value as typed back: true/false for booleans, the rest as written."""
    return str(value).lower() if isinstance(value, bool) else str(value)

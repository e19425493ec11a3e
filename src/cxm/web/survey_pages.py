"""Survey pages for staff: the list with each survey's distribution funnel, and the editor
with a preview that shows the questionnaire as respondents will see it."""

from __future__ import annotations

from typing import Any

import yaml
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.engine import Connection

from cxm.config import link_base
from cxm.errors import CxmError, NotFound
from cxm.org import service as org
from cxm.org.auth import Principal
from cxm.org.security import db, get_engine
from cxm.surveys import analytics as survey_analytics
from cxm.surveys import service as surveys
from cxm.surveys import suppressions as survey_suppressions
from cxm.surveys.schemas import SurveyDefinition
from cxm.web import survey_builder
from cxm.web.listing import PAGE, Listing, csv_response
from cxm.web.pages import render
from cxm.web.sessions import check_csrf, signed_in
from cxm.yamldoc import parse

router = APIRouter(include_in_schema=False)
READERS = ("admin", "cx_lead", "manager")
EDITORS = ("admin", "cx_lead")


def _reader(who: Principal = Depends(signed_in)) -> Principal:
    if who.role not in READERS:
        raise NotFound("page not found")
    return who


SURVEY_SORTS: dict[str, Any] = {
    "name": lambda s: (s.name or s.title).lower(), "kind": lambda s: s.kind,
    "version": lambda s: s.version, "updated_at": lambda s: s.updated_at,
}  # fmt: skip


@router.get("/surveys", response_class=HTMLResponse, response_model=None)
def survey_list(
    request: Request,
    who: Principal = Depends(_reader),
    conn: Connection = Depends(db, scope="function"),
) -> Response:
    """Every survey with its distribution funnel; sorted, paged, and as CSV."""
    listing = Listing.from_request(request, tuple(SURVEY_SORTS), size=PAGE)
    every = surveys.list_surveys(conn)
    base = link_base(request.app.state.settings, str(request.base_url))
    if listing.wants_csv:
        return csv_response(
            [s.__dict__ | {"open_link": surveys.open_link(base, s.key)} for s in every],
            [("key", "key"), ("name", "name"), ("title", "title"), ("kind", "kind"),
             ("version", "version"), ("languages", lambda r: " ".join(r["languages"])),
             ("questions", "questions"), ("triggers", "triggers"),
             ("updated_at", "updated_at"), ("open_link", "open_link")],
            "surveys.csv",
        )  # fmt: skip
    shown, listing = listing.in_memory(every, SURVEY_SORTS)
    funnel: dict[str, list[dict[str, Any]]] = {}
    for row in survey_analytics.funnel(get_engine(request)):
        funnel.setdefault(row["survey_key"], []).append(row)
    return render(
        request, who, "surveys.html", surveys=shown, funnel=funnel, listing=listing,
        stages=survey_analytics.STAGES, mail=survey_suppressions.per_survey(get_engine(request)),
        open_links={s.key: surveys.open_link(base, s.key) for s in shown},
    )  # fmt: skip


def preview(defn: SurveyDefinition, language: str) -> dict[str, Any]:
    """The questionnaire in one language, with scales, options and display logic spelled out."""
    # The ends of a scale read as the respondent's page reads them (its own labels, else the
    # language's words for the question type), from the page's own view of the question.
    from cxm.surveys.pages import _question_view as respondent_view

    lang = language if language in defn.languages else defn.default_language
    fallback = defn.default_language
    questions = []
    for q in defn.questions:
        if q.type == "hidden":
            continue
        bounds = q.bounds()
        seen = respondent_view(q, lang, fallback)
        questions.append({
            "id": q.id, "type": q.type, "required": q.required,
            "text": surveys.text_in(q.text, lang, fallback),
            "points": list(range(bounds[0], bounds[1] + 1)) if bounds else None,
            "ends": (seen["min_label"], seen["max_label"]) if bounds else None,
            "options": [surveys.text_in(o.text, lang, fallback) for o in q.options or []],
            "show_if": q.show_if,
        })  # fmt: skip
    return {
        "language": lang,
        "title": surveys.text_in(defn.title, lang, fallback),
        "intro": surveys.text_in(defn.intro, lang, fallback),
        "thank_you": surveys.text_in(defn.thank_you, lang, fallback),
        "questions": questions,
    }


def _editor(
    request: Request, who: Principal, key: str, text: str, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    base = link_base(request.app.state.settings, str(request.base_url))
    links = {"embed": surveys.embed_snippet(base, key), "open_link": surveys.open_link(base, key)}
    defn = extra.pop("defn", None)
    if defn is not None:
        shown = extra.get("preview") or {}
        extra["builder"] = survey_builder.rows(defn, shown.get("language") or defn.default_language)
        with get_engine(request).connect() as conn:
            extra["touchpoints"] = [(t.key, t.name) for t in org.list_touchpoints(conn)]
    return render(request, who, "survey_editor.html", status_code, key=key, text=text,
                  can_edit=who.role in EDITORS, **(links | extra))  # fmt: skip


@router.get("/surveys/{key}", response_class=HTMLResponse)
def survey_editor(
    key: str,
    request: Request,
    who: Principal = Depends(_reader),
    conn: Connection = Depends(db, scope="function"),
) -> HTMLResponse:
    defn = surveys.get_definition(conn, key)
    text = yaml.safe_dump(surveys.export_definition(conn, key), sort_keys=False, allow_unicode=True)
    lang = request.query_params.get("lang") or defn.default_language
    return _editor(
        request, who, key, text, preview=preview(defn, lang), languages=defn.languages,
        version=surveys.current_version(conn, key), defn=defn,
    )  # fmt: skip


async def _form(request: Request) -> dict[str, str]:
    """Every field of the posted form (the builder names its fields after the questions)."""
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


@router.post("/surveys/{key}", response_class=HTMLResponse)
def survey_save(
    key: str,
    request: Request,
    definition: str = Form(""),
    action: str = Form("preview"),
    builder: str = Form(""),
    language: str = Form(""),
    csrf_token_: str = Form("", alias="csrf_token"),
    form: dict[str, str] = Depends(_form),
    who: Principal = Depends(_reader),
    conn: Connection = Depends(db, scope="function"),
) -> HTMLResponse:
    """Preview the edited definition, change it with the visual builder (``builder`` names
    the edit), or publish it as a new version (admins and CX leads)."""
    check_csrf(request, csrf_token_)
    surveys.get_definition(conn, key)
    try:
        doc = parse(definition, f"survey {key}")
        defn = surveys.validate_definition(doc)
        if defn.key != key:
            raise CxmError(f"key: this editor publishes '{key}'; the text says '{defn.key}'")
    except CxmError as exc:
        return _editor(request, who, key, definition, 422, error=str(exc))
    shown = preview(defn, language or defn.default_language)
    if builder:
        # An edit that would leave the definition invalid is refused: the definition stays as
        # it was and each problem shows next to the question or trigger it concerns.
        try:
            edited = survey_builder.apply(doc.data, builder, form, language or "en")
            problems = survey_builder.problems(edited)
        except survey_builder.EditRefused as exc:
            problems = {exc.anchor: [str(exc)]}
        except CxmError as exc:
            problems = {"b-survey": [str(exc)]}
        if problems:
            said = "; ".join(m for found in problems.values() for m in found)
            return _editor(request, who, key, definition, 422, preview=shown,
                           languages=defn.languages, defn=defn, problems=problems,
                           error=f"The change was not applied: {said}")  # fmt: skip
        definition = survey_builder.dump(edited)
        doc = parse(definition, f"survey {key}")
        defn = surveys.validate_definition(doc)
        shown = preview(defn, language or defn.default_language)
        notice = "Changed in the builder; publish to make it live."
        return _editor(request, who, key, definition, preview=shown, languages=defn.languages,
                       defn=defn, notice=notice)  # fmt: skip
    if action != "publish":
        return _editor(request, who, key, definition, preview=shown, languages=defn.languages,
                       defn=defn)  # fmt: skip
    if who.role not in EDITORS:
        raise NotFound("page not found")
    result = surveys.apply_definition(conn, doc)
    notice = f"published version {result.version}" if result.status != "unchanged" else "no change"
    return _editor(request, who, key, definition, preview=shown, languages=defn.languages,
                   notice=notice, version=result.version, defn=defn)  # fmt: skip

"""The public response pages: ``/s/{token}`` and ``/s/open/{survey}`` (no JavaScript needed).

One question per page, saved on every step, so partial responses count and display logic runs
on the server.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Connection

from cxm.errors import Conflict, CxmError, Invalid, NotFound
from cxm.org.security import db, get_engine
from cxm.store.retry import retrying
from cxm.surveys import service
from cxm.surveys.service import Expired, Session, text_in
from cxm.surveys.tables import invitations
from cxm.surveys.writer import Reader, writer_for

templates = Jinja2Templates(directory=Path(__file__).parent / "html")
router = APIRouter(include_in_schema=False)

UI: dict[str, dict[str, str]] = {
    "en": {
        "next": "Next", "finish": "Submit", "required": "required", "of": "{n} out of {max}",
        "progress": "Question {done} of {total}", "honeypot": "Leave this field empty",
        "thanks": "Thank you!", "thanks_text": "Your answers have been saved.",
        "gone": "This survey is closed", "unknown": "Survey not found",
        "slow": "Please slow down", "slow_text": "Too many answers from your network; try later.",
        "unsub": "Unsubscribe from surveys", "unsub_text": "You will get no more survey emails.",
        "unsub_button": "Unsubscribe", "unsub_done": "You are unsubscribed",
    },
    "de": {
        "next": "Weiter", "finish": "Absenden", "required": "Pflichtfeld",
        "of": "{n} von {max}", "progress": "Frage {done} von {total}",
        "honeypot": "Dieses Feld leer lassen", "thanks": "Vielen Dank!",
        "thanks_text": "Ihre Antworten wurden gespeichert.", "gone": "Diese Umfrage ist beendet",
        "unknown": "Umfrage nicht gefunden", "slow": "Bitte etwas langsamer",
        "slow_text": "Zu viele Antworten aus Ihrem Netz; bitte später erneut.",
        "unsub": "Von Umfragen abmelden", "unsub_text": "Sie erhalten keine Umfrage-E-Mails mehr.",
        "unsub_button": "Abmelden", "unsub_done": "Sie sind abgemeldet",
    },
}  # fmt: skip
# What each end of a fixed scale means, when the definition names no labels of its own; a
# respondent should not have to guess whether 1 or 5 is good.
SCALE_ENDS: dict[str, dict[str, tuple[str, str]]] = {
    "en": {"nps": ("Not at all likely", "Extremely likely"),
           "csat": ("Very dissatisfied", "Very satisfied"),
           "ces": ("Strongly disagree", "Strongly agree")},
    "de": {"nps": ("Überhaupt nicht wahrscheinlich", "Äußerst wahrscheinlich"),
           "csat": ("Sehr unzufrieden", "Sehr zufrieden"),
           "ces": ("Stimme überhaupt nicht zu", "Stimme voll und ganz zu")},
    "fr": {"nps": ("Pas du tout probable", "Très probable"),
           "csat": ("Très insatisfait", "Très satisfait"),
           "ces": ("Pas du tout d'accord", "Tout à fait d'accord")},
}  # fmt: skip
OPEN_LIMIT = 20  # new responses per IP ...
OPEN_WINDOW = 600.0  # ... per this many seconds, on open links


def ui(lang: str) -> dict[str, str]:
    return UI["en"] | UI.get(lang, {})


def _language(request: Request, session: Session, chosen: str | None) -> str:
    offered = session.defn.languages
    for candidate in (chosen, request.query_params.get("lang"), session.language):
        if candidate in offered:
            return str(candidate)
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in offered:
            return code
    return session.defn.default_language


def _question_view(q: Any, lang: str, fallback: str) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": q.id, "required": q.required, "text": text_in(q.text, lang, fallback),
        "max_length": q.max_length, "kind": "text", "min_label": None, "max_label": None,
    }  # fmt: skip
    bounds = q.bounds()
    if bounds:
        view |= {"kind": "scale", "points": list(range(bounds[0], bounds[1] + 1)), "max": bounds[1]}
        if q.scale is not None:
            view["min_label"] = text_in(q.scale.min_label, lang, fallback) or None
            view["max_label"] = text_in(q.scale.max_label, lang, fallback) or None
        ends = SCALE_ENDS.get(lang, SCALE_ENDS["en"]).get(q.type)
        if ends and not (view["min_label"] or view["max_label"]):
            view["min_label"], view["max_label"] = ends
    elif q.options:
        view |= {
            "kind": "choice", "multiple": q.type == "multiple_choice",
            "options": [(o.value, text_in(o.text, lang, fallback)) for o in q.options],
        }  # fmt: skip
    return view


def _message(
    request: Request, lang: str, heading: str, message: str, status: int = 200, **extra: Any
) -> HTMLResponse:
    context = {"lang": lang, "page_title": heading, "heading": heading, "message": message}
    return templates.TemplateResponse(request, "message.html", context | extra, status_code=status)


def _render(
    request: Request, session: Session, lang: str, action: str, *, error: str | None = None,
    value: Any = None, status: int = 200,
) -> HTMLResponse:  # fmt: skip
    defn = session.defn
    fallback = defn.default_language
    t = ui(lang)
    q = session.next_question()
    if q is None:
        thanks = text_in(defn.thank_you, lang, fallback) or t["thanks_text"]
        return _message(request, lang, t["thanks"], thanks, status)
    done, total = session.progress()
    remaining = [
        x for x in defn.questions
        if x.id not in session.seen and x.id != q.id and service.visible(x, session.answers)
    ]  # fmt: skip
    title = text_in(defn.title, lang, fallback)
    context = {
        "lang": lang, "page_title": title, "title": title, "t": t, "action": action,
        "intro": text_in(defn.intro, lang, fallback) if not session.seen else None,
        "q": _question_view(q, lang, fallback), "error": error,
        "value": value, "selected": value if isinstance(value, list) else [value],
        "progress": (done, total), "last": not remaining,
    }  # fmt: skip
    return templates.TemplateResponse(request, "question.html", context, status_code=status)


def _problem(request: Request, exc: CxmError) -> HTMLResponse:
    """The friendly page for unknown, used and expired links, with the matching status."""
    lang = request.query_params.get("lang") or "en"
    t = ui(lang)
    heading = t["unknown"] if isinstance(exc, NotFound) else t["gone"]
    return _message(request, lang, heading, str(exc), exc.status_code)


def _unit_of_work(request: Request, work: Callable[[Connection], Response]) -> Response:
    """Run a respondent's step (open the link, save an answer) as one transaction, again after
    a write conflict: respondents answering at once, or a send job touching the same invitation,
    must all get their page, not a 500; a 409 page only if the conflict outlasts every retry."""
    try:
        return retrying(get_engine(request), work, what="saving your answer")
    except Conflict as exc:
        lang = request.query_params.get("lang") or "en"
        return _message(request, lang, ui(lang)["slow"], str(exc), 409)


async def _step(
    request: Request, work: Callable[[Connection], Response], key: Hashable,
    read: Reader | None = None,
) -> Response:  # fmt: skip
    """A respondent's step through the app's answer writer (off the event loop, its
    transaction shared with the steps of other respondents, answered after the commit).

    ``key`` names the rows the step reads and writes (its invitation's token, its response);
    steps of one key never share a transaction, so each may leave its writes to the writer.
    ``read`` reads ahead for the steps of a transaction (``cxm.surveys.writer``).
    """
    try:
        writer = writer_for(request.app.state, get_engine(request))
        return await writer.run(work, key=key, read=read)
    except Conflict as exc:
        lang = request.query_params.get("lang") or "en"
        return _message(request, lang, ui(lang)["slow"], str(exc), 409)


def _with_lang(url: str, lang: str) -> str:
    return f"{url}?{urlencode({'lang': lang})}"


async def _form(request: Request) -> tuple[str, list[str], str | None, bool]:
    form = await request.form()
    values = [str(v) for v in form.getlist("a")]
    lang = form.get("lang")
    return str(form.get("q", "")), values, str(lang) if lang else None, bool(form.get("website"))


def _invalid(
    request: Request, session: Session, qid: str, values: list[str], lang: str, action: str,
    exc: Invalid,
) -> HTMLResponse:  # fmt: skip
    """The same question again, with what was entered and what a valid answer is."""
    q = session.defn.question(qid)
    shown: Any = values if q is not None and q.type == "multiple_choice" else (
        values[0] if values else None)  # fmt: skip
    if shown is not None and q is not None and q.bounds():
        try:
            shown = int(shown)
        except ValueError:
            shown = None
    return _render(request, session, lang, action, error=str(exc), value=shown, status=422)


def _answer(
    request: Request, conn: Connection, session: Session, qid: str, values: list[str],
    lang: str, path: str,
) -> Response:  # fmt: skip
    try:
        service.save_answer(conn, session, qid, values, source=session.channel)
    except Invalid as exc:
        return _invalid(request, session, qid, values, lang, path, exc)
    if session.completed:
        return _render(request, session, lang, path)
    return RedirectResponse(_with_lang(path, lang), status_code=303)


@router.get("/s/open/{survey}", response_class=HTMLResponse)
def open_page(
    request: Request, survey: str, conn: Connection = Depends(db, scope="function")
) -> Response:
    try:
        hidden = {k: v for k, v in request.query_params.items() if k not in ("channel", "lang")}
        session = service.session_for_open(
            conn, survey, channel=request.query_params.get("channel", "web"), hidden=hidden
        )
    except CxmError as exc:
        return _problem(request, exc)
    lang = _language(request, session, None)
    return _render(request, session, lang, str(request.url.include_query_params(lang=lang)))


def _allow(request: Request) -> bool:
    """Sliding-window limit on new open-link responses per client address."""
    buckets: dict[str, deque[float]] | None = getattr(request.app.state, "survey_open_hits", None)
    if buckets is None:
        buckets = defaultdict(deque)
        request.app.state.survey_open_hits = buckets
    ip = request.client.host if request.client else "unknown"
    hits = buckets[ip]
    now = time.monotonic()
    while hits and hits[0] < now - OPEN_WINDOW:
        hits.popleft()
    if len(hits) >= OPEN_LIMIT:
        return False
    hits.append(now)
    return True


@router.post("/s/open/{survey}", response_class=HTMLResponse)
async def open_submit(request: Request, survey: str) -> Response:
    qid, values, chosen, bot = await _form(request)
    hidden = {k: v for k, v in request.query_params.items() if k not in ("channel", "lang")}
    channel = request.query_params.get("channel", "web")
    allowed: list[bool] = []  # the rate limit counts a submission once, not once per retry

    def work(conn: Connection) -> Response:
        try:
            session = service.session_for_open(conn, survey, channel=channel, hidden=hidden)
        except CxmError as exc:
            return _problem(request, exc)
        lang = _language(request, session, chosen)
        t = ui(lang)
        if bot:  # the honeypot was filled in: thank the robot, store nothing
            return _message(request, lang, t["thanks"], t["thanks_text"])
        if not allowed:
            allowed.append(_allow(request))
        if not allowed[0]:
            return _message(request, lang, t["slow"], t["slow_text"], 429)
        try:
            service.save_answer(conn, session, qid, values, source=session.channel)
        except Invalid as exc:
            return _invalid(request, session, qid, values, lang, str(request.url), exc)
        target = f"/s/open/{survey}/{session.response_id}"
        if session.completed:
            return _render(request, session, lang, target)
        return RedirectResponse(_with_lang(target, lang), status_code=303)

    return await _step(request, work, object())  # a new response: no other step reads it


@router.get("/s/open/{survey}/{response_id}", response_class=HTMLResponse)
def open_continue(
    request: Request,
    survey: str,
    response_id: str,
    conn: Connection = Depends(db, scope="function"),
) -> Response:
    try:
        session = service.session_for_open(conn, survey, response_id)
    except CxmError as exc:
        return _problem(request, exc)
    lang = _language(request, session, None)
    return _render(request, session, lang, f"/s/open/{survey}/{response_id}")


@router.post("/s/open/{survey}/{response_id}", response_class=HTMLResponse)
async def open_continue_submit(request: Request, survey: str, response_id: str) -> Response:
    qid, values, chosen, bot = await _form(request)

    def work(conn: Connection) -> Response:
        try:
            session = service.session_for_open(conn, survey, response_id)
        except CxmError as exc:
            return _problem(request, exc)
        lang = _language(request, session, chosen)
        if bot:
            return _message(request, lang, ui(lang)["thanks"], ui(lang)["thanks_text"])
        path = f"/s/open/{survey}/{response_id}"
        return _answer(request, conn, session, qid, values, lang, path)

    return await _step(request, work, ("response", response_id))


@router.get("/s/{token}", response_class=HTMLResponse)
def invitation_page(request: Request, token: str) -> Response:
    def work(conn: Connection) -> Response:
        try:
            session = service.session_for_token(conn, token)
        except (NotFound, Conflict, Expired) as exc:
            return _problem(request, exc)
        lang = _language(request, session, None)
        return _render(request, session, lang, f"/s/{token}")

    return _unit_of_work(request, work)


@router.post("/s/{token}", response_class=HTMLResponse)
async def invitation_submit(request: Request, token: str) -> Response:
    qid, values, chosen, bot = await _form(request)

    def work(conn: Connection) -> Response:
        try:  # the open is written with the answer's own writes (one invitation update)
            session = service.session_for_token(conn, token, record=False)
        except (NotFound, Conflict, Expired) as exc:
            return _problem(request, exc)
        lang = _language(request, session, chosen)
        if bot:
            page: Response = _message(request, lang, ui(lang)["thanks"], ui(lang)["thanks_text"])
        else:
            page = _answer(request, conn, session, qid, values, lang, f"/s/{token}")
        service.record_open(conn, session)  # when no answer was saved
        return page

    return await _step(request, work, ("token", token), _read_invitations)


def _read_invitations(conn: Connection, keys: list[Hashable], memo: dict[Hashable, Any]) -> None:
    """The invitations of a transaction's ``POST /s/{token}`` steps, read in one go."""
    service.read_invitations(conn, [str(key[1]) for key in keys if isinstance(key, tuple)], memo)


def _invitation_customer(conn: Connection, token: str) -> tuple[str, str]:
    row = conn.execute(
        sa.select(invitations.c.customer_id, invitations.c.language).where(
            invitations.c.token == token
        )
    ).first()
    if row is None or row.customer_id is None:
        raise NotFound("This unsubscribe link is not known.")
    return row.customer_id, row.language or "en"


@router.get("/s/{token}/unsubscribe", response_class=HTMLResponse)
def unsubscribe_page(
    request: Request, token: str, conn: Connection = Depends(db, scope="function")
) -> Response:
    # A confirmation button, not an unsubscribe on GET: link scanners follow every link.
    try:
        _, lang = _invitation_customer(conn, token)
    except NotFound as exc:
        return _problem(request, exc)
    t = ui(lang)
    return _message(
        request, lang, t["unsub"], t["unsub_text"], form_action=f"/s/{token}/unsubscribe",
        button=t["unsub_button"],
    )  # fmt: skip


@router.post("/s/{token}/unsubscribe", response_class=HTMLResponse)
def unsubscribe_submit(
    request: Request, token: str, conn: Connection = Depends(db, scope="function")
) -> Response:
    try:
        customer_id, lang = _invitation_customer(conn, token)
    except NotFound as exc:
        return _problem(request, exc)
    service.unsubscribe(conn, customer_id, "link")
    t = ui(lang)
    return _message(request, lang, t["unsub_done"], t["unsub_text"])

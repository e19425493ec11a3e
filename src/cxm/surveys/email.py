"""Invitation emails: rendering (HTML and text per survey and language) and SMTP delivery."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from cxm.config import Settings
from cxm.mail import send_mail
from cxm.surveys.schemas import SurveyDefinition
from cxm.surveys.service import text_in

HTML = Path(__file__).parent / "html"
_env = Environment(
    loader=FileSystemLoader(HTML),
    autoescape=select_autoescape(["html"]),
    keep_trailing_newline=True,
)

# Wording used when a survey does not give its own; other languages fall back to English.
DEFAULTS: dict[str, dict[str, str]] = {
    "subject": {"en": "{title}", "de": "{title}", "fr": "{title}"},
    "body": {
        "en": "We would like to hear about your experience. It takes about a minute.",
        "de": "Wir möchten gern von Ihrer Erfahrung hören. Es dauert etwa eine Minute.",
        "fr": "Nous aimerions connaître votre expérience. Cela prend environ une minute.",
    },
    "button": {"en": "Start the survey", "de": "Zur Umfrage", "fr": "Commencer"},
    "unsubscribe": {
        "en": "Do not want these emails?",
        "de": "Sie möchten diese E-Mails nicht?",
        "fr": "Vous ne souhaitez plus ces e-mails ?",
    },
    "unsubscribe_link": {"en": "Unsubscribe", "de": "Abmelden", "fr": "Se désabonner"},
}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def render(defn: SurveyDefinition, language: str, link: str, unsubscribe_link: str) -> Rendered:
    lang = language if language in defn.languages else defn.default_language
    title = text_in(defn.title, lang, defn.default_language)

    def default(name: str) -> str:
        return DEFAULTS[name].get(lang) or DEFAULTS[name]["en"]

    subject = (
        text_in(defn.email.subject, lang, defn.default_language)
        if defn.email.subject
        else default("subject")
    ).format(title=title)
    body = (
        text_in(defn.email.body, lang, defn.default_language)
        if defn.email.body
        else default("body")
    )
    context = {
        "lang": lang, "title": title, "body": body, "link": link, "button": default("button"),
        "unsubscribe": default("unsubscribe"), "unsubscribe_link_text": default("unsubscribe_link"),
        "unsubscribe_link": unsubscribe_link,
    }  # fmt: skip
    return Rendered(
        subject,
        _env.get_template("email.txt").render(context),
        _env.get_template("email.html").render(context),
    )


_MESSAGE_ID = re.compile(r"<cxm-invitation\.([0-9a-f]{1,32})\.(\d+)@[^>]*>")


def message_id(invitation_id: str, attempt: int, domain: str) -> str:
    """The Message-ID of one attempt at an invitation, so a bounce report (DSN) that returns
    the original headers names the invitation it is about."""
    return f"<cxm-invitation.{invitation_id}.{attempt}@{domain}>"


def invitation_of(value: str | None) -> tuple[str, int] | None:
    """``(invitation id, attempt)`` from a Message-ID written by ``message_id``, else None."""
    found = _MESSAGE_ID.search(value or "")
    return (found.group(1), int(found.group(2))) if found else None


def send(
    settings: Settings, recipient: str, message: Rendered, unsubscribe_link: str,
    message_id: str | None = None,
) -> str:  # fmt: skip
    """Hand the message to the SMTP server; returns its Message-ID. Raises on any failure."""
    # One-click unsubscribe (RFC 8058) so mail clients offer it beside the message.
    headers = {
        "List-Unsubscribe": f"<{unsubscribe_link}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    if message_id:
        headers["Message-ID"] = message_id
    return send_mail(settings, recipient, message.subject, message.text, message.html, headers)

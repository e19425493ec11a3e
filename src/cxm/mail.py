"""Sending email over SMTP with the installation's settings (invitations, notifications)."""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr

from cxm.config import Settings


@dataclass(frozen=True)
class Failure:
    """Why a hand-over to the SMTP server failed.

    ``permanent`` is a hard bounce: the server refused the recipient or the message for good
    (a 5xx reply at RCPT or DATA, RFC 5321 section 4.2.1); anything else (4xx, a refused
    sender, a lost connection, a timeout) is worth retrying. ``code`` is the SMTP reply code
    (0 when there was none) and ``text`` the server's words with the recipient's address
    replaced by ``<recipient>``, so a delivery log holds no address.
    """

    permanent: bool
    code: int
    text: str

    @property
    def status(self) -> str:
        """The reply code and, when the server gave one, its RFC 3463 status: ``550 5.1.1``."""
        found = _ENHANCED.search(self.text)
        return f"{self.code} {found.group(1)}" if found else str(self.code)


_ENHANCED = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


def _reply(message: bytes | str) -> str:
    return message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)


def _in_words(exc: BaseException) -> str:
    """What went wrong reaching the mail server, in words a person acts on (no exception
    class names or errno numbers): a refused connection, a timeout, a name that does not
    resolve, a dropped connection; anything else keeps the exception's own message."""
    if isinstance(exc, ConnectionRefusedError):
        return "no mail server answered at the configured host and port (connection refused)"
    if isinstance(exc, TimeoutError):
        return "the mail server did not answer in time"
    if isinstance(exc, socket.gaierror):
        return f"the mail server's host name could not be resolved ({exc.strerror or exc})"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"the mail server closed the connection ({exc})" if str(exc) else (
            "the mail server closed the connection")  # fmt: skip
    if isinstance(exc, ssl.SSLError):
        why = getattr(exc, "reason", None) or exc
        return f"the secure connection to the mail server failed ({why})"
    if isinstance(exc, OSError):
        return f"could not reach the mail server ({exc.strerror or exc})"
    if isinstance(exc, ValueError):
        return f"not sent: {exc}"
    return f"{type(exc).__name__}: {exc}"


def classify_failure(exc: BaseException, recipient: str) -> Failure:
    """Sort an exception of ``send_mail`` into a hard bounce or a failure to retry.

    ``text`` is what a delivery log and the pages show: the server's reply for an SMTP
    refusal, otherwise the failure in words (``_in_words``)."""
    code, text = 0, _in_words(exc)
    permanent = False
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, message = next(iter(exc.recipients.values()), (0, b""))
        text, permanent = f"RCPT refused: {code} {_reply(message)}", code >= 500
    elif isinstance(exc, smtplib.SMTPDataError):
        code, text = exc.smtp_code, f"DATA refused: {exc.smtp_code} {_reply(exc.smtp_error)}"
        permanent = code >= 500
    elif isinstance(exc, smtplib.SMTPResponseException):
        # A refused sender, HELO or AUTH says nothing about the recipient's address.
        code = exc.smtp_code
        text = f"{type(exc).__name__}: {code} {_reply(exc.smtp_error)}"
    for form in {recipient, recipient.lower()}:
        if form:
            text = text.replace(form, "<recipient>")
    return Failure(permanent, int(code or 0), text[:2000])


def sender_domain(settings: Settings) -> str:
    """The domain of the sender address (for Message-IDs), ``cxm.local`` when it has none."""
    address = parseaddr(settings.smtp_sender)[1]
    return address.rpartition("@")[2] or "cxm.local"


def send_mail(
    settings: Settings,
    recipient: str,
    subject: str,
    text: str,
    html: str | None = None,
    headers: Mapping[str, str] | None = None,
    attachments: Sequence[tuple[str, bytes, str]] = (),
) -> str:
    """Hand one message to the SMTP server; returns its Message-ID. Raises on any failure
    (``classify_failure`` says whether it was a hard bounce). A ``Message-ID`` in ``headers``
    is used as given, so a bounce report can name what it is about."""
    msg = EmailMessage()
    msg["From"] = settings.smtp_sender
    msg["To"] = recipient
    msg["Subject"] = subject
    given = dict(headers or {})
    msg["Message-ID"] = given.pop("Message-ID", None) or make_msgid(domain=sender_domain(settings))
    for name, value in given.items():
        msg[name] = value
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, data, media_type in attachments:  # (name, bytes, "application/pdf")
        maintype, _, subtype = media_type.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    security = settings.smtp_security
    if security not in ("none", "starttls", "tls"):
        raise ValueError(f"CXM_SMTP_SECURITY '{security}' is not none, starttls or tls")
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if security == "tls":
        smtp = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=30, context=context)
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30)
    with smtp:
        if security == "starttls":
            smtp.starttls(context=context)
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password)
        smtp.send_message(msg)
    return str(msg["Message-ID"])

"""A mail hand-over that fails is said in words a person acts on, wherever it is recorded."""

from __future__ import annotations

import smtplib
import ssl
from pathlib import Path

import pytest

from cxm.config import load_settings
from cxm.mail import classify_failure, send_mail


def test_no_mail_server_is_said_in_words_not_as_an_exception(
    tmp_path: Path, refused_port: int
) -> None:
    settings = load_settings(data_dir=tmp_path, smtp_port=refused_port)
    with pytest.raises(OSError) as raised:
        send_mail(settings, "ann@example.com", "Hello", "Hi")
    failure = classify_failure(raised.value, "ann@example.com")
    assert failure.text == (
        "no mail server answered at the configured host and port (connection refused)"
    )
    assert not failure.permanent and failure.code == 0


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (TimeoutError("timed out"), "the mail server did not answer in time"),
        (smtplib.SMTPServerDisconnected(), "the mail server closed the connection"),
        (ssl.SSLError(1, "WRONG_VERSION"), "the secure connection to the mail server failed"),
        (OSError(101, "Network is unreachable"), "could not reach the mail server (Network is"),
        (ValueError("no sender address"), "not sent: no sender address"),
    ],
)  # fmt: skip
def test_network_failures_name_what_failed_without_class_names(exc: Exception, words: str) -> None:
    text = classify_failure(exc, "ann@example.com").text
    assert text.startswith(words)
    assert "Error" not in text and "Errno" not in text


def test_a_refused_recipient_keeps_the_servers_reply_without_the_address() -> None:
    refused = smtplib.SMTPRecipientsRefused(
        {"ann@example.com": (550, b"5.1.1 ann@example.com: user unknown")}
    )
    failure = classify_failure(refused, "ann@example.com")
    assert failure.text == "RCPT refused: 550 5.1.1 <recipient>: user unknown"
    assert failure.permanent and failure.status == "550 5.1.1"

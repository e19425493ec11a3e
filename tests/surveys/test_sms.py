"""SMS invitations through an HTTP gateway (a real local receiver), and one contact ledger
across channels: fatigue counts an email contact when an SMS is planned, and the reverse."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.config import load_settings
from cxm.customers.tables import customer_identities
from cxm.store import jobs, utcnow
from cxm.surveys import distribution, sms
from cxm.surveys.tables import email_deliveries, invitations
from tests.conftest import free_port
from tests.surveys.conftest import T0, add_customer, apply

PHONE = "+4915112345678"


@dataclass
class Gateway:
    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # status codes to answer, then 201


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    """A local SMS gateway that answers like Twilio's Messages API."""
    port = free_port()
    state = Gateway(f"http://127.0.0.1:{port}/2010-04-01/Accounts/AC1/Messages.json")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            code = state.answers.pop(0) if state.answers else 201
            answer = json.dumps({"sid": f"SM{len(state.received):032d}", "status": "queued"})
            if code >= 400:
                answer = json.dumps({"code": 21211, "message": "Invalid 'To' Phone Number"})
            data = answer.encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


def _customer(
    conn: sa.Connection, email: str | None = "ada@example.com", phone: str = PHONE
) -> str:
    cid = add_customer(conn, email)
    conn.execute(
        customer_identities.insert().values(kind="phone", value=phone, customer_id=cid,
                                            first_seen=T0)
    )  # fmt: skip
    return cid


def _invite(engine: Engine, cid: str, channel: str, survey: str = "delivery_csat") -> str:
    with engine.begin() as conn:
        return distribution.invite(
            conn, {"survey": survey, "customer_id": cid, "channel": channel}, now=utcnow()
        )


def _status(engine: Engine) -> list[tuple[str, str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(invitations.c.channel, invitations.c.status, invitations.c.reason).order_by(
                invitations.c.created_at
            )
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_a_twilio_compatible_gateway_gets_the_form_with_basic_auth(
    engine: Engine, gateway: Gateway
) -> None:
    settings = load_settings(sms_url=gateway.url, sms_auth="basic:AC1:auth-token",
                             sms_sender="+4930123456", base_url="http://cxm.test")  # fmt: skip
    with engine.begin() as conn:
        apply(conn)
        cid = _customer(conn)
    assert _invite(engine, cid, "sms") == "sent"
    jobs.run_due(engine, distribution.handlers(settings))
    ((headers, body),) = gateway.received
    assert headers["authorization"] == "Basic " + base64.b64encode(b"AC1:auth-token").decode()
    form = urllib.parse.parse_qs(body.decode())
    assert form["To"] == [PHONE] and form["From"] == ["+4930123456"]
    (text,) = form["Body"]
    assert text.startswith("How was your delivery? http://cxm.test/s/")
    assert _status(engine) == [("sms", "sent", None)]
    with engine.connect() as conn:
        log = conn.execute(sa.select(email_deliveries.c.status, email_deliveries.c.error)).one()
    assert log == ("sent", f"gateway id SM{1:032d}")


def test_a_json_gateway_gets_its_template_with_a_bearer_token(
    engine: Engine, gateway: Gateway
) -> None:
    template = (
        '{"messages": [{"destinations": [{"to": "{to}"}], "from": "{sender}", "text": "{text}"}]}'
    )
    settings = load_settings(
        sms_url=gateway.url, sms_auth="bearer:tok-123", sms_format="json", sms_body=template,
        sms_sender='Shop "N"', base_url="http://cxm.test",
    )  # fmt: skip
    with engine.begin() as conn:
        apply(conn)
        cid = _customer(conn)
    _invite(engine, cid, "sms")
    jobs.run_due(engine, distribution.handlers(settings))
    ((headers, body),) = gateway.received
    assert headers["authorization"] == "Bearer tok-123"
    assert headers["content-type"] == "application/json"
    doc = json.loads(body)
    message = doc["messages"][0]
    assert message["destinations"] == [{"to": PHONE}] and message["from"] == 'Shop "N"'
    assert message["text"].startswith("How was your delivery? http://cxm.test/s/")


def test_a_refused_number_fails_for_good_and_a_busy_gateway_is_retried(
    engine: Engine, gateway: Gateway
) -> None:
    settings = load_settings(sms_url=gateway.url, base_url="http://cxm.test")
    gateway.answers = [400]
    with engine.begin() as conn:
        apply(conn)
        refused = _customer(conn)
    _invite(engine, refused, "sms")
    jobs.run_due(engine, distribution.handlers(settings))
    later = utcnow() + dt.timedelta(hours=1)
    assert jobs.run_due(engine, distribution.handlers(settings), now=later) == 0
    assert _status(engine) == [("sms", "failed", "send_failed")]
    with engine.connect() as conn:
        error = conn.execute(sa.select(email_deliveries.c.error)).scalar_one()
    assert "gateway refused the message: 400" in error and "21211" in error


def test_a_gateway_error_is_retried_with_backoff(engine: Engine, gateway: Gateway) -> None:
    settings = load_settings(sms_url=gateway.url, base_url="http://cxm.test")
    gateway.answers = [503]
    with engine.begin() as conn:
        apply(conn)
        cid = _customer(conn)
    _invite(engine, cid, "sms")
    jobs.run_due(engine, distribution.handlers(settings))
    assert _status(engine) == [("sms", "created", None)]
    jobs.run_due(engine, distribution.handlers(settings), now=utcnow() + dt.timedelta(hours=1))
    assert len(gateway.received) == 2
    assert _status(engine) == [("sms", "sent", None)]


def test_no_phone_or_no_gateway_never_sends(engine: Engine, gateway: Gateway) -> None:
    with engine.begin() as conn:
        apply(conn)
        cid = add_customer(conn, "only@example.com")
    assert _invite(engine, cid, "sms") == "no_phone"
    with engine.begin() as conn:
        other = _customer(conn, None, "+4915100000002")
    _invite(engine, other, "sms")
    jobs.run_due(engine, distribution.handlers(load_settings(sms_url="")))
    assert gateway.received == []
    statuses = _status(engine)
    assert statuses[0] == ("sms", "suppressed", "no_phone")
    assert statuses[1] == ("sms", "failed", "send_failed")  # no gateway configured


def test_fatigue_holds_back_the_second_channel_inside_the_window(
    engine: Engine, gateway: Gateway
) -> None:
    with engine.begin() as conn:
        apply(conn)
        cid = _customer(conn)
    assert _invite(engine, cid, "email") == "sent"
    assert _invite(engine, cid, "sms") == "fatigue"
    with engine.begin() as conn:
        second = _customer(conn, "bo@example.com", "+4915100000003")
    assert _invite(engine, second, "sms") == "sent"
    assert _invite(engine, second, "email") == "fatigue"
    assert [s[:2] for s in _status(engine)] == [
        ("email", "created"),
        ("sms", "suppressed"),
        ("sms", "created"),
        ("email", "suppressed"),
    ]


def test_an_unknown_format_or_auth_is_named(engine: Engine) -> None:
    with pytest.raises(ValueError, match="CXM_SMS_FORMAT 'xml' is not one of twilio, json"):
        sms.request(load_settings(sms_url="http://x", sms_format="xml"), PHONE, "hi")
    with pytest.raises(ValueError, match="'basic:USER:PASSWORD' or 'bearer:TOKEN'"):
        sms.request(load_settings(sms_url="http://x", sms_auth="token123"), PHONE, "hi")
    with pytest.raises(ValueError, match="not JSON once filled in"):
        sms.request(
            load_settings(sms_url="http://x", sms_format="json", sms_body="{to}"), PHONE, "hi"
        )


def test_one_customer_by_email_sms_and_in_product_hears_only_the_first(engine: Engine) -> None:
    from cxm.surveys import inproduct

    in_product = (
        "key: app_ces\ntitle: {en: In the app}\nquestions:\n"
        '  - {id: ces, type: ces, required: true, text: {en: "Easy?"}}\n'
        "triggers:\n  - {event: order_placed, channel: in_product}\n"
    )
    with engine.begin() as conn:
        apply(conn)
        apply(conn, in_product)
        cid = _customer(conn)
        conn.execute(
            customer_identities.insert().values(kind="user_id", value="u-7", customer_id=cid,
                                                first_seen=T0)
        )  # fmt: skip
    check = inproduct.Check(user_id="u-7", event="order_placed")
    assert _invite(engine, cid, "email") == "sent"
    assert _invite(engine, cid, "sms") == "fatigue"
    with engine.begin() as conn:
        assert inproduct.decide(conn, check, "http://cxm.test") == {"show": False}
    assert [s[:2] for s in _status(engine)] == [("email", "created"), ("sms", "suppressed")]
    # A customer first reached in the product is then held back on email and SMS.
    with engine.begin() as conn:
        other = _customer(conn, "eve@example.com", "+4915100000009")
        conn.execute(
            customer_identities.insert().values(kind="user_id", value="u-8", customer_id=other,
                                                first_seen=T0)
        )  # fmt: skip
        shown = inproduct.decide(conn, inproduct.Check(user_id="u-8", event="order_placed"),
                                 "http://cxm.test")  # fmt: skip
    assert shown["show"] is True and shown["url"].startswith("http://cxm.test/s/")
    assert _invite(engine, other, "email") == "fatigue"
    assert _invite(engine, other, "sms") == "fatigue"

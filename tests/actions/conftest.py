"""Helpers for closed-loop tests: an org with owned touchpoints, customers, responses, agents."""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy.engine import Connection

from cxm.customers.tables import customer_identities, customer_traits, customers
from cxm.org import auth
from cxm.org import service as org
from cxm.surveys.tables import responses
from cxm.yamldoc import parse
from tests.conftest import free_port  # re-exported for this folder's tests

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)  # a Monday, inside business hours

ORG = """\
departments:
  - key: supply_chain
    name: Supply Chain & Delivery
    teams:
      - {key: delivery_team, name: Delivery team, default: true, lead_email: lead@delivery.example}
      - {key: returns_team, name: Returns team}
  - key: service
    name: Customer Service
    teams:
      - {key: service_team, name: Service team, default: true, lead_email: lead@service.example}
touchpoints:
  - {key: delivery, name: Home delivery, channel: delivery, stage: receive,
     owner: {department: supply_chain}}
  - {key: returns, name: Returns, channel: web, stage: use,
     owner: {department: supply_chain, team: returns_team}}
  - {key: support_chat, name: Support chat, channel: chat, stage: get help,
     owner: {department: service}}
"""


def setup_org(conn: Connection) -> None:
    org.seed_defaults(conn)
    org.apply_org(conn, parse(ORG, "org.yaml"))


def add_agent(conn: Connection, email: str, team: str) -> str:
    dept = org.get_team(conn, team).department_key
    return auth.create_user(
        conn, email, "agent", password="a long password", department_key=dept, team_key=team
    )


def add_customer(
    conn: Connection, email: str | None = None, traits: dict[str, str] | None = None
) -> str:
    cid = secrets.token_hex(16)
    conn.execute(
        customers.insert().values(
            id=cid, created_at=T0, first_seen=T0, last_seen=T0, interaction_count=0
        )
    )
    if email:
        conn.execute(
            customer_identities.insert().values(
                kind="email", value=email, customer_id=cid, first_seen=T0
            )
        )
    for name, value in (traits or {}).items():
        conn.execute(
            customer_traits.insert().values(customer_id=cid, name=name, value=value, set_at=T0)
        )
    return cid


def add_response(
    conn: Connection,
    customer_id: str | None,
    touchpoint: str | None,
    *,
    nps: int | None = None,
    csat: int | None = None,
    at: dt.datetime = T0,
    survey: str = "relationship_nps",
    trigger: str | None = None,
) -> str:
    rid = secrets.token_hex(12)
    category = (
        None if nps is None else "promoter" if nps >= 9 else "passive" if nps >= 7 else "detractor"
    )
    conn.execute(
        responses.insert().values(
            id=rid,
            survey_key=survey,
            survey_version=1,
            respondent_kind="customer",
            customer_id=customer_id,
            employee_id=None,
            invitation_id=None,
            trigger_event_id=trigger,
            touchpoint_key=touchpoint,
            channel="email",
            language="en",
            started_at=at,
            submitted_at=at,
            completed=True,
            nps=nps,
            nps_category=category,
            csat=csat,
            ces=None,
            comment=None,
            source="api",
        )
    )
    return rid


DETRACTOR_RULES = """\
rules:
  - key: detractor
    name: Detractor
    when: {response: {nps_max: 6}}
    priority: p2
    sla: {first_response: 4h, resolution: 2d}
"""


@dataclass
class Inbox:
    messages: list[dict[str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(
            {
                "to": ",".join(envelope.rcpt_tos),  # type: ignore[attr-defined]
                "data": envelope.content.decode("utf-8", "replace"),  # type: ignore[attr-defined]
            }
        )
        return "250 OK"


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[int, Inbox]]:
    """A real SMTP server in-process on a free port."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    with smtp_server() as server:
        yield server


@dataclass
class Receiver:
    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    fail_first: int = 0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real local HTTP receiver; answers 500 to the first ``fail_first`` posts."""
    port = free_port()
    state = Receiver(f"http://127.0.0.1:{port}/hook")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            code = 500 if state.fail_first >= len(state.received) else 200
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()

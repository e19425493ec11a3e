"""Helpers for survey tests: survey documents and customers inserted as rows."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy.engine import Connection

from cxm.customers.tables import customer_identities, customer_traits, customers
from cxm.surveys import service
from cxm.yamldoc import parse

DELIVERY = """\
key: delivery_csat
title: {en: "How was your delivery?", de: "Wie war Ihre Lieferung?"}
kind: transactional
languages: [en, de]
default_language: en
intro: {en: "Two questions.", de: "Zwei Fragen."}
thank_you: {en: "Thanks a lot!", de: "Vielen Dank!"}
questions:
  - {id: csat, type: csat, required: true,
     text: {en: "How satisfied are you?", de: "Wie zufrieden sind Sie?"}}
  - {id: what_wrong, type: open_text, required: false, show_if: "csat <= 3",
     text: {en: "What went wrong?", de: "Was lief schief?"}}
  - {id: reason, type: single_choice, text: {en: "Main reason?", de: "Hauptgrund?"},
     options: [{value: speed, text: {en: Speed, de: Tempo}},
               {value: care, text: {en: Care, de: Sorgfalt}}]}
  - {id: touchpoint, type: hidden}
triggers:
  - {event: order_delivered, delay: 2h, channel: email}
"""

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


def apply(conn: Connection, text: str = DELIVERY) -> service.ApplyResult:
    return service.apply_definition(conn, parse(text, "survey.yaml"))


def add_customer(
    conn: Connection, email: str | None = None, traits: dict[str, str] | None = None
) -> str:
    cid = secrets.token_hex(16)
    conn.execute(
        customers.insert().values(id=cid, created_at=T0, first_seen=T0, last_seen=T0,
                                  interaction_count=0)
    )  # fmt: skip
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

"""Erase one person in every table that holds something personal about them.

Each domain erases what it knows the meaning of: the customer 360 erases identities, traits
and personal fields of interactions and responses; text analytics drops the stored sentences
of their comments; the closed loop blanks their case notes; the surveys' suppression ledger
keeps only a digest of their addresses (a bounced address stays held back). Then a sweep
(``cxm.privacy.sweep``) replaces every remaining copy of their identifiers, personal traits
and longer free text in every text and JSON column of every table: delivery logs, SMTP error
texts, job payloads, webhook logs, hidden fields, and tables added later. Scores, times and
counts stay, so every aggregate stays right.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cxm.actions import service as actions
from cxm.customer360 import service as c360
from cxm.customers import service as customers
from cxm.insights import facts as insights
from cxm.privacy import sweep
from cxm.surveys import suppressions
from cxm.surveys.facts import response_answers
from cxm.surveys.facts import responses_table as responses
from cxm.text import service as text
from cxm.text.analytics import SOURCE as TEXT_SOURCE

# Traits that name or locate a person (swept like identifiers); other traits (plan, segment,
# language) are shared by many customers and are deleted with the profile but not swept.
PERSONAL_TRAITS = {
    "email", "phone", "name", "first_name", "last_name", "full_name", "firstname", "lastname",
    "username", "address", "street", "birthday", "company_email", "mobile",
}  # fmt: skip
# Free text shorter than this is not swept from other rows: a short answer ("late again")
# is as likely another customer's own words as a copy of this person's.
MIN_FREE_TEXT = 20


def personal_values(conn: Connection, customer_ids: list[str]) -> set[str]:
    """What identifies the person behind ``customer_ids``: every identifier value, personal
    trait values, and their comments and open answers of at least ``MIN_FREE_TEXT`` chars."""
    found: set[str] = set()
    for cid in customer_ids:
        for values in customers.identifiers(conn, cid).values():
            found.update(values)
        for name, value in customers.traits(conn, cid).items():
            if value and (name.lower() in PERSONAL_TRAITS or "@" in value):
                found.add(value)
    answered = c360.response_ids(conn, customer_ids)
    if answered:
        texts = list(
            conn.execute(
                sa.select(responses.c.comment).where(responses.c.id.in_(answered))
            ).scalars()
        )
        texts += conn.execute(
            sa.select(response_answers.c.value_text).where(
                response_answers.c.response_id.in_(answered),
                response_answers.c.question_type == "open_text",
            )
        ).scalars().all()  # fmt: skip
        for t in texts:
            if t and len(t.strip()) >= MIN_FREE_TEXT:
                found.add(t.strip())
                # Comments are stored joined; each line is also an answer of its own.
                found.update(p.strip() for p in t.splitlines() if len(p.strip()) >= MIN_FREE_TEXT)
    return found


def erase(conn: Connection, identifier: str, requested_by: str) -> dict[str, int]:
    """Erase the person behind ``identifier``; returns what was done, per kind of record.

    Raises ``NotFound`` for an identifier no customer holds.
    """
    customer_id = c360.lookup(conn, identifier)
    ids = customers.merged_ids(conn, customer_id)
    needles = personal_values(conn, ids)
    answered = c360.response_ids(conn, ids)
    emails = [v for cid in ids for v in customers.identifiers(conn, cid).get("email", [])]
    suppressed = suppressions.forget(conn, ids, emails)
    counts = c360.erase(conn, customer_id, requested_by, record=False)
    counts["text_annotations_cleared"] = text.forget(conn, TEXT_SOURCE, answered)
    counts["case_notes_cleared"] = actions.forget_customers(conn, ids)
    counts["predictions_deleted"] = insights.forget(conn, ids)
    counts["suppressions_pseudonymised"] = suppressed
    counts["other_values_scrubbed"] = sum(sweep.scrub(conn, needles).values())
    c360.record_request(conn, "erase", customer_id, requested_by, counts)
    return counts

"""Erasure reaches every table with something personal: comments, annotations, case notes."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.actions import service as actions
from cxm.actions.tables import case_notes
from cxm.interactions import service as interactions
from cxm.metrics import compute
from cxm.org import service as org
from cxm.org.auth import Principal
from cxm.org.scope import scope_for
from cxm.privacy import service as privacy
from cxm.surveys.tables import responses
from cxm.text.jobs import annotate_bulk
from cxm.text.tables import text_annotations
from cxm.yamldoc import parse
from tests.web.factories import ORG, add_responses

LEAD = Principal(scope="admin", role="cx_lead", email="lead@example.com")


def test_erase_clears_comments_annotations_and_case_notes_but_keeps_aggregates(
    seeded: Engine,
) -> None:
    with seeded.begin() as conn:
        org.apply_org(conn, parse(ORG))
        (event,) = interactions.ingest(
            conn, [{"event_id": "e1", "name": "order_delivered", "email": "eve@example.com",
                    "touchpoint": "delivery"}], "api",
        )  # fmt: skip
    add_responses(seeded, "delivery", [1], comment="Awful and rude, my address is 1 Main St",
                  customer_id=event.customer_id)  # fmt: skip
    add_responses(seeded, "delivery", [9, 10, 3])
    annotate_bulk(seeded, semantic=False)
    with seeded.begin() as conn:
        actions.apply_default_rules(conn)
        actions.run_rules(conn)
        case = next(
            c for c in actions.list_cases(conn, scope_for(LEAD))
            if c["customer_id"] == event.customer_id
        )  # fmt: skip
        actions.add_note(
            conn, scope_for(LEAD), LEAD.email, case["id"], "Called Eve on +49 151 1234567"
        )
    nps_before = compute(seeded, "nps").iloc[0]["value"]
    with seeded.begin() as conn:
        counts = privacy.erase(conn, "eve@example.com", "dpo@example.com")
    assert counts["text_annotations_cleared"] == 1 and counts["case_notes_cleared"] == 1
    with seeded.connect() as conn:
        response_id, comment = conn.execute(
            sa.select(responses.c.id, responses.c.comment).where(
                responses.c.customer_id == event.customer_id
            )
        ).one()
        sentences = conn.execute(
            sa.select(text_annotations.c.sentences, text_annotations.c.label).where(
                text_annotations.c.source_id == response_id
            )
        ).all()
        notes = conn.execute(sa.select(case_notes.c.body)).scalars().all()
    assert comment is None
    assert len(sentences) == 1 and sentences[0].sentences is None
    assert sentences[0].label == "negative"  # the label stays, so sentiment counts stay right
    assert notes == [actions.ERASED_NOTE]
    assert compute(seeded, "nps").iloc[0]["value"] == nps_before

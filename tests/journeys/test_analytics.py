"""A department's place in customers' journeys, checked against hand counts."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.engine import Engine

from cxm.interactions import service as interactions
from cxm.journeys.analytics import department_journeys, journey_map
from cxm.org import service as org
from cxm.surveys.tables import responses
from cxm.yamldoc import parse
from tests.web.factories import ORG


def _visit(email: str, touchpoint: str, n: int) -> dict[str, str]:
    return {"event_id": f"{email}-{touchpoint}-{n}", "name": "visit", "email": email,
            "touchpoint": touchpoint, "timestamp": "2026-09-01T10:00:00Z"}  # fmt: skip


def test_reach_and_neighbours_follow_the_log(seeded: Engine) -> None:
    with seeded.begin() as conn:
        org.apply_org(conn, parse(ORG))
        events = [
            _visit("a@x.com", "delivery", 1), _visit("a@x.com", "invoice", 1),
            _visit("b@x.com", "delivery", 1), _visit("b@x.com", "delivery", 2),
            _visit("c@x.com", "support_chat", 1), _visit("d@x.com", "invoice", 1),
        ]  # fmt: skip
        ids = {
            e["email"]: r.customer_id
            for e, r in zip(events, interactions.ingest(conn, events, "api"), strict=True)
        }
        rows = []
        for n, (email, category) in enumerate(
            [("a@x.com", "detractor"), ("b@x.com", "promoter"), ("c@x.com", "detractor"),
             ("d@x.com", "detractor")]
        ):  # fmt: skip
            score = 2 if category == "detractor" else 10
            rows.append({
                "id": f"r{n}", "survey_key": "nps", "survey_version": 1,
                "respondent_kind": "customer", "customer_id": ids[email], "completed": True,
                "started_at": events[0]["timestamp"], "submitted_at": None, "nps": score,
                "nps_category": category, "source": "import",
            })  # fmt: skip
        at = dt.datetime(2026, 9, 2, tzinfo=dt.UTC)
        conn.execute(responses.insert(), [r | {"started_at": at, "submitted_at": at} for r in rows])
    result = department_journeys(seeded, "supply_chain")
    assert result.customers == 2  # a and b touched delivery
    assert result.reach["detractor"] == {"n": 3, "touched": 1, "share": 1 / 3}
    assert result.reach["promoter"] == {"n": 1, "touched": 1, "share": 1.0}
    assert result.neighbours == [{"department": "billing", "customers": 1, "share": 0.5}]
    nobody = department_journeys(seeded, "people")
    assert nobody.customers == 0 and nobody.neighbours == []


def test_more_departments_than_one_mask_holds(seeded: Engine) -> None:
    """Departments beyond the 62 bits of one mask column go to a second column."""
    n = 70
    lines = ["departments:"]
    lines += [f"  - {{key: d{i:02d}, name: Department {i}}}" for i in range(n)]
    lines += ["touchpoints:"]
    lines += [f"  - {{key: t{i:02d}, name: Touchpoint {i}, channel: web, stage: use, \n"
              f"     owner: {{department: d{i:02d}}}}}"
              for i in range(n)]  # fmt: skip
    with seeded.begin() as conn:
        org.apply_org(conn, parse("\n".join(lines) + "\n"))
        visits = [_visit("a@x.com", "t00", 1), _visit("a@x.com", "t65", 1),
                  _visit("b@x.com", "t65", 1), _visit("b@x.com", "t69", 1),
                  _visit("c@x.com", "t01", 1)]  # fmt: skip
        interactions.ingest(conn, visits, "api")
    m = journey_map(seeded)
    assert len(m.groups) == 3  # {d00, d65}, {d65, d69}, {d01}
    d65 = m.department("d65")
    assert d65.customers == 2
    assert d65.neighbours == [
        {"department": "d00", "customers": 1, "share": 0.5},
        {"department": "d69", "customers": 1, "share": 0.5},
    ]
    assert m.department("d01").neighbours == []
    assert m.department("d30").customers == 0

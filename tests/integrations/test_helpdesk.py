"""Helpdesk exports (Zendesk, Freshdesk, Intercom API JSON) arrive as interactions and CSAT.

The fixtures are written the way each vendor's REST API documents its objects; the expected
figures are counted by hand from them, not read back from cxm.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.integrations.helpdesk import import_helpdesk
from cxm.interactions.tables import interactions
from cxm.metrics import compute
from cxm.metrics.definitions import load
from cxm.org import service as org
from cxm.surveys.tables import responses

ZENDESK = {
    "tickets": [
        {   # solved by email, rated good
            "id": 35436, "created_at": "2026-03-02T09:15:00Z", "updated_at": "2026-03-02T15:00:00Z",
            "subject": "Parcel not arrived", "status": "solved", "priority": "high",
            "requester_id": 20978392, "assignee_id": 235323, "group_id": 98738,
            "via": {"channel": "email"}, "tags": ["delivery", "late"],
            "satisfaction_rating": {"score": "good", "comment": "Quick and kind, thanks",
                                    "updated_at": "2026-03-02T16:00:00Z"},
            "metric_set": {"solved_at": "2026-03-02T14:45:00Z",
                           "reply_time_in_minutes": {"calendar": 25, "business": 25}},
        },
        {   # a phone call, closed, rated bad
            "id": 35437, "created_at": "2026-03-03T10:00:00Z", "updated_at": "2026-03-04T08:00:00Z",
            "subject": "Charged twice", "status": "closed", "requester_id": 20978393,
            "via": {"channel": "voice"},
            "satisfaction_rating": {"score": "bad", "comment": "Took three calls"},
        },
        {   # still open, rating offered but not answered
            "id": 35438, "created_at": "2026-03-05T11:30:00Z", "status": "open",
            "requester_id": 20978392, "via": {"channel": "chat"},
            "satisfaction_rating": {"score": "offered"},
        },
        {"id": 35439, "created_at": "last tuesday", "status": "new", "requester_id": 1},
    ],
    "users": [
        {"id": 20978392, "email": "ana@example.com"},
        {"id": 20978393, "email": "ben@example.com"},
    ],
    "next_page": None,
    "count": 4,
}  # fmt: skip

FRESHDESK_TICKETS = [
    {"id": 101, "subject": "Where is my order", "status": 4, "priority": 2, "source": 7,
     "requester_id": 5001, "responder_id": 77, "group_id": 9,
     "created_at": "2026-04-01T08:00:00Z", "updated_at": "2026-04-01T09:00:00Z",
     "requester": {"email": "cleo@example.com", "name": "Cleo"},
     "stats": {"first_responded_at": "2026-04-01T08:12:00Z",
               "resolved_at": "2026-04-01T08:50:00Z", "closed_at": None}},
    {"id": 102, "subject": "Refund", "status": 5, "priority": 1, "source": 3,
     "requester_id": 5002, "created_at": "2026-04-02T08:00:00Z",
     "requester": {"email": "dan@example.com"},
     "stats": {"resolved_at": "2026-04-02T10:00:00Z", "closed_at": "2026-04-03T10:00:00Z"}},
    {"id": 103, "subject": "Broken item", "status": 2, "priority": 3, "source": 1,
     "requester_id": 5003, "created_at": "2026-04-03T08:00:00Z",
     "requester": {"email": "eve@example.com"}, "stats": {}},
]  # fmt: skip
FRESHDESK_RATINGS = [
    {"id": 1, "ticket_id": 101, "ratings": {"default_question": 103}, "feedback": "Great help",
     "created_at": "2026-04-01T10:00:00Z"},
    {"id": 2, "ticket_id": 102, "ratings": {"default_question": 100}, "feedback": "",
     "created_at": "2026-04-03T11:00:00Z"},
    {"id": 3, "ticket_id": 103, "ratings": {"default_question": -103},
     "feedback": "Nobody answered", "created_at": "2026-04-04T11:00:00Z"},
]  # fmt: skip

INTERCOM = {
    "type": "conversation.list",
    "conversations": [
        {"type": "conversation", "id": "147", "created_at": 1775030400, "state": "closed",
         "source": {"type": "conversation", "delivered_as": "customer_initiated",
                    "author": {"type": "user", "email": "fay@example.com"}},
         "contacts": {"contacts": [{"type": "contact", "id": "5ba6", "external_id": "c-88"}]},
         "admin_assignee_id": 814, "team_assignee_id": "5017",
         "conversation_rating": {"rating": 4, "remark": "Solved fast",
                                 "created_at": 1775037600},
         "statistics": {"first_admin_reply_at": 1775031000, "last_close_at": 1775034000}},
        {"type": "conversation", "id": "148", "created_at": 1775116800, "state": "open",
         "source": {"type": "email", "author": {"type": "user", "email": "gus@example.com"}},
         "contacts": {"contacts": [{"type": "contact", "id": "5ba7"}]},
         "conversation_rating": {"rating": 2, "remark": "Still waiting"},
         "statistics": {}},
    ],
    "pages": {"type": "pages", "page": 1, "total_pages": 1},
}  # fmt: skip


def _csat(engine: Engine) -> tuple[int, float]:
    """cxm's CSAT over every answer (the minimum sample lowered for these few tickets)."""
    metrics = load()
    metrics["csat"] = dataclasses.replace(metrics["csat"], min_sample=1)
    row = compute(engine, "csat", metrics=metrics).iloc[0]
    return int(row["n"]), float(row["value"])


def _write(tmp_path: Path, name: str, doc: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _events(engine: Engine, system: str) -> list[tuple[str, str, str, dict]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                interactions.c.event_id,
                interactions.c.name,
                interactions.c.touchpoint_key,
                interactions.c.properties,
            ).where(interactions.c.event_id.like(f"{system}:%"))
        ).all()
    out = []
    for r in rows:
        props = r[3] if isinstance(r[3], dict) else json.loads(r[3])
        out.append((r[0], r[1], r[2], props))
    return sorted(out)


def _ratings(engine: Engine) -> dict[str, tuple[int, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(responses.c.id, responses.c.csat, responses.c.trigger_event_id).where(
                responses.c.survey_key == "support_csat"
            )
        ).all()
    return {r[0]: (r[1], r[2]) for r in rows}


def test_zendesk_tickets_become_events_and_their_ratings_csat(
    seeded: Engine, tmp_path: Path
) -> None:
    path = _write(tmp_path, "tickets.json", ZENDESK)
    summary = import_helpdesk(seeded, path, "zendesk")
    assert (summary.tickets, summary.rejected) == (4, 1)
    events = _events(seeded, "zendesk")
    assert [(e[0], e[1], e[2]) for e in events] == [
        ("zendesk:35436:closed", "ticket_closed", "support_email"),
        ("zendesk:35436:opened", "ticket_opened", "support_email"),
        ("zendesk:35437:closed", "ticket_closed", "support_phone"),
        ("zendesk:35437:opened", "ticket_opened", "support_phone"),
        ("zendesk:35438:opened", "ticket_opened", "support_chat"),
    ]
    closed = events[0][3]
    # The same properties the live log carries, so journeys and signals read imported tickets.
    assert closed["ticket_id"] == "zendesk:35436" and closed["resolved"] is True
    assert closed["wait_minutes"] == 25 and closed["handle_minutes"] == 330.0
    assert events[1][3]["tags"] == ["delivery", "late"]
    # Good -> 5, bad -> 1; 'offered' is no answer.
    assert _ratings(seeded) == {
        "zendesk-csat-35436": (5, "zendesk:35436:closed"),
        "zendesk-csat-35437": (1, "zendesk:35437:closed"),
    }
    rejects = (tmp_path / "tickets.rejects.csv").read_text()
    assert "ticket 35439" in rejects and "'last tuesday' is not an ISO 8601 time" in rejects
    # Zendesk's own satisfaction score is good / (good + bad) = 1 / 2; cxm's CSAT agrees.
    assert _csat(seeded) == (2, pytest.approx(50.0))


def test_a_reimport_stores_nothing_twice(seeded: Engine, tmp_path: Path) -> None:
    path = _write(tmp_path, "tickets.json", ZENDESK)
    import_helpdesk(seeded, path, "zendesk")
    again = import_helpdesk(seeded, path, "zendesk")
    assert again.events is not None and again.events.stored == 0
    assert again.events.duplicates == 5
    assert again.ratings is not None and again.ratings.imported == 0
    assert len(_ratings(seeded)) == 2


def test_both_tickets_of_one_requester_join_one_customer(seeded: Engine, tmp_path: Path) -> None:
    import_helpdesk(seeded, _write(tmp_path, "t.json", ZENDESK), "zendesk")
    with seeded.connect() as conn:
        owners = conn.execute(
            sa.select(interactions.c.event_id, interactions.c.customer_id).where(
                interactions.c.event_id.in_(["zendesk:35436:opened", "zendesk:35438:opened"])
            )
        ).all()
    assert len({o[1] for o in owners}) == 1 and owners[0][1] is not None


def test_freshdesk_with_its_ratings_file_maps_the_seven_point_scale(
    seeded: Engine, tmp_path: Path
) -> None:
    tickets = _write(tmp_path, "fd_tickets.json", FRESHDESK_TICKETS)
    ratings = _write(tmp_path, "fd_ratings.json", FRESHDESK_RATINGS)
    summary = import_helpdesk(seeded, tickets, "freshdesk", ratings=ratings)
    assert summary.rejected == 0 and summary.rejects_file is None
    events = _events(seeded, "freshdesk")
    assert [(e[1], e[2]) for e in events if e[0].endswith(":opened")] == [
        ("ticket_opened", "support_chat"),  # source 7
        ("ticket_opened", "support_phone"),  # source 3
        ("ticket_opened", "support_email"),  # source 1
    ]
    first_close = next(e for e in events if e[0] == "freshdesk:101:closed")[3]
    assert first_close["wait_minutes"] == 12.0 and first_close["handle_minutes"] == 50.0
    assert {k: v[0] for k, v in _ratings(seeded).items()} == {
        "freshdesk-csat-101": 5,
        "freshdesk-csat-102": 3,
        "freshdesk-csat-103": 1,
    }
    # Freshdesk's CSAT is the share of happy ratings: 1 of 3.
    assert _csat(seeded) == (3, pytest.approx(100 / 3))


def test_a_freshdesk_rating_off_its_scale_is_refused_by_name(
    seeded: Engine, tmp_path: Path
) -> None:
    bad = [dict(FRESHDESK_RATINGS[0], ratings={"default_question": 4})]
    summary = import_helpdesk(
        seeded,
        _write(tmp_path, "fd.json", FRESHDESK_TICKETS[:1]),
        "freshdesk",
        ratings=_write(tmp_path, "r.json", bad),
    )
    assert summary.rejected == 1
    assert "not on Freshdesk's scale" in (tmp_path / "fd.rejects.csv").read_text()
    assert _ratings(seeded) == {}


def test_intercom_conversations_with_unix_times_and_star_ratings(
    seeded: Engine, tmp_path: Path
) -> None:
    import_helpdesk(seeded, _write(tmp_path, "conversations.json", INTERCOM), "intercom")
    events = _events(seeded, "intercom")
    assert [(e[0], e[2]) for e in events] == [
        ("intercom:147:closed", "support_chat"),
        ("intercom:147:opened", "support_chat"),
        ("intercom:148:opened", "support_email"),
    ]
    assert events[0][3]["wait_minutes"] == 10.0 and events[0][3]["handle_minutes"] == 60.0
    assert events[1][3]["agent_id"] == "814"
    assert {k: v for k, v in _ratings(seeded).items()} == {
        "intercom-csat-147": (4, "intercom:147:closed"),
        "intercom-csat-148": (2, "intercom:148:opened"),
    }
    with seeded.connect() as conn:
        touchpoints = {t.key for t in org.list_touchpoints(conn)}
    assert {"support_chat", "support_email"} <= touchpoints


def test_a_file_that_is_not_the_vendors_json_is_refused_with_its_position(
    seeded: Engine, tmp_path: Path
) -> None:
    from cxm.errors import Invalid

    path = tmp_path / "tickets.json"
    path.write_text('{"tickets": [{"id": 1,}]}', encoding="utf-8")
    with pytest.raises(Invalid, match=r"line 1, column \d+: not JSON"):
        import_helpdesk(seeded, path, "zendesk")
    with pytest.raises(Invalid, match="unknown helpdesk 'kayako'"):
        import_helpdesk(seeded, path, "kayako")


def test_the_command_imports_a_file_and_refuses_an_unknown_system(
    seeded: Engine, tmp_path: Path
) -> None:
    env = {**os.environ, "CXM_DATABASE_URL": str(seeded.url), "CXM_DATA_DIR": str(tmp_path)}
    seeded.dispose()
    path = _write(tmp_path, "tickets.json", ZENDESK)

    def cxm(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cxm.cli.main", *args], env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    out = cxm("import", "tickets", str(path), "--from", "zendesk")
    assert out.returncode == 0, out.stderr
    assert "4 tickets (1 rejected)" in out.stdout and "2 CSAT ratings (2 new)" in out.stdout
    wrong = cxm("import", "tickets", str(path), "--from", "kayako")
    assert wrong.returncode == 2 and "use zendesk, freshdesk, intercom" in wrong.stderr

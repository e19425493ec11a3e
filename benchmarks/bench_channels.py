"""Channels and integrations: helpdesk import, in-product decisions, webhook fan-out.

Each row prints cxm's figure, a floor doing the same work without cxm's rules around it in the
same process, and the ratio:

- helpdesk import: Zendesk tickets/s through ``import_helpdesk`` (identity resolution, events,
  CSAT answers) against pandas ``json_normalize`` + one DuckDB ``INSERT`` of the same rows;
- in-product decisions/s through ``inproduct.decide`` (identity lookup, contact rules,
  invitation) against the two plain SQL lookups it cannot skip (identity, recent contact);
- webhook fan-out: facts queued/s by ``queue_fact_events`` against one ``INSERT ... SELECT``.

    python benchmarks/bench_channels.py [--tickets 20000] [--checks 2000] [--responses 20000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import secrets
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd
import sqlalchemy as sa

from cxm.actions import outbound, service
from cxm.actions.schemas import WebhookIn
from cxm.customers.tables import customer_identities, customers
from cxm.integrations.helpdesk import import_helpdesk
from cxm.org import service as org
from cxm.store import create_engine, upgrade, utcnow
from cxm.surveys import inproduct
from cxm.surveys import service as surveys
from cxm.surveys.tables import responses
from cxm.yamldoc import parse

SURVEY = """\
key: app_ces
title: {en: "In the app"}
questions:
  - {id: ces, type: ces, required: true, text: {en: "Easy?"}}
triggers:
  - {event: order_placed, channel: in_product}
"""


def _engine(folder: Path, name: str) -> sa.Engine:
    engine = create_engine(f"duckdb:///{folder / name}.duckdb")
    upgrade(engine)
    with engine.begin() as conn:
        org.seed_defaults(conn)
    return engine


def _tickets(n: int) -> list[dict]:
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    out = []
    for i in range(n):
        opened = base + dt.timedelta(minutes=7 * i)
        out.append({
            "id": 100_000 + i, "created_at": opened.isoformat(), "status": "solved",
            "requester_id": 5000 + i % (n // 3 + 1), "assignee_id": 10 + i % 40,
            "via": {"channel": ("email", "chat", "voice")[i % 3]}, "subject": f"Ticket {i}",
            "solved_at": (opened + dt.timedelta(hours=3)).isoformat(),
            "satisfaction_rating": {"score": ("good", "bad", "offered")[i % 3]},
        })  # fmt: skip
    return out


def bench_helpdesk(folder: Path, n: int) -> None:
    tickets = _tickets(n)
    path = folder / "tickets.jsonl"
    path.write_text("\n".join(json.dumps(t) for t in tickets), encoding="utf-8")
    engine = _engine(folder, "helpdesk")
    t0 = time.perf_counter()
    summary = import_helpdesk(engine, path, "zendesk")
    cxm_s = time.perf_counter() - t0
    engine.dispose()
    t0 = time.perf_counter()
    frame = pd.json_normalize([json.loads(line) for line in path.read_text().splitlines()])
    con = duckdb.connect(str(folder / "floor.duckdb"))
    con.register("frame", frame)
    con.execute("create table tickets as select * from frame")
    floor_s = time.perf_counter() - t0
    con.close()
    assert summary.events is not None and summary.events.stored > n
    print(f"helpdesk import, {n:,} Zendesk tickets: cxm {n / cxm_s:,.0f} tickets/s; "
          f"floor (json_normalize + DuckDB insert) {n / floor_s:,.0f}/s; "
          f"ratio {floor_s / cxm_s:.2f}x")  # fmt: skip


def bench_inproduct(folder: Path, n: int) -> None:
    engine = _engine(folder, "inproduct")
    now = utcnow()
    with engine.begin() as conn:
        surveys.apply_definition(conn, parse(SURVEY, "survey.yaml"))
        ids = [secrets.token_hex(16) for _ in range(n)]
        conn.execute(customers.insert(), [
            {"id": c, "created_at": now, "first_seen": now, "last_seen": now,
             "interaction_count": 0} for c in ids
        ])  # fmt: skip
        conn.execute(customer_identities.insert(), [
            {"kind": "user_id", "value": f"u-{i}", "customer_id": c, "first_seen": now}
            for i, c in enumerate(ids)
        ])  # fmt: skip
    t0 = time.perf_counter()
    shown = 0
    for i in range(n):
        with engine.begin() as conn:
            check = inproduct.Check(user_id=f"u-{i}", event="order_placed")
            shown += inproduct.decide(conn, check, "http://cxm.test")["show"]
    cxm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(n):
        with engine.begin() as conn:
            cid = conn.execute(
                sa.text("select customer_id from customer_identities "
                        "where kind = 'user_id' and value = :v"), {"v": f"u-{i}"}
            ).scalar()  # fmt: skip
            conn.execute(
                sa.text("select id from survey_invitations where customer_id = :c "
                        "and created_at > :t limit 1"), {"c": cid, "t": now - dt.timedelta(days=14)}
            ).first()  # fmt: skip
    floor_s = time.perf_counter() - t0
    engine.dispose()
    assert shown == n
    print(f"in-product decisions, {n:,} customers: cxm {n / cxm_s:,.0f}/s "
          f"(p50 {1000 * cxm_s / n:.1f} ms); floor (identity + recent-contact SQL) "
          f"{n / floor_s:,.0f}/s; ratio {floor_s / cxm_s:.2f}x")  # fmt: skip


def bench_fanout(folder: Path, n: int) -> None:
    engine = _engine(folder, "fanout")
    with engine.begin() as conn:
        service.add_webhook(conn, WebhookIn(url="http://127.0.0.1:9/h", secret="x" * 16,
                                            events=["response_submitted"]))  # fmt: skip
    later = utcnow() + dt.timedelta(seconds=1)
    with engine.begin() as conn:
        conn.execute(responses.insert(), [
            {"id": secrets.token_hex(12), "survey_key": "s", "survey_version": 1,
             "respondent_kind": "customer", "customer_id": None, "employee_id": None,
             "invitation_id": None, "trigger_event_id": None, "touchpoint_key": None,
             "channel": "web", "language": "en", "started_at": later, "submitted_at": later,
             "completed": True, "nps": i % 11, "nps_category": None, "csat": None, "ces": None,
             "comment": None, "source": "api"} for i in range(n)
        ])  # fmt: skip
    t0 = time.perf_counter()
    queued = 0
    while True:
        with engine.begin() as conn:
            got = outbound.queue_fact_events(conn)
        if not got:
            break
        queued += got
    cxm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(sa.text(
            "create table floor_outbox as select 'h' as webhook_id, id as subject_id, now() as at "
            "from responses where completed and respondent_kind = 'customer'"
        ))  # fmt: skip
    floor_s = time.perf_counter() - t0
    engine.dispose()
    assert queued == n
    print(
        f"webhook fan-out, {n:,} responses: cxm {n / cxm_s:,.0f} facts/s (ledger + jobs); "
        f"floor (one INSERT ... SELECT) {n / floor_s:,.0f}/s; ratio {floor_s / cxm_s:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=20_000)
    parser.add_argument("--checks", type=int, default=2_000)
    parser.add_argument("--responses", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bench_helpdesk(folder, args.tickets)
        bench_inproduct(folder, args.checks)
        bench_fanout(folder, args.responses)


if __name__ == "__main__":
    main()

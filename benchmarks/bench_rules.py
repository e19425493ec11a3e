"""Rule evaluation over many responses: set-based evaluation vs a naive per-response loop.

Prints cases opened per second for both on a fresh DuckDB store each, and the ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.actions import rules, service
from cxm.actions.rules import Candidate
from cxm.org import service as org
from cxm.store import create_engine, upgrade
from cxm.surveys.tables import responses
from cxm.yamldoc import parse

RULES = """\
rules:
  - key: detractor
    name: Detractor
    when: {response: {nps_max: 6}}
    route: {assign: none}
"""
ORG = """\
touchpoints:
  - {key: delivery, name: Delivery, channel: delivery, stage: receive,
     owner: {department: supply_chain}}
  - {key: support_chat, name: Support chat, channel: chat, stage: get help,
     owner: {department: service}}
"""
T0 = dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC)


def store(folder: Path, name: str, n: int) -> Engine:
    engine = create_engine(f"duckdb:///{folder / name}.duckdb")
    upgrade(engine)
    rows = []
    for i in range(n):
        nps = i % 11
        rows.append(
            {
                "id": secrets.token_hex(12),
                "survey_key": "nps",
                "survey_version": 1,
                "respondent_kind": "customer",
                "customer_id": None,
                "employee_id": None,
                "invitation_id": None,
                "trigger_event_id": None,
                "touchpoint_key": "delivery" if i % 2 else "support_chat",
                "channel": "email",
                "language": "en",
                "started_at": T0,
                "submitted_at": T0 + dt.timedelta(seconds=i),
                "completed": True,
                "nps": nps,
                "nps_category": "promoter" if nps >= 9 else "passive" if nps >= 7 else "detractor",
                "csat": None,
                "ces": None,
                "comment": None,
                "source": "api",
            }
        )
    with engine.begin() as conn:
        org.seed_defaults(conn)
        org.apply_org(conn, parse(ORG))
        service.apply_rules(conn, parse(RULES))
        conn.execute(responses.insert(), rows)
    return engine


def set_based(engine: Engine) -> int:
    with engine.begin() as conn:
        return sum(service.run_rules(conn).values())


def naive(engine: Engine) -> int:
    """One response at a time: read it, test the condition, open its case."""
    opened = 0
    with engine.begin() as conn:
        rule = service.get_rule(conn, "detractor")
        ids = conn.execute(sa.select(responses.c.id)).scalars().all()
        for rid in ids:
            row = conn.execute(sa.select(responses).where(responses.c.id == rid)).mappings().one()
            if row["nps"] is not None and row["nps"] <= 6:
                c = Candidate("response", rid, "Detractor", None, row["touchpoint_key"])
                opened += len(rules.open_cases(conn, rule, [c]))
    return opened


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, runs in seconds")
    args = parser.parse_args()
    n = 1_000 if args.quick else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        timings = {}
        for name, fn in (("set-based", set_based), ("naive loop", naive)):
            engine = store(folder, name.replace(" ", "_"), n)
            start = time.perf_counter()
            opened = fn(engine)
            elapsed = time.perf_counter() - start
            timings[name] = (opened, elapsed)
            engine.dispose()
    print(f"rule evaluation over {n} responses (DuckDB)")
    for name, (opened, elapsed) in timings.items():
        print(
            f"  {name:<11} {opened:>6} cases in {elapsed:7.2f} s = {opened / elapsed:9.0f} cases/s"
        )
    (a, ta), (b, tb) = timings["set-based"], timings["naive loop"]
    assert a == b, "both must open the same cases"
    print(f"  set-based is {tb / ta:.1f}x the naive loop")


if __name__ == "__main__":
    main()

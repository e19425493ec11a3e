"""Following many merges at once (one joined statement per table on DuckDB) leaves the store
exactly as following them 2,000 losers at a time does."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.customers import service as customers
from cxm.customers.tables import customer_identities
from cxm.interactions.tables import interactions
from cxm.store.bulk import insert_rows
from cxm.surveys.tables import unsubscribes
from tests.conftest import migrated_duckdb

T = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LOSERS = 400
JOINED_ABOVE = 150  # the joined path is taken above this many losers in the test


def _store(path: Path) -> Engine:
    engine = migrated_duckdb(path)
    with engine.begin() as conn:
        insert_rows(
            conn,
            interactions,
            [
                {"event_id": f"e{i}-{j}", "type": "track", "name": "visit",
                 "event_time": T + dt.timedelta(minutes=j), "received_at": T,
                 "customer_id": f"loser{i}" if j else f"root{i % 100}", "source": "import"}
                for i in range(LOSERS) for j in range(3)
            ],
        )  # fmt: skip
        insert_rows(
            conn,
            customer_identities,
            [{"kind": "email", "value": f"p{i}@example.com", "customer_id": f"loser{i}",
              "first_seen": T} for i in range(LOSERS)],
        )  # fmt: skip
        # Keyed by customer: a survivor's own row wins; a loser's moves when it has none (one
        # loser with a row per survivor: which of several would move is not specified).
        insert_rows(
            conn,
            unsubscribes,
            [{"customer_id": f"loser{i}", "source": "link",
              "unsubscribed_at": T + dt.timedelta(seconds=i)} for i in range(100)]
            + [{"customer_id": f"root{i}", "source": "api", "unsubscribed_at": T}
               for i in range(0, 100, 3)],
        )  # fmt: skip
    return engine


def _contents(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as conn:
        return {
            t.name: sorted(tuple(r) for r in conn.execute(sa.select(t)))
            for t in (interactions, customer_identities, unsubscribes)
        }


def test_joined_and_chunked_merges_leave_the_same_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remap = {f"loser{i}": f"root{i % 100}" for i in range(LOSERS)}
    joined, chunked = _store(tmp_path / "joined.duckdb"), _store(tmp_path / "chunked.duckdb")
    before = _contents(joined)
    monkeypatch.setattr(customers, "JOINED_MERGES", JOINED_ABOVE)
    with joined.begin() as conn:
        customers.follow_merges(conn, remap)
    monkeypatch.setattr(customers, "JOINED_MERGES", LOSERS)  # the chunked path
    with chunked.begin() as conn:
        customers.follow_merges(conn, remap)
    after = _contents(joined)
    assert after == _contents(chunked)
    assert after != before
    owners = {r[5] for r in after["interactions"]}
    assert owners == {f"root{i}" for i in range(100)}
    assert {r[2] for r in after["customer_identities"]} <= owners
    kept = dict((r[0], r[1]) for r in after["survey_unsubscribes"])
    assert kept["root0"] == "api" and kept["root7"] == "link" and len(kept) == 100
    joined.dispose()
    chunked.dispose()

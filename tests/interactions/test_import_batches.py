"""A file imported in several transactions ends as the file imported in one.

A file of several batches has its customers resolved for the whole file first, then its
batches stored; a file split in two and imported one part after the other resolves the
second part against the profiles the first stored (walked on integer codes with the stored
profiles among its customers). Either way the store it leaves (customers, their identifiers,
merges and traits, the log) must be the one transaction's, on DuckDB and on PostgreSQL. The
file's event ids sort in file order (a batch resolves in event id order), and its people share
devices, so most of it is one component over the caps whose links cross every boundary.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.customers.tables import customer_identities, customer_merges, customer_traits, customers
from cxm.errors import Invalid
from cxm.interactions import importer
from cxm.interactions.schemas import Mapping
from cxm.interactions.tables import interactions
from cxm.org import service as org
from cxm.store import as_utc, create_engine, upgrade

RECEIVED = dt.datetime(2026, 2, 1, 12, tzinfo=dt.UTC)
ROWS = 2400


def _file(path: Path) -> Path:
    base = dt.datetime(2026, 1, 1)
    blank = {"user_id": None, "email": None, "anonymous_id": None, "crm_id": None,
             "touchpoint": "tp_0", "properties": None}  # fmt: skip
    # People first seen by email in the first batch, and seen again at the end (the last
    # batch) on a new device alone (a new profile), then with both: a stored profile and a
    # new one merge, the survivor decided by rank (same time, so by customer id).
    rows: list[dict[str, Any]] = [
        {**blank, "type": "track", "name": "visit", "email": f"early{j}@example.com"}
        for j in range(150)
    ]
    people = [i % (ROWS // 4 + 1) for i in range(ROWS)]
    for i, p in enumerate(people):
        identify = i % 20 == 0
        rows.append({
            "type": "identify" if identify else "track",
            "name": None if identify else "order_placed",
            "user_id": f"p{p}" if i % 3 else None,
            "email": f"p{p}@example.com" if i % 2 else None,
            # Devices shared across people: one component far over the caps.
            "anonymous_id": f"a{i % (ROWS // 3 + 1)}",
            "crm_id": f"C{p % 97}" if i % 7 == 0 else None,
            "touchpoint": f"tp_{i % 5}",
            "properties": json.dumps(
                {"traits": {"tier": f"t{i % 4}"}} if identify else {"revenue": i % 100}
            ),
        })  # fmt: skip
    for j in range(150):
        rows.append({**blank, "type": "track", "name": "visit", "anonymous_id": f"late{j}"})
    for j in range(150):
        rows.append({**blank, "type": "track", "name": "visit", "anonymous_id": f"late{j}",
                     "email": f"early{j}@example.com"})  # fmt: skip
    for n, row in enumerate(rows):  # event ids in file order
        row["event_id"] = f"ev-{n:06d}"
        row["timestamp"] = base + dt.timedelta(seconds=n)
    target = path / "interactions.parquet"
    pq.write_table(pa.Table.from_pylist(rows), target)
    return target


def _snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    def rows(table: sa.Table, columns: list[str]) -> list[tuple[Any, ...]]:
        with engine.connect() as conn:
            found = conn.execute(sa.select(*[table.c[c] for c in columns])).all()
        out = [tuple(as_utc(v) if isinstance(v, dt.datetime) else v for v in r) for r in found]
        return sorted(out, key=repr)

    return {
        "customers": rows(
            customers,
            ["id", "created_at", "first_seen", "last_seen", "interaction_count", "merged_into"],
        ),
        "identities": rows(customer_identities, ["kind", "value", "customer_id", "first_seen"]),
        "merges": rows(
            customer_merges,
            [
                "id",
                "from_customer_id",
                "into_customer_id",
                "identifier_kind",
                "identifier_value",
                "event_id",
                "merged_at",
            ],
        ),
        "traits": rows(customer_traits, ["customer_id", "name", "value", "set_at"]),
        "interactions": rows(
            interactions,
            [
                "event_id",
                "customer_id",
                "event_time",
                "received_at",
                "user_id",
                "email",
                "anonymous_id",
                "external_ids",
                "touchpoint_key",
                "properties",
                "revenue",
            ],
        ),
    }


def _import(
    engine: Engine, path: Path, batch: int, monkeypatch: pytest.MonkeyPatch, *more: Path
) -> list[tuple[str, int, int]]:
    """Import the files; the progress each reported, in order."""
    heard: list[tuple[str, int, int]] = []
    for each in (path, *more):
        with monkeypatch.context() as patch:
            patch.setattr(importer, "BATCH", batch)
            patch.setattr(importer, "utcnow", lambda: RECEIVED)
            summary = importer.import_file(engine, each, progress=lambda *said: heard.append(said))
        assert summary.stored == summary.rows and not summary.rejected, summary.line()
    return heard


@pytest.mark.parametrize("batch", [500, 1299, "two files"])
def test_a_file_in_batches_ends_as_the_file_in_one_transaction(
    seeded: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int | str
) -> None:
    path = _file(tmp_path)
    whole = create_engine(f"duckdb:///{tmp_path / 'whole.duckdb'}")
    upgrade(whole)
    with whole.begin() as conn:
        org.seed_defaults(conn)
    assert _import(whole, path, 10_000, monkeypatch) == [("storing", ROWS + 450, ROWS + 450)]
    expected = _snapshot(whole)
    whole.dispose()

    if isinstance(batch, int):
        heard = _import(seeded, path, batch, monkeypatch)
        # Every stage reports each batch's end, in order, up to the whole file.
        total = ROWS + 450
        ends = [min(end, total) for end in range(batch, total + batch, batch)]
        assert heard == [
            *[("checking", end, total) for end in ends],
            ("resolving customers", 0, total),
            ("resolving customers", total, total),
            *[("storing", end, total) for end in ends],
        ]
    else:  # the second part resolves against the profiles the first stored
        rows = pq.read_table(path)
        first, second = tmp_path / "first.parquet", tmp_path / "second.parquet"
        pq.write_table(rows.slice(0, 1299), first)
        pq.write_table(rows.slice(1299), second)
        _import(seeded, first, 10_000, monkeypatch, second)
    found = _snapshot(seeded)

    # The file really is hard: profiles merge, and some merges cross batches.
    merged = [r for r in expected["customers"] if r[5] is not None]
    assert len(merged) > 50 and len(expected["merges"]) > 50
    # A merge names the loser's identifier: stored profiles (an early email) lose to new ones
    # (a late device), and new ones to stored ones.
    losers = {r[4][:4] for r in expected["merges"] if r[4].startswith(("early", "late"))}
    assert losers == {"earl", "late"}
    assert len(expected["interactions"]) == ROWS + 450
    for name, rows in expected.items():
        assert found[name] == rows, name
    # Each profile's count and first / last seen, kept batch by batch, are its events' in the log.
    counted: dict[str, tuple[int, dt.datetime, dt.datetime]] = {}
    for _, cid, at, *_ in found["interactions"]:
        n, first, last = counted.get(cid, (0, at, at))
        counted[cid] = (n + 1, min(first, at), max(last, at))
    kept = {r[0]: (r[4], r[2], r[3]) for r in found["customers"] if r[5] is None}
    assert kept == counted


def test_a_file_of_several_batches_with_too_many_rejects_stores_nothing(
    seeded: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rejects are counted over the whole file before its first batch is stored: rows
    refused only in the last batch refuse the file, and no earlier batch is left behind."""
    rows = pq.read_table(_file(tmp_path))
    n = rows.num_rows
    types = ["not a type" if i >= n - 400 else t for i, t in enumerate(rows["type"].to_pylist())]
    path = tmp_path / "late_rejects.parquet"
    pq.write_table(rows.set_column(rows.column_names.index("type"), "type", pa.array(types)), path)
    strict = Mapping.model_validate({"max_rejected_share": 0.05})
    with monkeypatch.context() as patch:
        patch.setattr(importer, "BATCH", 500)
        with pytest.raises(Invalid, match="400 of 2850 rows") as refused:
            importer.import_file(seeded, path, mapping=strict)
    assert "nothing was imported" in str(refused.value)
    with seeded.connect() as conn:
        for table in (interactions, customers, customer_identities):
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0
    assert len((tmp_path / "late_rejects.rejects.csv").read_text().splitlines()) == 401


def test_rows_repeating_an_event_id_of_an_earlier_batch_are_duplicates(
    seeded: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later batch matches only the owners of the events first seen in its own rows; a row
    repeating an event id of an earlier batch is a duplicate there, as in one transaction."""
    rows = pq.read_table(_file(tmp_path))
    again = rows.slice(100, 120)  # first seen in the first batch, repeated in the last
    path = tmp_path / "repeats.parquet"
    pq.write_table(pa.concat_tables([rows, again]), path)
    whole_engine = create_engine(f"duckdb:///{tmp_path / 'whole.duckdb'}")
    upgrade(whole_engine)
    with whole_engine.begin() as conn:
        org.seed_defaults(conn)
    summaries = []
    for batch, engine in ((10_000, whole_engine), (500, seeded)):
        with monkeypatch.context() as patch:
            patch.setattr(importer, "BATCH", batch)
            patch.setattr(importer, "utcnow", lambda: RECEIVED)
            summaries.append(importer.import_file(engine, path))
        summaries.append(_snapshot(engine))
    whole_engine.dispose()
    whole, whole_store, batched, batched_store = summaries
    assert (batched.stored, batched.duplicates) == (whole.stored, whole.duplicates)
    assert (whole.stored, whole.duplicates) == (rows.num_rows, 120)
    assert batched_store == whole_store

"""Rows/s importing interactions from Parquet (Arrow, batched) vs a naive row-by-row insert."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cxm.interactions import importer
from cxm.interactions.tables import interactions
from cxm.org import service as org
from cxm.store import create_engine, upgrade


def make_file(path: Path, rows: int) -> None:
    base = dt.datetime(2026, 1, 1)
    n = pa.array(range(rows))
    people = [f"p{i % (rows // 4 + 1)}" for i in range(rows)]
    table = pa.table({
        "event_id": [f"ev-{i}" for i in range(rows)],
        "type": ["identify" if i % 20 == 0 else "track" for i in range(rows)],
        "name": [None if i % 20 == 0 else "order_placed" for i in range(rows)],
        "timestamp": [base + dt.timedelta(seconds=i) for i in range(rows)],
        "user_id": [p if i % 3 else None for i, p in enumerate(people)],
        "email": [f"{p}@example.com" if i % 2 else None for i, p in enumerate(people)],
        "anonymous_id": [f"a{i % (rows // 3 + 1)}" for i in range(rows)],
        "touchpoint": [f"tp_{i % 12}" for i in range(rows)],
        "channel": ["web"] * rows,
        "properties": [json.dumps({"revenue": i % 100}) for i in range(rows)],
    })  # fmt: skip
    del n
    pq.write_table(table, path)


def fresh(folder: Path, name: str):  # type: ignore[no-untyped-def]
    engine = create_engine(f"duckdb:///{folder / name}")
    upgrade(engine)
    with engine.begin() as conn:
        org.seed_defaults(conn)
    return engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    rows = 20_000 if args.quick else args.rows
    naive_rows = 500 if args.quick else 3_000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "interactions.parquet"
        make_file(path, rows)
        engine = fresh(folder, "import.duckdb")
        start = time.perf_counter()
        summary = importer.import_file(engine, path)
        took = time.perf_counter() - start
        assert summary.stored == rows, summary.line()
        again = time.perf_counter()
        assert importer.import_file(engine, path).stored == 0
        reimport = time.perf_counter() - again
        # Baseline: what a straightforward importer does, one INSERT and commit per row.
        base_engine = fresh(folder, "naive.duckdb")
        sample = pq.read_table(path).slice(0, naive_rows).to_pylist()
        start = time.perf_counter()
        for row in sample:
            with base_engine.begin() as conn:
                conn.execute(interactions.insert().values(
                    event_id=row["event_id"], type=row["type"], name=row["name"],
                    event_time=row["timestamp"].replace(tzinfo=dt.UTC),
                    received_at=dt.datetime.now(dt.UTC), user_id=row["user_id"],
                    email=row["email"], anonymous_id=row["anonymous_id"],
                    touchpoint_key=row["touchpoint"], source="import",
                ))  # fmt: skip
        naive = time.perf_counter() - start
    fast_rate, naive_rate = rows / took, naive_rows / naive
    print(f"import {rows:,} rows (validate, resolve identities, store): {took:.1f} s "
          f"= {fast_rate:,.0f} rows/s")  # fmt: skip
    print(f"re-import of the same file (all duplicates): {reimport:.1f} s")
    print(f"naive baseline, one INSERT + commit per row ({naive_rows:,} rows, no resolution): "
          f"{naive_rate:,.0f} rows/s")  # fmt: skip
    print(f"ratio: {fast_rate / naive_rate:.1f}x")


if __name__ == "__main__":
    main()

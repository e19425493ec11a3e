"""Rows/s importing interactions from Parquet and CSV with cxm (validation, identity
resolution, rejects, one receipt) against the engine's floor in the same run: DuckDB reading
the same file straight into the same keyed ``interactions`` table (the goal's ratio); and,
for reference, the same floor writing a customer id per row, as every imported row has one."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa

# Loaded before the clock starts, as in a running server: the set-based resolver (scipy) and
# its compiled walk (warmed in main()).
import cxm.customers.components  # noqa: F401
from cxm.customers import replay
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


# A customer id per row as cxm writes one (32 hex characters, a few rows per customer): the
# interactions table indexes customer_id, and an index over real ids costs more to build at
# commit than one over nulls.
CUSTOMER_ID = "left(sha256(coalesce(user_id, email, anonymous_id)), 32)"


def floor(folder: Path, path: Path, name: str, customer_id: str = "NULL") -> tuple[float, float]:
    """Seconds (wall, CPU of all threads) of the engine alone: DuckDB reading the file into
    the same keyed table, with ``customer_id`` as the SQL for each row's customer id (none by
    default)."""
    engine = fresh(folder, name)
    reader = (
        f"read_parquet('{path}')"
        if path.suffix == ".parquet"
        else f"read_csv('{path}', header=true, all_varchar=true)"
    )
    sql = (
        "INSERT INTO interactions (event_id, type, name, event_time, received_at, user_id, "
        "email, anonymous_id, touchpoint_key, channel, properties, source, customer_id) "
        "SELECT event_id, type, name, CAST(timestamp AS TIMESTAMP), now()::TIMESTAMP, user_id, "
        f"email, anonymous_id, touchpoint, channel, properties, 'import', {customer_id} "
        f"FROM {reader}"
    )
    start, cpu = time.perf_counter(), time.process_time()
    with engine.begin() as conn:
        conn.exec_driver_sql(sql)
    took, used = time.perf_counter() - start, time.process_time() - cpu
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(interactions)).scalar_one()
    engine.dispose()
    return took, used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    parser.add_argument(
        "--rows", type=str, default="100000", help="comma-separated sizes, e.g. 100000,1000000"
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=importer.BATCH,
        help="rows per transaction (default %(default)s); smaller ones make the later batches "
        "resolve against the people the first one stored, as a file of more rows does",
    )
    args = parser.parse_args()
    importer.BATCH = args.batch
    replay.warm()
    sizes = [20_000] if args.quick else [int(x) for x in args.rows.split(",")]
    # The machine may be shared: CPU seconds are the steadier figure, and the load says why.
    print("load average: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    print("format    rows        cxm rows/s   keyed-insert floor rows/s   ratio   "
          "floor with customer ids rows/s   ratio   "
          "CPU s: cxm / floor / floor with ids")  # fmt: skip
    for rows in sizes:
        for kind in ("parquet", "csv"):
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                path = folder / f"interactions.{kind}"
                make_file(folder / "interactions.parquet", rows)
                if kind == "csv":
                    pacsv.write_csv(pq.read_table(folder / "interactions.parquet"), path)
                engine = fresh(folder, "import.duckdb")
                start, cpu = time.perf_counter(), time.process_time()
                summary = importer.import_file(engine, path)
                took, used = time.perf_counter() - start, time.process_time() - cpu
                assert summary.stored == rows, summary.line()
                engine.dispose()
                (base, base_cpu) = floor(folder, path, "floor.duckdb")
                (owned, owned_cpu) = floor(folder, path, "owned.duckdb", CUSTOMER_ID)
            ours, theirs, with_ids = rows / took, rows / base, rows / owned
            print(f"{kind:8}  {rows:>10,}  {ours:>11,.0f}   {theirs:>25,.0f}   "
                  f"{ours / theirs:.2f}x   {with_ids:>30,.0f}   "
                  f"{ours / with_ids:.2f}x   {used:.2f} / {base_cpu:.2f} / "
                  f"{owned_cpu:.2f}")  # fmt: skip
    print("load average: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()

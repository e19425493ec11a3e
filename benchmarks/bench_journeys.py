"""Journey mining on DuckDB, and an XES event log imported and mined, with pm4py beside it.

Part 1 (``--n``): an interaction log of N events is written straight into a DuckDB store
(orders with an ``order_id``: placed on the web or in a store, some late, delivered, some
damaged and returned, spread over 20,000 customers and 12 months; filler events the journey
does not read make up a fifth of the log). Then the shipped ``order_to_delivery`` journey is
mined: summary (cases, outcomes, throughput, rework, hand-offs, activities), variants and the
directly-follows graph. Baseline, side by side: pm4py's DFG and variants on the same journey
events read into pandas (up to ``--pm4py-limit`` events).

Part 2 (``--xes-events``): an XES log of that many events is written from the traces of the
road-traffic fines log in tests/data (case ids renamed, times shifted), then imported with
``cxm``'s importer and mined (one case per ``case_id``, every event an activity). Baseline,
side by side: ``pm4py.read_xes`` plus its DFG and variants on the same file. Both count the
same traces, activities and variants (checked).

    python benchmarks/bench_journeys.py                 # quick: 500,000 events, 56,000 XES events
    python benchmarks/bench_journeys.py --n 10000000 --xes-events 560000   # the targets

Targets: 10M interactions mined in < 30 s; 560,000 XES events imported and mined in < 60 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb

from cxm.interactions import eventlog, importer
from cxm.journeys import definitions, mining, service
from cxm.org import service as org
from cxm.store import create_engine, upgrade
from cxm.store.analytics import reading

ROADS = Path(__file__).resolve().parents[1] / "tests" / "data" / "eventlogs"
ROADS_LOG = ROADS / "roadtraffic100traces.xes"

# Orders: each order is 3 to 6 events; the rest of the log is filler the journey never reads.
LOG_SQL = """
INSERT INTO interactions
WITH orders AS (
  SELECT o, hash(o) % 20000 AS c, random() AS r1, random() AS r2, random() AS r3,
         TIMESTAMP '2025-01-01' + to_seconds(CAST(hash(o * 7) % 31536000 AS BIGINT)) AS t0
  FROM range({orders}) t(o)
), steps AS (
  SELECT o, c, 0 AS k, 'order_placed' AS name, t0 AS ts,
         CASE WHEN r1 < 0.8 THEN 'checkout_web' ELSE 'store_visit' END AS tp FROM orders
  UNION ALL SELECT o, c, 1, 'delivery_late', t0 + INTERVAL 3 DAY, 'delivery' FROM orders
    WHERE r2 < 0.12
  UNION ALL SELECT o, c, 2, 'order_delivered', t0 + INTERVAL 4 DAY, 'delivery' FROM orders
  UNION ALL SELECT o, c, 3, 'item_damaged', t0 + INTERVAL 5 DAY, 'delivery' FROM orders
    WHERE r3 < 0.04
  UNION ALL SELECT o, c, 4, 'return_requested', t0 + INTERVAL 6 DAY, 'returns' FROM orders
    WHERE r3 < 0.03
  UNION ALL SELECT o, c, 5, 'product_registered', t0 + INTERVAL 9 DAY, 'product_app'
    FROM orders WHERE r1 > 0.75
)
SELECT 'b-' || o || '-' || k, 'track', name, ts, TIMESTAMP '2026-01-01', 'c' || c, NULL, NULL,
       NULL, NULL, NULL, tp, NULL, NULL,
       json_object('order_id', 'NW-' || o), NULL, 'import'
FROM steps
"""
FILLER_SQL = """
INSERT INTO interactions
SELECT 'f-' || i, 'track', 'page_viewed',
       TIMESTAMP '2025-01-01' + to_seconds(CAST(hash(i) % 31536000 AS BIGINT)),
       TIMESTAMP '2026-01-01', 'c' || (hash(i * 3) % 20000), NULL, NULL, NULL, NULL, NULL,
       'website', NULL, NULL, NULL, NULL, 'import'
FROM range({n}) t(i)
"""


def build_log(path: Path, n: int) -> int:
    """A store at ``path`` holding about ``n`` interactions; returns the exact count."""
    engine = create_engine(f"duckdb:///{path}")
    upgrade(engine)
    with engine.begin() as conn:
        org.seed_defaults(conn)
    engine.dispose()
    con = duckdb.connect(str(path))
    orders = int(n * 0.8 / 2.45)  # 2.45 events per order on average
    con.execute(LOG_SQL.format(orders=orders))
    have = con.execute("SELECT count(*) FROM interactions").fetchone()[0]  # type: ignore[index]
    con.execute(FILLER_SQL.format(n=max(0, n - have)))
    total = int(con.execute("SELECT count(*) FROM interactions").fetchone()[0])  # type: ignore[index]
    con.close()
    return total


CPU: dict[str, float] = {}  # the process's CPU seconds (every thread) of the last _timed


def _timed(fn: Any) -> tuple[float, Any]:
    """Wall seconds and result of ``fn()``; its CPU seconds (all threads of this process,
    DuckDB's included) are left in ``CPU["last"]``: on a loaded machine the wall time grows
    with the other work, the CPU time much less."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    CPU["last"] = time.process_time() - cpu
    return time.perf_counter() - start, out


def mine(engine: Any, journey: definitions.Journey) -> dict[str, Any]:
    # As the journey page reads it: one mining of the view shared by the three reads.
    with service.mined(engine, journey) as m:
        summary = service.summary(m, journey)
        variants = service.variants(m, journey, 20)
        graph = service.directly_follows(m, journey)
    return {"cases": summary["cases"], "variants": variants["distinct"],
            "edges": len(graph["edges"])}  # fmt: skip


def pm4py_mine(frame: Any) -> dict[str, Any]:
    import pm4py

    dfg, _, _ = pm4py.discover_dfg(frame)
    variants = pm4py.get_variants(frame)
    return {"cases": frame["case:concept:name"].nunique(), "variants": len(variants),
            "edges": len(dfg)}  # fmt: skip


def part_one(n: int, limit: int, tmp: Path) -> None:
    path = tmp / "log.duckdb"
    seconds, total = _timed(lambda: build_log(path, n))
    print(f"log: {total:,} interactions written in {seconds:.1f} s")
    engine = create_engine(f"duckdb:///{path}")
    journey = definitions.get("order_to_delivery")
    mine(engine, journey)  # warm: the file's pages in memory, as a running server has them
    seconds, found = _timed(lambda: mine(engine, journey))
    cpu = CPU["last"]
    print(f"cxm (DuckDB): mined order_to_delivery over {total:,} interactions in "
          f"{seconds:.2f} s ({cpu:.2f} CPU s): {found['cases']:,} cases, "
          f"{found['variants']} variants, {found['edges']} paths")  # fmt: skip
    with reading(engine) as con:
        ev = mining.events(con, journey).select("case_id", "activity", "event_time", "event_id")
        events = int(ev.count().to_pyarrow().as_py())
        if events > limit:
            print(f"pm4py: skipped ({events:,} journey events > --pm4py-limit {limit:,})")
            return
        frame = ev.order_by(["case_id", "event_time", "event_id"]).to_pandas()
    import pm4py

    frame = pm4py.format_dataframe(frame, case_id="case_id", activity_key="activity",
                                   timestamp_key="event_time")  # fmt: skip
    seconds_pm, theirs = _timed(lambda: pm4py_mine(frame))
    same = all(theirs[k] == found[k] for k in ("cases", "variants", "edges"))
    print(f"pm4py: DFG and variants of the same {events:,} events (already in pandas) in "
          f"{seconds_pm:.2f} s ({CPU['last']:.2f} CPU s); same counts: {same}; "
          f"cxm / pm4py = {seconds / seconds_pm:.2f} (CPU {cpu / CPU['last']:.2f})")  # fmt: skip
    engine.dispose()


def write_xes(path: Path, events: int) -> int:
    """An XES file of about ``events`` events made of the road-traffic traces; returns the
    exact number written."""
    read = eventlog.read_xes(ROADS_LOG)
    table = read.table.to_pylist()
    traces: dict[str, list[dict[str, Any]]] = {}
    for row in table:
        props = row["properties"] if isinstance(row["properties"], dict) else json.loads(
            row["properties"])  # fmt: skip
        traces.setdefault(props["case_id"], []).append({**row, "props": props})
    shapes = list(traces.values())
    written = 0
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<log xes.version="1849-2016" '
                  'xmlns="http://www.xes-standard.org/">\n')  # fmt: skip
        n = 0
        while written < events:
            shape = shapes[n % len(shapes)]
            out.write(f'<trace><string key="concept:name" value="T{n}"/>\n')
            for e in shape:
                stamp = e["timestamp"]
                year = int(stamp[:4]) + (n // len(shapes)) % 10
                out.write("<event>"
                          f'<string key="concept:name" value={quoteattr(e["name"])}/>'
                          f'<date key="time:timestamp" value="{year}{stamp[4:]}"/>'
                          '<string key="lifecycle:transition" value="complete"/>'
                          f'<string key="org:resource" value="{n % 150}"/>'
                          "</event>\n")  # fmt: skip
                written += 1
            out.write("</trace>\n")
            n += 1
        out.write("</log>\n")
    return written


def part_two(events: int, tmp: Path) -> None:
    log = tmp / "fines.xes"
    written = write_xes(log, events)
    store = tmp / "xes.duckdb"
    engine = create_engine(f"duckdb:///{store}")
    upgrade(engine)
    folder = tmp / "journeys"
    folder.mkdir()
    (folder / "fines.yaml").write_text(
        "name: fines\ncase: case_id\nactivities: [{event: '*'}]\nstart: ['*']\n"
        "success: [Payment]\nfailure: [Send for Credit Collection]\nmax_duration: 5000d\n"
    )
    journey = definitions.get("fines", [folder])
    seconds_import, summary = _timed(lambda: importer.import_file(engine, log))
    cpu = CPU["last"]
    seconds_mine, found = _timed(lambda: mine(engine, journey))
    cpu += CPU["last"]
    total = seconds_import + seconds_mine
    print(f"cxm: imported {written:,} XES events in {seconds_import:.1f} s ({summary.line()}), "
          f"mined in {seconds_mine:.1f} s: {total:.1f} s in all ({cpu:.1f} CPU s); "
          f"{found['cases']:,} cases, {found['variants']} variants, "
          f"{found['edges']} paths")  # fmt: skip
    import pm4py

    seconds_read, frame = _timed(lambda: pm4py.read_xes(str(log), disable_progress_bar=True))
    cpu_pm = CPU["last"]
    seconds_pm, theirs = _timed(lambda: pm4py_mine(frame))
    cpu_pm += CPU["last"]
    same = all(theirs[k] == found[k] for k in ("cases", "variants", "edges"))
    print(f"pm4py: read_xes in {seconds_read:.1f} s, DFG and variants in {seconds_pm:.1f} s: "
          f"{seconds_read + seconds_pm:.1f} s in all ({cpu_pm:.1f} CPU s; no store); "
          f"same counts: {same}; cxm / pm4py = {total / (seconds_read + seconds_pm):.2f} "
          f"(CPU {cpu / cpu_pm:.2f})")  # fmt: skip
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500_000, help="interactions in the log")
    ap.add_argument("--xes-events", type=int, default=56_000, help="events in the XES log")
    ap.add_argument("--skip-xes", action="store_true", help="part 1 only")
    ap.add_argument("--pm4py-limit", type=int, default=2_000_000,
                    help="pm4py reads the journey's events up to this many")  # fmt: skip
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        part_one(args.n, args.pm4py_limit, Path(tmp))
        if not args.skip_xes:
            part_two(args.xes_events, Path(tmp))


if __name__ == "__main__":
    main()

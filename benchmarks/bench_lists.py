"""A page of a list with its total: the case inbox's first page and the count of every case it
pages through, against the earlier way of counting (reading every case, 1,000 at a time).

Prints the median of several runs for both, on one DuckDB store, and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_rules import set_based, store
from sqlalchemy.engine import Engine

from cxm.actions import service
from cxm.org.scope import Scope

LEAD = Scope("cx_lead")
PAGE = 50


def counted(engine: Engine) -> int:
    """One page and the total: two queries."""
    with engine.connect() as conn:
        service.list_cases(conn, LEAD, limit=PAGE)
        return service.count_cases(conn, LEAD)


def paged_count(engine: Engine) -> int:
    """One page, then the total by reading every case a page of 1,000 at a time."""
    with engine.connect() as conn:
        service.list_cases(conn, LEAD, limit=PAGE)
        total, done = 0, False
        while not done:
            batch = service.list_cases(conn, LEAD, limit=1000, offset=total)
            total += len(batch)
            done = len(batch) < 1000
        return total


def median_time(fn: Callable[[Engine], int], engine: Engine, runs: int) -> tuple[int, float]:
    times, result = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        result = fn(engine)
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--responses", type=int, default=3_000,
                        help="responses to store; about 7 in 11 open a case")  # fmt: skip
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = store(Path(tmp), "lists", args.responses)
        cases = set_based(engine)
        fast = median_time(counted, engine, args.runs)
        slow = median_time(paged_count, engine, args.runs)
        engine.dispose()
    assert fast[0] == slow[0] == cases, "both must count every case"
    print(f"first page of {PAGE} and the total of {cases} cases (DuckDB, median of {args.runs})")
    print(f"  count query          {fast[1] * 1000:8.1f} ms")
    print(f"  reading every case   {slow[1] * 1000:8.1f} ms")
    print(f"  the count query is {slow[1] / fast[1]:.1f}x reading every case")


if __name__ == "__main__":
    main()

"""Identity resolution of 1M identifiers: cxm's resolver vs networkx connected components.

The resolver does more than the baseline (caps, merge records, survivor choice), so the ratio
says what that costs, or saves, against the textbook approach on the same input.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time

import networkx as nx

from cxm.customers.service import Resolver

AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def make_events(identifiers: int, seed: int = 7) -> list[tuple[str, list[tuple[str, str]]]]:
    """Events carrying 1-3 identifiers each, drawn so people share devices and emails."""
    rng = random.Random(seed)
    people = identifiers // 3
    events, seen = [], 0
    n = 0
    while seen < identifiers:
        p = rng.randrange(people)
        idents = [("user_id", f"u{p}")]
        if rng.random() < 0.6:
            idents.append(("email", f"p{p}@example.com"))
        if rng.random() < 0.5:
            idents.append(("anonymous_id", f"d{rng.randrange(people * 2)}"))
        events.append((f"e{n:08d}", idents))
        seen += len(idents)
        n += 1
    return events


def run_resolver(events: list[tuple[str, list[tuple[str, str]]]]) -> int:
    resolver = Resolver(caps={"email": 10**9, "user_id": 10**9, "anonymous_id": 10**9})
    for event_id, idents in events:
        resolver.resolve(event_id, idents, AT)
    return len(resolver.created) - len(resolver.remap())


def run_networkx(events: list[tuple[str, list[tuple[str, str]]]]) -> int:
    graph = nx.Graph()
    for _, idents in events:
        keys = [f"{k}:{v}" for k, v in idents]
        graph.add_node(keys[0])
        for other in keys[1:]:
            graph.add_edge(keys[0], other)
    return nx.number_connected_components(graph)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    parser.add_argument("--identifiers", type=int, default=1_000_000)
    args = parser.parse_args()
    size = 50_000 if args.quick else args.identifiers
    events = make_events(size)
    start = time.perf_counter()
    ours = run_resolver(events)
    took = time.perf_counter() - start
    start = time.perf_counter()
    theirs = run_networkx(events)
    base = time.perf_counter() - start
    assert ours == theirs, (ours, theirs)
    print(f"{size:,} identifiers in {len(events):,} events -> {ours:,} customers")
    print(f"cxm resolver:                  {took:6.2f} s  {size / took:,.0f} identifiers/s")
    print(f"networkx connected components: {base:6.2f} s  {size / base:,.0f} identifiers/s")
    print(f"ratio (networkx time / cxm time): {base / took:.2f}x")


if __name__ == "__main__":
    main()

"""Group commit: one writer thread stores every pending submission in one transaction.

Requests hand their events to the writer and wait; the writer drains whatever is queued,
stores it all with one commit, then answers each request. A request is acknowledged only
after its commit, and concurrent requests share the cost of one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from cxm.interactions.service import ItemResult, ingest

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    events: list[Any]
    source: str
    done: Future[list[ItemResult]] = field(default_factory=Future)


class GroupCommitter:
    """The single writer of interactions for one app."""

    def __init__(self, engine: Engine, max_events: int = 5000, region: str = "DE") -> None:
        self.engine = engine
        self.max_events = max_events
        self.region = region
        self._queue: queue.Queue[_Pending] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="cxm-group-commit", daemon=True)
        self._thread.start()

    def submit(self, events: list[Any], source: str) -> Future[list[ItemResult]]:
        pending = _Pending(events, source)
        self._queue.put(pending)
        return pending.done

    async def store(self, events: list[Any], source: str) -> list[ItemResult]:
        """Store ``events`` and return once they are committed."""
        return await asyncio.wrap_future(self.submit(events, source))

    def _drain(self) -> list[_Pending]:
        group = [self._queue.get()]
        size = len(group[0].events)
        while size < self.max_events:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            group.append(nxt)
            size += len(nxt.events)
        return group

    def _run(self) -> None:
        while True:
            group = self._drain()
            try:
                self._commit(group)
            except Exception as exc:  # the writer must outlive a failed transaction
                log.exception("group commit of %d submissions failed", len(group))
                for pending in group:
                    if not pending.done.done():
                        pending.done.set_exception(exc)

    def _commit(self, group: list[_Pending]) -> None:
        by_source: dict[str, list[tuple[_Pending, int]]] = {}
        for pending in group:
            by_source.setdefault(pending.source, []).append((pending, len(pending.events)))
        answers: dict[int, list[ItemResult]] = {}
        with self.engine.begin() as conn:
            for source, members in by_source.items():
                events = [e for p, _ in members for e in p.events]
                results = ingest(conn, events, source, self.region)
                offset = 0
                for pending, count in members:
                    part = results[offset : offset + count]
                    answers[id(pending)] = [
                        ItemResult(r.index - offset, r.event_id, r.status, r.error, r.customer_id)
                        for r in part
                    ]
                    offset += count
        # Answer only after the commit above returned.
        for pending in group:
            pending.done.set_result(answers[id(pending)])


_lock = threading.Lock()


def committer_for(state: Any, engine: Engine, region: str = "DE") -> GroupCommitter:
    """The app's writer, started on first use (so TestClient and uvicorn both get one)."""
    found: GroupCommitter | None = getattr(state, "group_committer", None)
    if found is None:
        with _lock:
            found = getattr(state, "group_committer", None)
            if found is None:
                # CXM_INGEST_GROUP_MAX=1 turns grouping off (one transaction per request).
                limit = int(os.environ.get("CXM_INGEST_GROUP_MAX", "5000"))
                found = GroupCommitter(engine, max_events=max(1, limit), region=region)
                state.group_committer = found
    return found

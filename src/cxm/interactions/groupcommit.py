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

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.interactions import limits
from cxm.interactions.service import ItemResult, ingest
from cxm.store import is_duckdb

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    events: list[Any]
    source: str
    checked: bool = True
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

    def submit(
        self, events: list[Any], source: str, checked: bool = True
    ) -> Future[list[ItemResult]]:
        """Queue ``events``; ``checked=False`` for events from a body ``limits.storable_json``
        passed (their text needs no NUL / surrogate checks)."""
        pending = _Pending(events, source, checked)
        self._queue.put(pending)
        return pending.done

    async def store(self, events: list[Any], source: str, checked: bool = True) -> list[ItemResult]:
        """Store ``events`` and return once they are committed."""
        return await asyncio.wrap_future(self.submit(events, source, checked))

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
                answers = self._commit(group)
            except Exception:  # the writer must outlive a failed transaction
                log.exception("group commit of %d submissions failed; isolating", len(group))
                self._isolate(group)
                continue
            # Answer only after the commit above returned.
            for pending in group:
                pending.done.set_result(answers[id(pending)])

    def _isolate(self, group: list[_Pending]) -> None:
        """After a failed group transaction, store each submission alone, then each event of a
        failing submission alone: a value the store refuses fails only its own event."""
        for pending in group:
            try:
                answer = self._commit([pending])[id(pending)]
            except Exception as exc:
                if not _refusal(exc):
                    pending.done.set_exception(exc)
                    continue
                try:
                    answer = [self._alone(pending, n) for n in range(len(pending.events))]
                except Exception as inner:  # the store itself is failing: report that
                    pending.done.set_exception(inner)
                    continue
            pending.done.set_result(answer)

    def _alone(self, pending: _Pending, n: int) -> ItemResult:
        event = pending.events[n]
        try:
            with self.engine.begin() as conn:
                (result,) = ingest(conn, [event], pending.source, self.region, pending.checked)
        except Exception as exc:
            if not _refusal(exc):
                raise
            log.warning("the store refused one event: %s", exc)
            event_id = event.get("event_id") if isinstance(event, dict) else None
            return ItemResult(
                n,
                limits.shown(event_id) if isinstance(event_id, str) else None,
                "rejected",
                limits.shown(f"event: the store refused a value of this event ({_reason(exc)})"),
            )
        return ItemResult(n, result.event_id, result.status, result.error, result.customer_id)

    def _commit(self, group: list[_Pending]) -> dict[int, list[ItemResult]]:
        """Store ``group`` in one transaction. On DuckDB it first assumes every event id is
        new and lets the primary key refuse one the log holds (an index probe per event,
        independent of the log's size); only then is the transaction rolled back and run again
        with the event ids looked up (a scan of the ``event_id`` column), which answers
        duplicates as before."""
        if is_duckdb(self.engine):
            try:
                return self._transaction(group, new=True)
            except sa.exc.IntegrityError:
                pass  # an event id the log already holds (or a duplicate key elsewhere)
        return self._transaction(group, new=False)

    def _transaction(self, group: list[_Pending], *, new: bool) -> dict[int, list[ItemResult]]:
        by_source: dict[tuple[str, bool], list[tuple[_Pending, int]]] = {}
        for pending in group:
            key = (pending.source, pending.checked)
            by_source.setdefault(key, []).append((pending, len(pending.events)))
        answers: dict[int, list[ItemResult]] = {}
        with self.engine.begin() as conn:
            for (source, checked), members in by_source.items():
                events = [e for p, _ in members for e in p.events]
                results = ingest(conn, events, source, self.region, checked, new=new)
                offset = 0
                for pending, count in members:
                    part = results[offset : offset + count]
                    answers[id(pending)] = [
                        ItemResult(r.index - offset, r.event_id, r.status, r.error, r.customer_id)
                        for r in part
                    ]
                    offset += count
        return answers


def _refusal(exc: Exception) -> bool:
    """Whether a failure is about the data (a value the store refuses), not the store being
    unreachable: only the former is one event's fault and answered as its rejection."""
    return not isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError))


def _reason(exc: Exception) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0][:200] if str(orig).strip() else type(orig).__name__


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

"""Respondents' answers through one writer: concurrent steps share one transaction.

Each respondent's step (open the link, save an answer) is a unit of work ``work(conn) ->
result``. Request handlers hand it to the app's ``AnswerWriter`` and wait off the event loop;
the writer thread runs every step queued at that moment, one after another, in one transaction
and commits once, then answers each. A step is acknowledged only after its commit. If the
shared transaction fails, each of its steps runs again alone (with the retries of
``cxm.store.retry``), so one failing step fails only its own request.

A step submitted with a ``key`` (the invitation's token, the open response's id) may leave its
inserts and its updates by primary key to the end of the transaction (``deferred``): they are
then written for every step of the group together (``cxm.store.bulk``: a few statements, not a
few per step), before the one commit. Two steps with the same key never share a transaction,
so no step reads rows that an earlier step of its transaction has left unwritten; a step
without a key sees every earlier step's writes made, and makes its own at once.

A keyed step may also name a ``read``: what it would read first by its key (its invitation),
read for all the keyed steps of a transaction that name the same ``read`` in one statement
before they run, into the transaction's ``memo``; each step then takes its rows from there.
As no other step of the transaction writes a step's own rows, what it finds is what it would
have read itself; a step without a key may write anything, so the steps after it are read
after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cxm.store.bulk import update_rows
from cxm.store.retry import retrying

log = logging.getLogger(__name__)
T = TypeVar("T")
# Reads, for the keyed steps of a transaction, what each would read by its key: (the
# connection, the steps' keys, the transaction's memo to fill).
Reader = Callable[[Connection, list[Hashable], dict[Hashable, Any]], None]
MAX_GROUP = 64  # steps per transaction: bounds how long the first of them waits
_DEFERRED = "cxm.surveys.deferred"  # Connection.info key while a keyed step runs


class Deferred:
    """Inserts and updates by primary key left to the end of a transaction, written there in
    table order (inserts first, each table's rows in the order given) with a few statements."""

    def __init__(self) -> None:
        self._inserts: dict[sa.Table, list[dict[str, Any]]] = {}
        self._updates: dict[tuple[sa.Table, str, tuple[str, ...]], list[dict[str, Any]]] = {}
        # What no step of the transaction changes (a survey's current version), read by the
        # first step that needs it and reused by the others.
        self.memo: dict[Hashable, Any] = {}

    def insert(self, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        """Insert ``rows`` (dicts keyed by column name) at the end of the transaction."""
        self._inserts.setdefault(table, []).extend(rows)

    def update(self, table: sa.Table, key: str, row: dict[str, Any]) -> None:
        """Set the columns in ``row`` of the row whose ``key`` column is ``row[key]``."""
        self._updates.setdefault((table, key, tuple(sorted(row))), []).append(row)

    def write(self, conn: Connection) -> None:
        """Make every write left so far, in ``conn``'s transaction."""
        inserts, updates = self._inserts, self._updates
        self._inserts, self._updates = {}, {}
        for table, rows in inserts.items():
            by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for row in rows:  # one prepared statement needs the same columns in every row
                by_columns.setdefault(tuple(sorted(row)), []).append(row)
            for same in by_columns.values():
                # executemany: on DuckDB cheaper than one multi-row VALUES (whose compiling
                # grows with the rows) and than Arrow for the tens of rows a group has.
                conn.execute(table.insert(), same)
        for (table, key, _), rows in updates.items():
            if len(rows) == 1:  # one statement either way; the plain one is cheaper
                values = {c: v for c, v in rows[0].items() if c != key}
                conn.execute(table.update().where(table.c[key] == rows[0][key]).values(values))
            else:  # one UPDATE ... FROM an Arrow table on DuckDB
                update_rows(conn, table, key, rows)

    @contextlib.contextmanager
    def active(self, conn: Connection) -> Iterator[None]:
        """While inside, ``deferred(conn)`` is this object."""
        conn.info[_DEFERRED] = self
        try:
            yield
        finally:
            conn.info.pop(_DEFERRED, None)


def deferred(conn: Connection) -> Deferred | None:
    """Where a step may leave its inserts and keyed updates (None: write them at once)."""
    found: Deferred | None = conn.info.get(_DEFERRED)
    return found


def _deferring(work: Callable[[Connection], T]) -> Callable[[Connection], T]:
    """``work`` with its deferred writes made at its end, in its own transaction."""

    def alone(conn: Connection) -> T:
        pending = Deferred()
        with pending.active(conn):
            result = work(conn)
        pending.write(conn)
        return result

    return alone


@dataclass
class _Step(Generic[T]):
    work: Callable[[Connection], T]
    what: str
    key: Hashable | None = None
    read: Reader | None = None
    done: Future[T] = field(default_factory=Future)


class AnswerWriter:
    """The single writer of respondents' steps for one app (a daemon thread)."""

    def __init__(self, engine: Engine, max_group: int = MAX_GROUP) -> None:
        self.engine, self.max_group = engine, max_group
        self._queue: queue.Queue[_Step[Any] | None] = queue.Queue()
        self._next: _Step[Any] | None = None  # drained, but for the next transaction
        self._thread = threading.Thread(target=self._run, name="cxm-answer-writer", daemon=True)
        self._thread.start()

    def submit(
        self, work: Callable[[Connection], T], what: str = "saving your answer",
        key: Hashable | None = None, read: Reader | None = None,
    ) -> Future[T]:  # fmt: skip
        """Queue ``work``; with ``key`` (what it reads and writes, e.g. the invitation's
        token) it may defer its writes (``deferred``) and never shares a transaction with
        another step of the same key; ``read`` (with a key) reads ahead for it, together with
        the other steps of its transaction (see the module's text)."""
        step: _Step[T] = _Step(work, what, key, read if key is not None else None)
        self._queue.put(step)
        return step.done

    async def run(
        self, work: Callable[[Connection], T], what: str = "saving your answer",
        key: Hashable | None = None, read: Reader | None = None,
    ) -> T:  # fmt: skip
        """``work``'s result, once the transaction it ran in is committed."""
        return await asyncio.wrap_future(self.submit(work, what, key, read))

    def close(self) -> None:
        """Finish the steps already queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join()

    def _drain(self) -> list[_Step[Any] | None]:
        first, self._next = self._next or self._queue.get(), None
        group = [first]
        keys = {first.key} if first is not None and first.key is not None else set()
        while len(group) < self.max_group and group[-1] is not None:
            try:
                step = self._queue.get_nowait()
            except queue.Empty:
                break
            if step is not None and step.key is not None:
                if step.key in keys:  # the same respondent again: the next transaction
                    self._next = step
                    break
                keys.add(step.key)
            group.append(step)
        return group

    def _run(self) -> None:
        stop = False
        conn: Connection | None = None  # kept while steps keep coming, returned when idle
        try:
            while not stop:
                if conn is not None and self._next is None and self._queue.empty():
                    conn.close()  # back to the pool until the next step
                    conn = None
                drained = self._drain()
                group = [step for step in drained if step is not None]
                stop = len(group) < len(drained)
                if not group:
                    continue
                try:
                    if conn is None:
                        conn = self.engine.connect()
                    with conn.begin():
                        results = self._together(conn, group)
                except Exception:  # the writer outlives a failed transaction
                    if conn is not None:
                        conn.close()  # a connection that failed is not reused
                        conn = None
                    if len(group) > 1:
                        log.info("a shared transaction of %d steps failed; each alone", len(group))
                    self._alone(group)
                    continue
                for step, result in zip(group, results, strict=True):  # after the commit
                    step.done.set_result(result)
        finally:
            if conn is not None:
                conn.close()

    @staticmethod
    def _together(conn: Connection, group: list[_Step[Any]]) -> list[Any]:
        pending = Deferred()
        results = []
        for i, step in enumerate(group):
            if step.key is None:  # it reads and writes as if alone
                pending.write(conn)
                results.append(step.work(conn))
                continue
            if i == 0 or group[i - 1].key is None:  # the first of a run of keyed steps
                AnswerWriter._read_ahead(conn, group[i:], pending.memo)
            with pending.active(conn):
                results.append(step.work(conn))
        pending.write(conn)
        return results

    @staticmethod
    def _read_ahead(conn: Connection, steps: list[_Step[Any]], memo: dict[Hashable, Any]) -> None:
        """Run each ``read`` once for the keyed steps at the head of ``steps``."""
        keys: dict[Reader, list[Hashable]] = {}
        for step in steps:
            if step.key is None:
                break
            if step.read is not None:
                keys.setdefault(step.read, []).append(step.key)
        for read, of in keys.items():
            read(conn, of, memo)

    def _alone(self, group: list[_Step[Any]]) -> None:
        for step in group:
            work = step.work if step.key is None else _deferring(step.work)
            try:
                step.done.set_result(retrying(self.engine, work, what=step.what))
            except Exception as exc:
                step.done.set_exception(exc)


_lock = threading.Lock()


def writer_for(state: Any, engine: Engine) -> AnswerWriter:
    """The app's answer writer, started on first use (TestClient and uvicorn alike)."""
    found: AnswerWriter | None = getattr(state, "answer_writer", None)
    if found is None or found.engine is not engine:
        with _lock:
            found = getattr(state, "answer_writer", None)
            if found is None or found.engine is not engine:
                found = AnswerWriter(engine)
                state.answer_writer = found
    return found

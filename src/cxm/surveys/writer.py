"""Respondents' answers through one writer: concurrent steps share one transaction.

Each respondent's step (open the link, save an answer) is a unit of work ``work(conn) ->
result``. Request handlers hand it to the app's ``AnswerWriter`` and wait off the event loop;
the writer thread runs every step queued at that moment, one after another, in one transaction
and commits once, then answers each. A step is acknowledged only after its commit. If the
shared transaction fails, each of its steps runs again alone (with the retries of
``cxm.store.retry``), so one failing step fails only its own request.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Connection, Engine

from cxm.store.retry import retrying

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_GROUP = 64  # steps per transaction: bounds how long the first of them waits


@dataclass
class _Step(Generic[T]):
    work: Callable[[Connection], T]
    what: str
    done: Future[T] = field(default_factory=Future)


class AnswerWriter:
    """The single writer of respondents' steps for one app (a daemon thread)."""

    def __init__(self, engine: Engine, max_group: int = MAX_GROUP) -> None:
        self.engine, self.max_group = engine, max_group
        self._queue: queue.Queue[_Step[Any] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="cxm-answer-writer", daemon=True)
        self._thread.start()

    def submit(
        self, work: Callable[[Connection], T], what: str = "saving your answer"
    ) -> Future[T]:
        step: _Step[T] = _Step(work, what)
        self._queue.put(step)
        return step.done

    async def run(self, work: Callable[[Connection], T], what: str = "saving your answer") -> T:
        """``work``'s result, once the transaction it ran in is committed."""
        return await asyncio.wrap_future(self.submit(work, what))

    def close(self) -> None:
        """Finish the steps already queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join()

    def _drain(self) -> list[_Step[Any] | None]:
        group = [self._queue.get()]
        while len(group) < self.max_group and group[-1] is not None:
            try:
                group.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return group

    def _run(self) -> None:
        stop = False
        while not stop:
            drained = self._drain()
            group = [step for step in drained if step is not None]
            stop = len(group) < len(drained)
            if not group:
                continue
            try:
                with self.engine.begin() as conn:
                    results = [step.work(conn) for step in group]
            except Exception:  # the writer outlives a failed transaction
                if len(group) > 1:
                    log.info("a shared transaction of %d steps failed; each alone", len(group))
                self._alone(group)
                continue
            for step, result in zip(group, results, strict=True):  # after the commit above
                step.done.set_result(result)

    def _alone(self, group: list[_Step[Any]]) -> None:
        for step in group:
            try:
                step.done.set_result(retrying(self.engine, step.work, what=step.what))
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

"""Units of work that retry when a concurrent transaction changed the same rows first.

DuckDB's optimistic concurrency refuses the second of two transactions that update one row
("Conflict on update"), and aborts it; PostgreSQL can refuse one of two serializable
transactions (SQLSTATE 40001) or a deadlock (40P01). The right answer to either is to run the
whole unit again on the new state, a few times with jittered backoff, and only then to give
the caller a 409 (cxm.errors.Conflict) instead of a 500.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.engine import Connection, Engine

from cxm.errors import Conflict

T = TypeVar("T")
ATTEMPTS = 12
_PG_RETRYABLE = ("40001", "40P01")


def is_write_conflict(exc: BaseException) -> bool:
    """True for a conflict between concurrent transactions that a retry resolves."""
    for err in (exc, getattr(exc, "orig", None)):
        if err is None:
            continue
        if getattr(err, "sqlstate", None) in _PG_RETRYABLE:
            return True
        text = str(err)
        if "Conflict on update" in text or "Conflict on tuple deletion" in text:
            return True
        if "TransactionContext Error" in text and "conflict" in text.lower():
            return True
    return False


def retrying(engine: Engine, work: Callable[[Connection], T], *, attempts: int = ATTEMPTS,
             what: str = "this change") -> T:  # fmt: skip
    """Run ``work`` in a transaction, again (up to ``attempts`` times) after a write conflict.

    ``work`` must do nothing outside the transaction it is given, so that running it again is
    safe. After the last attempt a Conflict names ``what`` could not be saved.
    """
    for attempt in range(attempts):
        try:
            with engine.begin() as conn:
                return work(conn)
        except Exception as exc:
            if not is_write_conflict(exc):
                raise
            if attempt == attempts - 1:
                raise Conflict(
                    f"{what} collided with a concurrent change {attempts} times; try again"
                ) from exc
            time.sleep(random.uniform(0, 0.005 * 2 ** min(attempt, 6)))
    raise AssertionError("unreachable")

"""How dashboard pages read: their reads run side by side, and their results are shared.

A page names every read it needs up front (a ``Board``): metric queries (``spec``) and other
reads (journeys, theme impact). They run on the app's ``ReaderPool``, whose connections stay
open and keep table schemas. Results go into the app's ``FrameCache``: every view of the same
question in the next minute shares them, and a background pass (``refresh``) computes again
what people are still looking at before it goes stale, so a dashboard someone keeps open, or
the landing page everyone opens, is answered from memory. Each page says when its figures
were computed ("figures as of").
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import pandas as pd
from fastapi import FastAPI, Request
from ibis.backends import BaseBackend

from cxm.metrics import Metric, compute
from cxm.metrics.analytics import GRAINS, NONE_LABEL, column_name
from cxm.metrics.service import read_targets, response_span
from cxm.org.security import get_engine
from cxm.store.analytics import ReaderPool
from cxm.web.filters import Filters

log = logging.getLogger(__name__)
Key = tuple[Any, ...]
Read = Callable[[BaseBackend], Any]
Spec = tuple[str, tuple[str, ...], tuple[tuple[str, Any], ...]]
_METRIC = "metric"  # marks the cache keys of metric results
TARGETS: Key = ("targets",)


def spec(name: str, by: Sequence[str] = (), **kw: Any) -> Spec:
    """One metric query of a page: ``compute(name, by, **kw)`` under the page's filters.
    ``company=True`` ignores the page's department (the whole company's slices)."""
    return (name, tuple(by), tuple(sorted(kw.items())))


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as plain dicts with NaN turned into None (templates test for None)."""
    return [{str(k): _clean(v) for k, v in row.items()} for row in df.to_dict("records")]


@dataclass
class _Entry:
    made: float  # monotonic time the value was computed
    as_of: dt.datetime
    value: Any
    read: Read | None  # how to compute it again
    seen: float  # monotonic time a page last used it


class FrameCache:
    """Results shared by every page view for ``ttl`` seconds, and kept fresh while in use.

    ``refresh`` computes again, before they expire, the entries a page used in the last
    ``keep`` seconds; entries nobody used for that long are dropped. The API and CLI never
    use this: they always compute.
    """

    def __init__(self, ttl: float = 60.0, keep: float = 600.0, size: int = 2000,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.ttl, self.keep, self.size, self.clock = ttl, keep, size, clock
        self._items: dict[Key, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, key: Key) -> tuple[dt.datetime, Any] | None:
        """(when computed, value) while fresh; None when missing or stale."""
        now = self.clock()
        with self._lock:
            entry = self._items.get(key)
            if entry is None or now - entry.made > self.ttl:
                return None
            entry.seen = now
            return entry.as_of, entry.value

    def put(self, key: Key, value: Any, read: Read | None = None) -> None:
        now = self.clock()
        with self._lock:
            if key not in self._items and len(self._items) >= self.size:
                # Bounded: drop the half that was used longest ago.
                for old in sorted(self._items, key=lambda k: self._items[k].seen)[: self.size // 2]:
                    del self._items[old]
            seen = self._items[key].seen if key in self._items else now
            self._items[key] = _Entry(now, dt.datetime.now(dt.UTC), value, read, seen)

    def due(self, ahead: float) -> list[tuple[Key, Read]]:
        """Entries in use that expire within ``ahead`` seconds (dropping the unused)."""
        now = self.clock()
        out = []
        with self._lock:
            for key, entry in list(self._items.items()):
                if now - entry.seen > self.keep:
                    del self._items[key]
                elif entry.read is not None and now - entry.made >= self.ttl - ahead:
                    out.append((key, entry.read))
        return out

    def refresh(self, readers: ReaderPool, ahead: float = 20.0) -> int:
        """Compute again what is in use and about to expire; returns how many were.

        A read that fails is dropped (the next page view computes it, and shows its error)."""
        due = self.due(ahead)
        if not due:
            return 0
        failed = object()

        def attempt(read: Read) -> Read:
            def run(backend: BaseBackend) -> Any:
                try:
                    return read(backend)
                except Exception:
                    log.exception("dashboard refresh of one result failed")
                    return failed

            return run

        values = readers.map([attempt(read) for _, read in due])
        done = 0
        for (key, read), value in zip(due, values, strict=True):
            if value is failed:
                self.drop(key)
            else:
                self.put(key, value, read)
                done += 1
        return done

    def drop(self, key: Key) -> None:
        with self._lock:
            self._items.pop(key, None)


def frame_cache(request: Request) -> FrameCache:
    cache: FrameCache | None = getattr(request.app.state, "frame_cache", None)
    if cache is None:
        cache = FrameCache()
        request.app.state.frame_cache = cache
    return cache


def readers(request: Request) -> ReaderPool:
    """The app's pool of analytics connections, opened on the first dashboard view."""
    pool: ReaderPool | None = getattr(request.app.state, "readers", None)
    if pool is None:
        pool = ReaderPool(get_engine(request))
        request.app.state.readers = pool
    return pool


def refresh(app: FastAPI) -> int:
    """One background pass: recompute the dashboards' results in use before they expire.

    It reads on a connection of its own, one query at a time, so that pages being viewed
    keep the reader pool and most of the machine."""
    cache: FrameCache | None = getattr(app.state, "frame_cache", None)
    if cache is None:
        return 0
    pool: ReaderPool | None = getattr(app.state, "refresher", None)
    if pool is None:
        pool = app.state.refresher = ReaderPool(app.state.engine, workers=1)
    return cache.refresh(pool)


class Board:
    """One page's reads: metric queries and the page's other reads, run side by side.

    A page names every read it needs up front (``run``); they execute on the app's reader
    pool, then the page takes the results. Results come from the app's ``FrameCache`` when it
    has them.
    """

    def __init__(self, pool: ReaderPool, metrics: dict[str, Metric], f: Filters,
                 cache: FrameCache | None = None) -> None:  # fmt: skip
        self.readers, self.metrics, self.filters, self.cache = pool, metrics, f, cache
        self.as_of: dt.datetime | None = None
        self._results: dict[Any, Any] = {}

    def _compute(self, key: Spec, backend: BaseBackend) -> pd.DataFrame:
        name, by, kw = key
        options = dict(kw)
        f = self._filters(options.pop("company", False))
        return compute(backend, name, list(by), start=f.start_at, end=f.end_at,
                       filters=f.metric_filters(), metrics=self.metrics,
                       targets=self._targets(backend), **options)  # fmt: skip

    def _targets(self, backend: BaseBackend) -> pd.DataFrame | None:
        """The installation's targets, read once for all the metrics computed in a minute."""
        if self.cache is None:
            return None  # compute reads them
        cached = self.cache.get(TARGETS)
        if cached is not None:
            return cached[1]
        targets = read_targets(backend)
        self.cache.put(TARGETS, targets)
        return targets

    def _filters(self, company: bool) -> Filters:
        f = self.filters
        return Filters(f.start, f.end, None, f.segment) if company else f

    def _cache_key(self, key: Spec) -> Key:
        f = self._filters(dict(key[2]).get("company", False))
        return (key, f.start, f.end, f.department, f.segment, _METRIC)

    def run(self, specs: Sequence[Spec], tasks: Mapping[Key, Read] | None = None) -> None:
        """Compute ``specs`` (metric queries) and ``tasks`` (other reads of the page, keyed for
        the cache) side by side; what the cache holds is not computed again."""
        todo: dict[Key, Read] = {}
        for key, read in (tasks or {}).items():  # first: they are the longer reads
            if key not in self._results:
                todo[key] = read
        specs = [key for key in dict.fromkeys(specs) if key not in self._results]
        for key in specs:
            todo[self._cache_key(key)] = partial(self._compute, key)
        if specs and self.cache is not None and self.cache.get(TARGETS) is None:
            self.readers.map([self._targets])  # once, before the queries that use them
        for key in list(todo):
            cached = self.cache.get(key) if self.cache else None
            if cached is not None:
                when, self._results[self._local_key(key)] = cached
                self.as_of = min(self.as_of or when, when)
                del todo[key]
        if not todo:
            return
        made = self.readers.map(list(todo.values()))
        for (key, read), value in zip(todo.items(), made, strict=True):
            self._results[self._local_key(key)] = value
            if self.cache:
                self.cache.put(key, value, read)
        self.as_of = self.as_of or dt.datetime.now(dt.UTC)

    def _local_key(self, key: Key) -> Any:
        """Metric results are kept by their spec; other tasks by their own key."""
        return key[0] if key and key[-1] == _METRIC else key

    def result(self, key: Key) -> Any:
        """What a task given to ``run`` produced."""
        return self._results[key]

    def frame(self, name: str, by: Sequence[str] = (), **kw: Any) -> pd.DataFrame:
        key = spec(name, by, **kw)
        if key not in self._results:
            self.run([key])
        return self._results[key]

    def rows(self, name: str, by: Sequence[str] = (), **kw: Any) -> list[dict[str, Any]]:
        """The rows of one metric query, each with ``query``: the same figure asked alone."""
        out = records(self.frame(name, by, **kw))
        f = self._filters(kw.get("company", False))
        for row in out:
            row["query"] = single_query(name, by, row, f)
        return out


def span_task(f: Filters) -> tuple[Key, Read]:
    """The read behind a page's period line: the first and last dates of the responses its
    figures count under its filters (``response_span``), keyed for the cache."""
    key: Key = ("response-span", f.start, f.end, f.department, f.segment)

    def read(backend: BaseBackend) -> tuple[dt.date | None, dt.date | None]:
        return response_span(backend, start=f.start_at, end=f.end_at,
                             filters=f.metric_filters())  # fmt: skip

    return key, read


def single_query(name: str, by: Sequence[str], row: Mapping[str, Any],
                 f: Filters) -> dict[str, Any] | None:  # fmt: skip
    """The metric query that gives ``row``'s figure on its own: the page's filters plus the
    row's slice values as filters, its period as start and end. What a reader (or a test)
    asks the API (``/api/v1/metrics/NAME?filter=...``) or the CLI to check a figure on a page.
    None for a slice that cannot be asked alone (a "(none)" slice)."""
    filters = dict(f.metric_filters())
    start, end = f.start_at, f.end_at
    for d in by:
        value = row.get(column_name(d))
        if value is None or value == NONE_LABEL:
            return None
        if d in GRAINS:
            lo = dt.datetime.combine(dt.date.fromisoformat(str(value)), dt.time(), dt.UTC)
            hi = _period_end(lo, d)
            start, end = max(lo, start) if start else lo, min(hi, end) if end else hi
        else:
            filters[d] = str(value)
    return {
        "metric": name,
        "filters": filters,
        "start": start.isoformat() if start else None,
        "end": end.isoformat() if end else None,
    }


def _period_end(start: dt.datetime, grain: str) -> dt.datetime:
    months = {"month": 1, "quarter": 3, "year": 12}.get(grain)
    if months is None:
        return start + dt.timedelta(days=7 if grain == "week" else 1)
    total = start.month - 1 + months
    return start.replace(year=start.year + total // 12, month=total % 12 + 1)

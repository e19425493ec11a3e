"""The dashboards' rollup: each survey metric's sufficient statistics per day, kept in step.

A company-wide figure (NPS by department x month, CSAT by touchpoint, CES by survey) scans
every response. On DuckDB, the default store, each store keeps in memory, per metric, one row
per day x touchpoint x channel x survey with that metric's additive statistics: n and the
promoters, passives and detractors (NPS), successes (a %), or the sum and the sum of squares
of the answers (a mean). A question sliced only by those, the org dimensions that follow from
the touchpoint (department, team, stage, partner) and a time grain, over whole days, then
reads the rollup: a few thousand rows instead of millions. The org is joined when read, so a
touchpoint moved to another department moves its history at once, as in the plain query.

Kept in step with the facts on every read, incrementally and idempotently: a probe (the
number of responses and the latest submission time, one cheap aggregate) tells whether
anything changed since the last read. When it did, the responses per day of submission are
counted again, and, for the metric being read, the days whose count moved since its rollup was
computed (late or deleted responses) and every day from the latest submission it saw (new
answers, and a re-answered response, which takes a new submission time) are recomputed from
the facts; recomputing a day replaces it, so doing it twice changes nothing. Other metrics
are brought in step when they are read. cxm writes responses only that way (it
never rewrites a stored response's scores without a new submission time, and never deletes
one); an edit made to the store by other means that keeps the count of every day and the
latest submission time is not seen until ``rebuild``. A changed metric definition is built
anew. Nothing of it is written to disk; other engines compute the plain query.

tests/metrics/test_rollup.py proves the rollup's figures equal to the plain query's on random
stores through new, late, re-answered and deleted responses.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc
from ibis.backends import BaseBackend

from cxm.metrics import analytics as ax
from cxm.metrics import slices
from cxm.metrics.definitions import FACTS, Metric
from cxm.org.facts import touchpoints_expr
from cxm.store.analytics import to_arrow, to_rows
from cxm.surveys import facts as survey_facts

FACT = "responses"
# The rollup's slice columns, as fact_rows names them, and as the rollup names them.
BASE = {"day": slices.key("day"), "touchpoint": slices.key("touchpoint"),
        "channel": slices.key("channel"), "survey": slices.key("survey")}  # fmt: skip
LABELS = ("touchpoint", "channel", "survey")
STORES = 4  # stores kept, one per store file (a process reads one; tests open many)


_off: ContextVar[bool] = ContextVar("cxm_rollup_off", default=False)
_build_new: ContextVar[bool] = ContextVar("cxm_rollup_build", default=True)


@contextmanager
def held_only(yes: bool = True) -> Iterator[None]:
    """Within the block (``yes``), the rollup answers only with what it already holds: a
    one-off reader (a command, a connection opened for one question) does not build one it
    would use once."""
    token = _build_new.set(not yes)
    try:
        yield
    finally:
        _build_new.reset(token)


@contextmanager
def plain() -> Iterator[None]:
    """Within the block, metrics are computed by the plain query, never from the rollup (to
    compare the two)."""
    token = _off.set(True)
    try:
        yield
    finally:
        _off.reset(token)


def applies(backend: BaseBackend, metric: Metric, by: Sequence[str],
            start: dt.datetime | None, end: dt.datetime | None,
            filters: Mapping[str, Sequence[str]]) -> bool:  # fmt: skip
    """Whether the rollup answers ``metric`` sliced ``by`` under ``filters`` in [start, end):
    on DuckDB, a responses metric timed by submission whose statistics add up (NPS, a % of
    successes, a count, a mean of a column) and that reads no customer, sliced and filtered
    only by the rollup's dimensions, over whole UTC days."""
    if _off.get() or backend.name != "duckdb" or metric.fact != FACT:
        return False
    if metric.time not in (None, FACTS[FACT].time):
        return False
    fact = FACTS[FACT]
    if metric.kind == "mean":
        if not metric.column or metric.per:
            return False
    elif metric.kind == "proportion":
        if metric.success is None:
            return False
    elif metric.kind not in ("nps", "count"):
        return False
    if ax._needs_customer(metric, fact, []) or ax._uses_derived(metric, fact):
        return False
    known = set(ax.GRAINS) | set(ax.ORG_DIMENSIONS) | set(LABELS)
    if any(d not in known for d in [*by, *filters]):
        return False
    if not all(_whole_day(t) for t in (start, end) if t is not None):
        return False
    if _holds(backend, metric):
        return True
    return _build_new.get() and _large(backend)


# Below this many responses the plain query costs about what the rollup's own probe does.
MIN_RESPONSES = 50_000
SIZE_EVERY = 60.0  # seconds between two looks at a small store's size
_sizes: dict[str, tuple[float, int]] = {}


def _large(backend: BaseBackend) -> bool:
    """Whether the store holds at least ``MIN_RESPONSES`` responses (looked at once a
    minute while it does not)."""
    path = _path(backend)
    now = time.monotonic()
    seen = _sizes.get(path)
    if seen is None or (seen[1] < MIN_RESPONSES and now - seen[0] > SIZE_EVERY):
        seen = (now, int(_probe(backend)[0]))
        _sizes[path] = seen
    return seen[1] >= MIN_RESPONSES


def _holds(backend: BaseBackend, metric: Metric) -> bool:
    with _lock:
        store = _stores.get(_path(backend))
        return store is not None and repr(metric) in store.held


def _whole_day(value: dt.datetime) -> bool:
    if value.tzinfo is None:
        return False  # refused with its message by the plain query
    v = value.astimezone(dt.UTC)
    return v.time() == dt.time(0)


# ---- building ---------------------------------------------------------------------------


def _statistics(t: ir.Table, metric: Metric, keys: Sequence[str]) -> ir.Table:
    """Additive statistics per ``keys`` over fact rows ``t``."""
    if metric.kind != "mean":
        return ax.summarise(t, metric, keys)
    assert metric.column is not None
    v = t[metric.column]
    # Integer answers are summed as integers, so the variance read back is exact.
    v = v.cast("int64") if v.type().is_integer() else v.cast("float64")
    return t.group_by(list(keys)).aggregate(n=v.count(), s=v.sum(), ss=(v * v).sum())


DAYS = "_cxm_rollup_days"  # the days to recompute, registered on the connection meanwhile


def _expression(backend: BaseBackend, metric: Metric,
                span: tuple[dt.date, dt.date] | None) -> ir.Table:  # fmt: skip
    """The rollup rows of ``metric`` straight from the facts; with ``span`` (first, last),
    only the days in the table named ``DAYS``, all within it. The span lets the engine skip
    the stored blocks outside it (new answers are appended, so a refresh of today reads the
    last blocks); a compiled statement serves every refresh of the same span."""
    t = ax.fact_rows(backend, metric, list(BASE), keep=ax.read_columns(metric))
    if span is not None:
        time = t[metric.time or FACTS[FACT].time]
        lo = dt.datetime.combine(span[0], dt.time())
        hi = dt.datetime.combine(span[1] + dt.timedelta(days=1), dt.time())
        days = ibis.table(ibis.schema({"day": "date"}), name=DAYS)
        t = t.filter(time >= lo, time < hi, t[BASE["day"]].isin(days.day))
    agg = _statistics(t, metric, list(BASE.values()))
    return agg.rename({d: k for d, k in BASE.items()})


def _build(backend: BaseBackend, metric: Metric,
           days: Sequence[dt.date] | None = None) -> pa.Table:  # fmt: skip
    """``metric``'s rollup rows (of ``days`` only, when given), computed by the engine."""
    if days is None:
        key: tuple[Any, ...] = ("rollup", repr(metric))
        return _held_types(to_arrow(backend, key, lambda: _expression(backend, metric, None)))
    span = (min(days), max(days))
    key = ("rollup", repr(metric), span)
    con: Any = backend.con
    con.register(DAYS, pa.table({"day": pa.array(list(days), pa.date32())}))
    try:
        return _held_types(to_arrow(backend, key, lambda: _expression(backend, metric, span)))
    finally:
        con.unregister(DAYS)


def _held_types(table: pa.Table) -> pa.Table:
    """Integer sums as 64-bit integers (DuckDB widens them to HUGEINT, Arrow decimals)."""
    fields = [pa.field(f.name, pa.int64()) if pa.types.is_decimal(f.type) else f
              for f in table.schema]  # fmt: skip
    return table.cast(pa.schema(fields))


def _probe(backend: BaseBackend) -> tuple[Any, ...]:
    """The number of responses and the latest submission time (one aggregate)."""

    def build() -> ir.Table:
        r = survey_facts.responses(backend, population=None, customer=False)
        return r.aggregate(rows=r.count(), latest=r.submitted_at.max())

    return tuple(to_rows(backend, ("rollup-probe",), build)[1][0])


def _day_counts(backend: BaseBackend) -> dict[dt.date, int]:
    """Responses per day of submission."""

    def build() -> ir.Table:
        r = survey_facts.responses(backend, population=None, customer=False)
        r = r.filter(r.submitted_at.notnull())
        return r.group_by(day=r.submitted_at.truncate("D").date()).aggregate(rows=r.count())

    return {_date(d): int(n) for d, n in to_rows(backend, ("rollup-days",), build)[1]}


def _date(value: Any) -> dt.date:
    out: dt.date = value.date() if isinstance(value, dt.datetime) else value
    return out


# ---- the rollups of each store ---------------------------------------------------------------


@dataclass(frozen=True)
class _Seen:
    """What the facts looked like: the probe's answer and the responses per day."""

    probe: tuple[Any, ...]
    days: dict[dt.date, int]


@dataclass
class _Held:
    metric: Metric
    table: pa.Table
    name: str  # the name it is registered under on each connection (kept through refreshes)
    seen: _Seen  # the facts it was computed from


@dataclass
class _Store:
    seen: _Seen  # the facts at the last read
    held: dict[str, _Held] = field(default_factory=dict)  # by the metric's definition


_stores: dict[str, _Store] = {}
_lock = threading.Lock()
_names = itertools.count()
# The rollup tables registered on a connection, by name, are kept on its backend object:
# Ibis backends compare equal when they read the same database, so a mapping keyed by
# backend would take a new connection for one that has them.
_REGISTERED = "_cxm_rollups"


_paths: weakref.WeakKeyDictionary[BaseBackend, str] = weakref.WeakKeyDictionary()


def _path(backend: BaseBackend) -> str:
    """The store file behind ``backend`` (asked once per connection)."""
    path = _paths.get(backend)
    if path is None:
        raw: Any = backend.con  # the DuckDB connection, only to name the store file
        path = str(raw.execute("PRAGMA database_list").fetchall()[0][2] or ":memory:")
        _paths[backend] = path
    return path


def _changed(old: _Seen, new: _Seen) -> list[dt.date]:
    """Days to recompute: those whose count moved, and every day from the latest
    submission the rollup saw."""
    moved = {d for d in {*new.days, *old.days} if new.days.get(d) != old.days.get(d)}
    latest = old.probe[1]
    first = _date(latest) if latest is not None else dt.date.min
    return sorted(moved | {d for d in new.days if d >= first})


def _held(backend: BaseBackend, metric: Metric) -> _Held:
    """``metric``'s rollup for this store, brought in step with the facts."""
    path = _path(backend)
    key = repr(metric)
    with _lock:
        store = _stores.get(path)
        probe = _probe(backend)
        if store is None:
            store = _Store(_Seen(probe, _day_counts(backend)))
        elif probe != store.seen.probe:
            store.seen = _Seen(probe, _day_counts(backend))
        # Each metric is brought in step when it is read (the others wait for their reads).
        held = store.held.get(key)
        if held is None:
            held = _Held(metric, _build(backend, metric), f"_cxm_rollup_{next(_names)}",
                         store.seen)  # fmt: skip
        elif held.seen is not store.seen:
            changed = _changed(held.seen, store.seen)
            held = _Held(metric, _replace_days(backend, held, changed), held.name, store.seen)
        store.held[key] = held
        _stores.pop(path, None)
        _stores[path] = store
        while len(_stores) > STORES:
            del _stores[next(iter(_stores))]
        return store.held[key]


def _replace_days(backend: BaseBackend, held: _Held, days: Sequence[dt.date]) -> pa.Table:
    if not days:
        return held.table
    fresh = _build(backend, held.metric, days)
    keep = held.table.filter(pc.invert(pc.is_in(held.table["day"], pa.array(days, pa.date32()))))
    return pa.concat_tables([keep, fresh.cast(keep.schema)])


def rebuild(backend: BaseBackend) -> int:
    """Drop this store's rollups (they are built again, from the facts, on the next read);
    returns how many metrics were held."""
    with _lock:
        store = _stores.pop(_path(backend), None)
    return len(store.held) if store else 0


def _register(backend: BaseBackend, held: _Held) -> None:
    """Make ``held.table`` readable under its name on this connection (and only the current
    version of each metric's rollup)."""
    mine: dict[str, pa.Table] | None = getattr(backend, _REGISTERED, None)
    if mine is None:
        mine = {}
        setattr(backend, _REGISTERED, mine)
    with _lock:
        if mine.get(held.name) is held.table:
            return
        current = {h.name for s in _stores.values() for h in s.held.values()}
    con: Any = backend.con
    for name in list(mine):
        if name == held.name or name not in current:  # replaced, or of a dropped store
            con.unregister(name)
            del mine[name]
    con.register(held.name, held.table)
    mine[held.name] = held.table


# ---- reading ---------------------------------------------------------------------------------


Build = Callable[[], ir.Table]


def aggregate(backend: BaseBackend, metric: Metric, by: Sequence[str],
              start: dt.datetime | None, end: dt.datetime | None,
              filters: Mapping[str, Sequence[str]]) -> tuple[str, Build]:  # fmt: skip
    """``analytics.aggregate``'s answer read from the rollup (see ``applies``): the name of
    the rollup version it reads (part of a compiled statement's key), and a function making
    the expression (called only when the statement is not compiled yet)."""
    held = _held(backend, metric)
    _register(backend, held)
    return held.name, lambda: _expression_over(backend, held, metric, by, start, end, filters)


def _expression_over(backend: BaseBackend, held: _Held, metric: Metric, by: Sequence[str],
                     start: dt.datetime | None, end: dt.datetime | None,
                     filters: Mapping[str, Sequence[str]]) -> ir.Table:  # fmt: skip
    schema = ibis.schema({n: t for n, t in zip(held.table.schema.names, _types(held.table),
                                               strict=True)})  # fmt: skip
    r: ir.Table = ibis.table(schema, name=held.name)
    if start is not None:
        r = r.filter(r.day >= start.astimezone(dt.UTC).date())
    if end is not None:
        r = r.filter(r.day < end.astimezone(dt.UTC).date())
    dims = list(dict.fromkeys([*by, *filters]))
    org = [d for d in dims if d in ax.ORG_DIMENSIONS]
    if org:
        tp = touchpoints_expr(backend)
        tp = tp.select(_tp_key=tp.key, **{f"_org_{d}": tp[ax.ORG_DIMENSIONS[d]] for d in org})
        r = r.left_join(tp, r.touchpoint == tp._tp_key)
    out: dict[str, ir.Value] = {}
    for d in dims:
        if d in ax.GRAINS:
            out[slices.key(d)] = r.day.truncate(ax.GRAINS[d])
        elif d in ax.ORG_DIMENSIONS:
            out[slices.key(d)] = r[f"_org_{d}"].cast("string").fill_null(ax.NONE_LABEL)
        else:
            out[slices.key(d)] = r[d]
    r = r.mutate(**out)
    for d, values in filters.items():
        r = r.filter(r[slices.key(d)].isin([str(v) for v in values]))
    keys = [slices.key(d) for d in dict.fromkeys(by)]
    return _read(r, metric, keys)


def _read(r: ir.Table, metric: Metric, keys: list[str]) -> ir.Table:
    """The plain query's statistics from rollup rows ``r``, one row per value of ``keys``."""
    sums = {c: r[c].sum() for c in r.columns if c not in {*BASE, "_tp_key"}
            and not c.startswith(("_org_", "dim__"))}  # fmt: skip
    agg = r.group_by(keys).aggregate(**sums) if keys else r.aggregate(**sums)
    if metric.kind != "mean":
        return agg
    n, s, ss = agg.n, agg.s, agg.ss
    # Sample variance from the sums, n*ss - s*s first (exact for integer answers).
    var = (n * ss - s * s).cast("float64") / (n * (n - 1)).cast("float64")
    null = ibis.null().cast("float64")
    return agg.select(
        *keys,
        n=n,
        mean=ibis.ifelse(n > 0, s.cast("float64") / n.cast("float64"), null),
        sd=ibis.ifelse(n > 1, ibis.greatest(var, 0.0).sqrt(), null),
    )


def _types(table: pa.Table) -> list[str]:
    out = []
    for f in table.schema:
        if pa.types.is_date(f.type):
            out.append("date")
        elif pa.types.is_integer(f.type):
            out.append("int64")
        elif pa.types.is_floating(f.type):
            out.append("float64")
        else:
            out.append("string")
    return out

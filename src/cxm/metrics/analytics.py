"""Ibis expressions for metrics: fact rows, slices, and per-slice sufficient statistics.

Everything here is an Ibis expression (no SQL strings, no loops over rows), so the same
definition runs on DuckDB, PostgreSQL and PySpark. The result of ``aggregate`` is small
(one row per slice); the statistics in ``stats`` run on it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

import ibis
import ibis.expr.types as ir
from ibis.backends import BaseBackend

from cxm.customers import facts as customer_facts
from cxm.errors import Invalid
from cxm.interactions import facts as interaction_facts
from cxm.metrics import slices
from cxm.metrics.definitions import FACTS, GROWTH_FACT, Fact, Lifecycle, Metric
from cxm.org.facts import touchpoints_expr
from cxm.surveys import facts as survey_facts

GRAINS = {"day": "D", "week": "W", "month": "M", "quarter": "Q", "year": "Y"}
ORG_DIMENSIONS = {
    "department": "department_key",
    "team": "team_key",
    "stage": "stage",
    "partner": "partner_key",
}
TRAIT_DIMENSIONS = slices.TRAIT_SHORTHANDS
NONE_LABEL = slices.NONE_LABEL


def dimensions_help() -> str:
    return (
        "department, team, partner, touchpoint, channel, stage, survey, segment, region, "
        "trait:NAME, trigger:PROPERTY (responses, invitations), cohort (growth metrics), "
        "day, week, month, quarter, year"
    )


def grain_of(by: Sequence[str]) -> str | None:
    grains = [d for d in by if d in GRAINS]
    if len(grains) > 1:
        raise Invalid(f"by: give one time grain, not {', '.join(grains)}")
    return grains[0] if grains else None


def column_name(dim: str) -> str:
    """The output column for a slice dimension (``trait:plan`` becomes ``plan``,
    ``trigger:late_days`` becomes ``late_days``)."""
    return slices.column_name(dim) or dim


def _condition(t: ir.Table, cond: Mapping[str, Any], where: bool = False) -> ir.BooleanValue:
    """A YAML condition as an Ibis boolean; a null comparison counts as false.

    ``where=True``: for a filter only, where a null already drops the row as false does; the
    top-level comparisons then go without their ``COALESCE(..., FALSE)``, so engines can push
    them into the scan (DuckDB then filters as it reads, as for a hand-written WHERE)."""
    parts: list[ir.BooleanValue] = []
    for col, spec in cond.items():
        if col == "not":
            parts.append(~_condition(t, spec))
            continue
        if col == "any":
            alts = [_condition(t, sub) for sub in spec]
            expr = alts[0]
            for alt in alts[1:]:
                expr = expr | alt
            parts.append(expr)
            continue
        c = t[col]
        ops = spec if isinstance(spec, dict) else {"in" if isinstance(spec, list) else "eq": spec}
        for op, v in ops.items():
            e: ir.BooleanValue
            if op == "eq":
                e = c == v
            elif op == "ne":
                e = c != v
            elif op == "in":
                e = c.isin(v)
            elif op == "not_in":
                e = ~c.isin(v)
            elif op == "gt":
                e = c > v
            elif op == "ge":
                e = c >= v
            elif op == "lt":
                e = c < v
            elif op == "le":
                e = c <= v
            else:  # is_null
                e = c.isnull() if v else c.notnull()
            parts.append(e if where else e.fill_null(False))
    out: ir.BooleanValue = ibis.literal(True)
    for p in parts:
        out = out & p
    return out


def _uses_derived(metric: Metric, fact: Fact) -> bool:
    conds = [metric.rows or {}, metric.success or {}]
    text = repr(conds) + str(metric.column)
    return any(name in text for name in fact.derived)


# Each fact table through its owner's accessor (current customer ids after merges). Metric
# definitions choose the population themselves (``respondent_kind`` filters).
READERS: dict[str, Any] = {
    "responses": lambda b: survey_facts.responses(b, population=None),
    "survey_invitations": survey_facts.invitations,
    "interactions": interaction_facts.log,
    "customers": customer_facts.every_profile,
}


# Readers of the same rows without the customer column, for metrics that never read it.
# Mapping each row to its current customer is a join, and most of a company-wide figure's
# time after the scan.
WITHOUT_CUSTOMER: dict[str, Any] = {
    "responses": lambda b: survey_facts.responses(b, population=None, customer=False),
}


def read_fact(backend: BaseBackend, fact: Fact, customer: bool = True) -> ir.Table:
    """The rows of ``fact`` from the domain that owns it (``customer=False``: a reader may
    leave the customer column out)."""
    reader = READERS.get(fact.table)
    if reader is None:
        raise Invalid(f"no reader for the fact table {fact.table!r}; known: {', '.join(READERS)}")
    if not customer:
        reader = WITHOUT_CUSTOMER.get(fact.table, reader)
    table: ir.Table = reader(backend)
    return table


def _needs_customer(metric: Metric, fact: Fact, dims: Sequence[str]) -> bool:
    """Whether the metric's rows, sliced by ``dims``, read the fact's customer column."""
    if fact.customer is None:
        return False
    if any(slices.is_typed(d) for d in dims) or _uses_derived(metric, fact):
        return True
    parts = [metric.filters, metric.rows, metric.success, metric.numerator, metric.denominator,
             metric.column, metric.base, metric.per]  # fmt: skip
    return fact.customer in repr(parts)


def _naive_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise Invalid(f"{value.isoformat()}: give start and end with a time zone (or as UTC)")
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def fact_rows(
    backend: BaseBackend,
    metric: Metric,
    dims: Sequence[str],
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    customer: bool | None = None,
    keep: Collection[str] | None = None,
) -> ir.Table:
    """The metric's rows with one column per slice dimension in ``dims``; ``customer=True``
    keeps the fact's customer column for callers that join on it (by default it is read only
    when the metric or a slice needs it). ``keep``: the fact's columns the caller reads (with
    the fact's time, key and link columns); None keeps them all."""
    assert metric.fact is not None
    fact = FACTS[metric.fact]
    if metric.time:
        fact = replace(fact, time=metric.time)
    if metric.fact == GROWTH_FACT:
        grain = grain_of(dims)
        if grain is None:
            raise Invalid(f"{metric.name} is measured per period: slice it by a time grain "
                          f"({', '.join(GRAINS)})")  # fmt: skip
        assert metric.lifecycle is not None
        t = customer_periods(backend, metric.lifecycle, grain)
    else:
        needs = _needs_customer(metric, fact, dims) if customer is None else customer
        t = read_fact(backend, fact, customer=needs)
    t = t.filter(_condition(t, metric.filters, where=True), t[fact.time].notnull())
    if _uses_derived(metric, fact) and fact.customer:
        # The next event of the same customer, ordered by time then key so ties resolve the
        # same way on every engine. Computed before the date range so that a contact near the
        # end of the range still sees the contact that follows it.
        t = t.filter(t[fact.customer].notnull())
        w = ibis.window(group_by=t[fact.customer], order_by=[t[fact.time], t[fact.key]])
        t = t.mutate(_next_time=t[fact.time].lead().over(w), next_name=t.name.lead().over(w))
        # Whole seconds as double precision on every engine: epoch functions differ in
        # whether they keep fractions of a second, and PostgreSQL's are NUMERIC, whose division
        # rounds to a few decimals.
        seconds = (
            t._next_time.truncate("s").epoch_seconds() - t[fact.time].truncate("s").epoch_seconds()
        ).cast("float64")
        t = t.mutate(hours_to_next=seconds / 3600.0)
    if start is not None:
        t = t.filter(t[fact.time] >= _naive_utc(start))
    if end is not None:
        t = t.filter(t[fact.time] < _naive_utc(end))
    if metric.rows:
        t = t.filter(_condition(t, metric.rows, where=True))
    if keep is not None:
        # Only the columns the caller reads and the slices need: a shorter statement, which
        # the engine binds and plans in a fraction of the time (most of a small store's query).
        t = t.select(*(c for c in t.columns if c in {*keep, *_link_columns(fact, dims)}))
    return _with_dimensions(backend, t, fact, metric, dims)


def _link_columns(fact: Fact, dims: Sequence[str]) -> set[str]:
    """The fact's columns that slicing by ``dims`` reads."""
    out = {fact.time}
    for d in dims:
        if d in ORG_DIMENSIONS or d == "touchpoint":
            out.add(fact.touchpoint or "")
        if d == "partner":
            # A partner running part of a touchpoint owns the rows whose interaction names it.
            out.update((fact.trigger or "", "properties"))
        elif d == "channel":
            out.add(fact.channel or "")
        elif d == "survey":
            out.add(fact.survey or "")
        elif d == "cohort":
            out.add("cohort")
        elif slices.trait_name(d) is not None:
            out.add(fact.customer or "")
        elif slices.trigger_property(d) is not None:
            out.add(fact.trigger or "")
    return out


def _with_dimensions(
    backend: BaseBackend, t: ir.Table, fact: Fact, metric: Metric, dims: Sequence[str]
) -> ir.Table:
    # Column names, not expressions: each join below makes a new table, and an expression
    # taken from an earlier one would not belong to the final table.
    columns: dict[str, str] = {}
    order: str | None = None
    org_needed = [d for d in dims if d in ORG_DIMENSIONS]
    if org_needed:
        if fact.touchpoint is None:
            raise Invalid(f"{metric.name} reads {metric.fact}, which has no touchpoint to slice "
                          f"by {org_needed[0]}")  # fmt: skip
        tp = touchpoints_expr(backend)
        tp = tp.select(
            _tp_key=tp.key,
            **{f"_org_{d}": tp[col] for d, col in ORG_DIMENSIONS.items() if d in org_needed},
            **({"_tp_runs": tp.partner_runs} if "partner" in org_needed else {}),
        )
        t = t.left_join(tp, t[fact.touchpoint] == tp._tp_key)
        if "partner" in org_needed:
            t = _partner_of_row(backend, t, fact)
        for d in org_needed:
            columns[d] = f"_org_{d}"
    orders: dict[str, str] = {}
    for i, d in enumerate(dims):
        if d in GRAINS:
            columns[d] = fact.time
        elif d in ORG_DIMENSIONS:
            continue
        elif d == "touchpoint" and fact.touchpoint:
            columns[d] = fact.touchpoint
        elif d == "channel" and fact.channel:
            columns[d] = fact.channel
        elif d == "survey" and fact.survey:
            columns[d] = fact.survey
        elif d == "cohort" and "cohort" in fact.columns:
            columns[d] = "cohort"
        elif slices.trait_name(d) is not None and fact.customer:
            t, columns[d], order = slices.trait(backend, t, fact.customer, d, i)
        elif slices.trigger_property(d) is not None and fact.trigger:
            t, columns[d], order = slices.trigger(backend, t, fact.trigger, d, i)
        else:
            raise Invalid(
                f"cannot slice {metric.name} ({metric.fact}) by {d!r}; "
                f"dimensions: {dimensions_help()}"
            )
        if slices.is_typed(d) and order is not None:
            orders[d] = order
        order = None
    out: dict[str, ir.Value] = {}
    for d, name in columns.items():
        if d in GRAINS:
            out[slices.key(d)] = t[name].truncate(GRAINS[d]).date()
        else:
            out[slices.key(d)] = t[name].cast("string").fill_null(NONE_LABEL)
        if d in orders:
            out[slices.order_key(d)] = t[orders[d]]
    return t.mutate(**out)


def _partner_of_row(backend: BaseBackend, t: ir.Table, fact: Fact) -> ir.Table:
    """``t`` with ``_org_partner`` narrowed to the rows the partner ran: at a touchpoint it
    runs only in part (``partner_runs = marked``), a row is the partner's when its interaction
    (an interaction row itself, or the one that triggered a response or invitation) names the
    partner in ``properties.partner``; the other rows there are run in-house."""
    if fact.trigger is not None:
        # Only the triggers at touchpoints run in part are read (none in most companies).
        marked = touchpoints_expr(backend)
        marked = marked.filter(marked.partner_runs == "marked").select(_mk=marked.key)
        log = interaction_facts.log(backend)
        log = log.inner_join(marked, log.touchpoint_key == marked._mk)
        log = log.select(_pev=log.event_id, _pprop=slices.property_text(log, "partner"))
        t = t.left_join(log, t[fact.trigger] == log._pev)
        named = t._pprop
    elif "properties" in t.columns:
        named = slices.property_text(t, "partner")
    else:
        named = ibis.null().cast("string")
    runs_part = (t._tp_runs == "marked").fill_null(False)
    ran = (named == t._org_partner).fill_null(False)
    partner = ibis.ifelse(runs_part & ~ran, ibis.null().cast("string"), t._org_partner)
    return t.mutate(_org_partner=partner)


def aggregate(
    backend: BaseBackend,
    metric: Metric,
    by: Sequence[str],
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    filters: Mapping[str, Sequence[str]] | None = None,
    stratum: str | None = None,
) -> ir.Table:
    """Per-slice sufficient statistics of ``metric`` (counts, or mean/sd/n)."""
    filters = filters or {}
    dims = list(dict.fromkeys([*by, *filters, *([stratum] if stratum else [])]))
    t = fact_rows(backend, metric, dims, start=start, end=end, keep=read_columns(metric))
    for d, values in filters.items():
        t = t.filter(t[slices.key(d)].isin([str(v) for v in values]))
    keys = [slices.key(d) for d in dict.fromkeys([*by, *([stratum] if stratum else [])])]
    # Numbers, dates and bins carry their order along (one value per label).
    keys += [slices.order_key(d) for d in by if slices.order_key(d) in t.columns]
    return summarise(t, metric, keys)


def _condition_columns(cond: Any) -> set[str]:
    if isinstance(cond, Mapping):
        out: set[str] = set()
        for k, v in cond.items():
            out |= _condition_columns(v) if k in ("not", "any") else {str(k)}
        return out
    if isinstance(cond, list):
        return set().union(*(_condition_columns(c) for c in cond)) if cond else set()
    return set()


def read_columns(metric: Metric) -> set[str]:
    """The fact columns ``summarise`` reads for ``metric`` (its conditions and columns)."""
    out = {c for c in (metric.column, metric.base, metric.per) if c}
    for cond in (metric.success, metric.numerator, metric.denominator):
        out |= _condition_columns(cond)
    return out


def summarise(t: ir.Table, metric: Metric, keys: Sequence[str] = ()) -> ir.Table:
    """The metric's sufficient statistics over rows ``t`` (its fact's rows, filtered), one row
    per value of ``keys``: n and, by kind, promoters/passives/detractors (nps), x (proportion),
    mean and sd (mean), or the sums of a ratio."""
    one = ibis.literal(1)
    zero = ibis.literal(0)
    if metric.kind == "nps":
        c = t[metric.column]
        return _agg(
            t,
            keys,
            n=c.count(),
            promoters=ibis.ifelse(c >= 9, one, zero).sum(),
            passives=ibis.ifelse((c >= 7) & (c <= 8), one, zero).sum(),
            detractors=ibis.ifelse(c <= 6, one, zero).sum(),
        )
    if metric.kind == "proportion":
        if metric.success is not None:
            hit = _condition(t, metric.success)
            return _agg(t, keys, n=t.count(), x=ibis.ifelse(hit, one, zero).sum())
        assert metric.numerator is not None and metric.denominator is not None
        num, den = _condition(t, metric.numerator), _condition(t, metric.denominator)
        return _agg(
            t, keys, n=ibis.ifelse(den, one, zero).sum(), x=ibis.ifelse(num, one, zero).sum()
        )
    if metric.kind == "count":
        return _agg(t, keys, n=t.count())
    if metric.kind == "ratio":
        assert metric.column is not None and metric.base is not None
        x, y = t[metric.column].cast("float64"), t[metric.base].cast("float64")
        return _agg(t, keys, n=t.count(), sum_x=x.sum(), sum_y=y.sum(), sum_xx=(x * x).sum(),
                    sum_yy=(y * y).sum(), sum_xy=(x * y).sum())  # fmt: skip
    # mean
    col = metric.column
    assert col is not None
    if metric.per:
        per_keys = [*keys, metric.per]
        inner = t.filter(t[metric.per].notnull())
        agg = {"sum": inner[col].sum(), "count": inner[col].count(), "mean": inner[col].mean()}
        t = _agg(inner, per_keys, _v=agg[metric.per_agg].cast("float64"))
        col = "_v"
    v = t[col].cast("float64")
    return _agg(t, keys, n=v.count(), mean=v.mean(), sd=v.std(how="sample"))


def customer_periods(backend: BaseBackend, lifecycle: Lifecycle, grain: str) -> ir.Table:
    """One row per customer and period of ``grain``, from the period of their acquisition on.

    Columns: customer_id, period (the period's start), cohort (acquisition month, YYYY-MM),
    acquired_at, churned_at, active_at_start (acquired in an earlier period, not churned
    before this one), new (acquired in it), churned (churned in it), active_at_end (not
    churned by its end), retained (active at start and at end), revenue_start (the customer's
    recurring revenue in the previous period when active at start, else 0), revenue_end (the
    recurring revenue in this period when active at its end, else 0) and revenue_retained
    (the lesser of the two). Periods are those in which the log has any event, so the
    expression needs no calendar arithmetic and reads the same on every engine.
    """
    unit = GRAINS[grain]
    log = interaction_facts.log(backend)
    log = log.filter(log.customer_id.notnull())
    life = customer_lifecycle(backend, lifecycle)
    life = life.select(
        "customer_id",
        "acquired_at",
        "churned_at",
        _acq=life.acquired_at.truncate(unit),
        _churn=life.churned_at.truncate(unit),
        cohort=life.acquired_at.truncate("M").date().cast("string").substr(0, 7),
    )
    spine = log.select(period=log.event_time.truncate(unit)).distinct()
    spine = spine.mutate(_prev=spine.period.lag().over(ibis.window(order_by=spine.period)))
    rev = log.filter(log.name.isin(list(lifecycle.revenue)), log.revenue.notnull())
    rev = rev.group_by(_rc=rev.customer_id, _rp=rev.event_time.truncate(unit)).aggregate(
        _rev=rev.revenue.sum()
    )
    t = life.join(spine, life._acq <= spine.period)
    now = rev.rename(_rc_now="_rc", _rp_now="_rp", _rev_now="_rev")
    t = t.left_join(now, [t.customer_id == now._rc_now, t.period == now._rp_now])
    t = t.left_join(rev, [t.customer_id == rev._rc, t._prev == rev._rp])
    at_start = (t._acq < t.period) & (t._churn.isnull() | (t._churn >= t.period))
    at_end = t._churn.isnull() | (t._churn > t.period)
    zero = ibis.literal(0.0)
    t = t.select(
        "customer_id", "period", "cohort", "acquired_at", "churned_at",
        active_at_start=at_start,
        new=t._acq == t.period,
        churned=(t._churn == t.period).fill_null(False),
        active_at_end=at_end,
        retained=at_start & at_end,
        revenue_start=ibis.ifelse(at_start, t._rev.cast("float64").fill_null(0.0), zero),
        revenue_end=ibis.ifelse(at_end, t._rev_now.cast("float64").fill_null(0.0), zero),
    )  # fmt: skip
    return t.mutate(revenue_retained=ibis.least(t.revenue_start, t.revenue_end))


def customer_lifecycle(backend: BaseBackend, lifecycle: Lifecycle) -> ir.Table:
    """One row per acquired customer: customer_id, acquired_at (first acquisition event) and
    churned_at (the last churn event when no acquisition event follows it, else null)."""
    log = interaction_facts.log(backend)
    log = log.filter(log.customer_id.notnull())
    starts = log.name.isin(list(lifecycle.acquisition))
    ends = log.name.isin(list(lifecycle.churn))
    null_time = ibis.null().cast("timestamp")
    life = (
        log.filter(starts | ends)
        .group_by(log.customer_id)
        .aggregate(
            acquired_at=ibis.ifelse(starts, log.event_time, null_time).min(),
            _last_start=ibis.ifelse(starts, log.event_time, null_time).max(),
            _last_end=ibis.ifelse(ends, log.event_time, null_time).max(),
        )
    )
    life = life.filter(life.acquired_at.notnull())
    life = life.mutate(
        churned_at=ibis.ifelse(life._last_end >= life._last_start, life._last_end, null_time)
    )
    return life.select("customer_id", "acquired_at", "churned_at")


def _agg(t: ir.Table, keys: Sequence[str], **metrics: ir.Value) -> ir.Table:
    return t.group_by(list(keys)).aggregate(**metrics) if keys else t.aggregate(**metrics)


def target_overrides(backend: BaseBackend) -> ir.Table | None:
    """The per-installation target table when the backend has it (a lake may not)."""
    # Asking for the table rather than listing tables: listing is not supported the same way
    # on every backend, and a missing table raises a backend-specific error.
    try:
        return backend.table("metric_targets")
    except Exception:
        return None


def per_row(metric: Metric) -> bool:
    """Whether ``metric`` is a mean over its rows (``row_value`` gives each row's value)."""
    if metric.kind in ("nps", "mean"):
        return bool(metric.column) and not metric.per
    return metric.kind == "proportion" and metric.success is not None


def row_value(t: ir.Table, metric: Metric) -> ir.NumericValue | None:
    """The value each row contributes to a metric that is a mean over rows, as float: the
    answer (nps: 0-10; mean: its column), or 100/0 for a proportion's success (so a mean of
    it is the % and a regression on it a linear probability model in % points). None for a
    metric that is not a mean over rows (count, ratio, derived, a mean per group, a
    proportion with a numerator and denominator)."""
    if metric.kind in ("nps", "mean") and metric.column and not metric.per:
        value: ir.NumericValue = t[metric.column].cast("float64")
        return value
    if metric.kind == "proportion" and metric.success is not None:
        hit = _condition(t, metric.success)
        if metric.invert:
            hit = ~hit
        return ibis.ifelse(hit, 100.0, 0.0)
    return None

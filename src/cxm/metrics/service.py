"""Computing metrics: slices, intervals, targets, significance, weighting; targets and alerts.

``compute`` returns a tidy pandas DataFrame, one row per slice, with the slice columns
followed by: metric, value, ci_low, ci_high, n, weighted_n, method, target, on_target, flags
(and p_value, p_adjusted, significant, compared_with when ``compare`` is given). The
aggregation runs in the engine (Ibis); the statistics run on the aggregated rows.
"""

from __future__ import annotations

import ast
import datetime as dt
import hashlib
import math
import operator
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ibis.expr.types as ir
import pandas as pd
import sqlalchemy as sa
from ibis.backends import BaseBackend
from sqlalchemy.engine import Connection, Engine

from cxm.errors import Invalid, NotFound
from cxm.metrics import analytics as ax
from cxm.metrics import rollup, slices, stats
from cxm.metrics.definitions import FACTS, Metric, MetricModel, load
from cxm.metrics.tables import metric_alerts, metric_targets
from cxm.store import insert_ignore, utcnow
from cxm.store.analytics import reading, to_frame, to_rows

Row = Mapping[Any, Any]  # one aggregated row (a pandas record)
BELOW_MIN_SAMPLE = "below_min_sample"
OUTPUT = ["metric", "value", "ci_low", "ci_high", "n", "weighted_n", "method", "target",
          "on_target", "flags"]  # fmt: skip


@dataclass(frozen=True)
class Weighting:
    """Post-stratification by a customer trait against known population shares."""

    trait: str
    shares: Mapping[str, float]


# The responses every customer score counts: customers' completed answers, by submitted_at.
RESPONSES_COUNTED = Metric(
    name="responses_counted",
    source="cxm",
    **MetricModel(
        description="Completed customer responses, by the time they were submitted.",
        kind="count",
        fact="responses",
        filters={"respondent_kind": "customer", "completed": True},
        min_sample=1,
    ).model_dump(),
)


def response_span(
    source: Engine | BaseBackend,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    filters: Mapping[str, str | Sequence[str]] | None = None,
) -> tuple[dt.date | None, dt.date | None]:
    """The UTC dates of the first and last response the customer scores count (completed
    customer responses by ``submitted_at``) in [start, end) within ``filters`` (slice
    dimension -> value or values, as ``compute`` takes them): what a page states as its
    period when no dates are given. (None, None) when there is no such response.
    Start and end need a time zone (Invalid otherwise)."""
    norm = {k: [v] if isinstance(v, str) else list(v) for k, v in (filters or {}).items()}
    for d in norm:
        _check_dimension(d)
    metric = RESPONSES_COUNTED
    time = FACTS["responses"].time
    with reading(source) as backend:
        t = ax.fact_rows(backend, metric, list(norm), start=start, end=end, keep={time})
        for d, values in norm.items():
            t = t.filter(t[slices.key(d)].isin([str(v) for v in values]))
        row = t.aggregate(first=t[time].min(), last=t[time].max()).to_pyarrow().to_pylist()[0]
    return _date(row["first"]), _date(row["last"])


def _date(value: Any) -> dt.date | None:
    if value is None or _missing(value):
        return None
    return pd.Timestamp(value).date()


def get_metric(metrics: Mapping[str, Metric], name: str) -> Metric:
    if name not in metrics:
        raise NotFound(f"no metric {name!r}; known: {', '.join(sorted(metrics))}")
    return metrics[name]


def compute(
    source: Engine | BaseBackend,
    name: str,
    by: Sequence[str] = (),
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    filters: Mapping[str, str | Sequence[str]] | None = None,
    compare: str | None = None,
    correction: str = "holm",
    weights: Weighting | None = None,
    confidence: float = 0.95,
    metrics: Mapping[str, Metric] | None = None,
    targets: pd.DataFrame | None = None,
    bins: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Compute metric ``name`` sliced ``by`` dimensions (and one time grain) in [start, end).

    ``filters`` keeps only the slices given ({"department": "service", "trait:plan": [...]}).
    ``compare`` = "previous" tests each slice against its previous period (needs a grain);
    "rest" tests each slice against all other rows of the same period. Slices below the
    metric's minimum sample get no number, only the flag ``below_min_sample``.
    ``targets`` is the installation's target table as ``read_targets`` returns it, for callers
    that compute many metrics at once; it is read here when not given.
    ``bins`` cuts number and date dimensions of ``by`` at edges ({"trait:tenure_months":
    ["0", "6", "12"]}; see ``cxm.metrics.slices``). A trait no customer has, or a trigger
    property no triggering event carries, is Invalid with the known ones named.
    """
    metrics = metrics if metrics is not None else load()
    metric = get_metric(metrics, name)
    by = list(dict.fromkeys(by))
    grain = ax.grain_of(by)
    if compare not in (None, "previous", "rest"):
        raise Invalid(f"compare: use 'previous' or 'rest', not {compare!r}")
    if compare == "previous" and grain is None:
        raise Invalid("compare=previous needs a time grain in by (day, week, month, ...)")
    if correction not in ("holm", "bh"):
        raise Invalid(f"correction: use 'holm' or 'bh', not {correction!r}")
    if start and end and start >= end:
        raise Invalid(f"start ({start.isoformat()}) must be before end ({end.isoformat()})")
    norm_filters = {k: [v] if isinstance(v, str) else list(v) for k, v in (filters or {}).items()}
    for d in [*by, *norm_filters]:
        _check_dimension(d)
    asked = by  # as the caller names them (targets are set per dimension so named)
    by, norm_filters = _with_bins(by, norm_filters, bins or {})
    # A connection opened for this one question uses the dashboards' rollup only when the
    # process already holds it (building it costs more than the one plain query).
    with reading(source) as backend, rollup.held_only(not isinstance(source, BaseBackend)):
        typed = _typed(backend, metrics, metric, [*by, *norm_filters])
        by = [typed.get(d, d) for d in by]
        norm_filters = {typed.get(d, d): v for d, v in norm_filters.items()}
        start_q: dt.datetime | None = start
        if compare == "previous" and start is not None and grain is not None:
            # One more period before start so the first period has something to compare with.
            start_q = _previous_period_start(start, grain)
        if compare is None and weights is None and metric.kind != "derived":
            # The usual question: plain rows in, one DataFrame out, no pandas in between.
            return _answer(backend, metric, by, asked, start_q, end, norm_filters, confidence,
                           targets)  # fmt: skip
        stats_df = _statistics(backend, metrics, metric, by, start_q, end, norm_filters,
                               weights, confidence)  # fmt: skip
        if compare == "rest":
            _compare_rest(backend, metrics, metric, by, grain, start_q, end, norm_filters,
                          stats_df, confidence)  # fmt: skip
        elif compare == "previous":
            _compare_previous(metric, by, grain, stats_df, confidence)
        if compare == "previous" and start is not None and grain is not None and len(stats_df):
            # (An empty result has no period column to compare: nothing to cut.)
            first = _naive_date(start, grain)
            stats_df = stats_df[stats_df[grain] >= first.isoformat()].reset_index(drop=True)
        if compare:
            _adjust(stats_df, correction)
        if targets is None:
            targets = read_targets(backend)
    _apply_targets(stats_df, metric, asked, _target_table(metric, targets))
    cols = [ax.column_name(d) for d in by] + OUTPUT
    if compare:
        cols += ["compared_with", "delta", "p_value", "p_adjusted", "significant"]
    return stats_df[cols].reset_index(drop=True)


def _check_dimension(d: str) -> None:
    known = (set(ax.GRAINS) | set(ax.ORG_DIMENSIONS) | ax.TRAIT_DIMENSIONS
             | {"touchpoint", "channel", "survey", "cohort"})  # fmt: skip
    if d not in known and not slices.is_typed(d):
        raise Invalid(f"unknown dimension {d!r}; use one of: {ax.dimensions_help()}")


def _with_bins(
    by: list[str], filters: dict[str, list[str]], bins: Mapping[str, Sequence[str]]
) -> tuple[list[str], dict[str, list[str]]]:
    """``by`` and ``filters`` with each binned dimension spelled with its edges."""
    for d in bins:
        if d not in by:
            raise Invalid(f"bins for {d!r}: the metric is not sliced by it (by: "
                          f"{', '.join(by) or 'nothing'})")  # fmt: skip
    spelled = {d: slices.binned(d, edges) for d, edges in bins.items()}
    return ([spelled.get(d, d) for d in by],
            {spelled.get(d, d): v for d, v in filters.items()})  # fmt: skip


def _typed(backend: BaseBackend, metrics: Mapping[str, Metric], metric: Metric,
           dims: Sequence[str]) -> dict[str, str]:  # fmt: skip
    """Each trait or trigger dimension of ``dims`` with its values' type spelled in. Invalid,
    naming the known ones, for a trait no customer has or a trigger property no triggering
    event carries."""
    typed = [d for d in dims if slices.is_typed(d)]
    if not typed:
        return {}
    out: dict[str, str] = {}
    for d in typed:
        if slices.trait_name(d) is not None:
            kind = slices.trait_kind(backend, d)
        else:
            kind = slices.trigger_kind(backend, _trigger_ids(backend, metrics, metric), d)
        out[d] = slices.typed_as(d, kind)
    return out


def _trigger_ids(backend: BaseBackend, metrics: Mapping[str, Metric],
                 metric: Metric) -> ir.Column | None:  # fmt: skip
    """The triggering event ids of the rows ``metric`` reads (the first input's, for a
    derived metric); None when they record none."""
    for m in _leaves(metrics, metric):
        fact = FACTS[m.fact] if m.fact else None
        if fact is None or fact.trigger is None:
            return None
        rows = ax.read_fact(backend, fact)
        return rows[fact.trigger]
    return None


def _leaves(metrics: Mapping[str, Metric], metric: Metric) -> list[Metric]:
    """The metrics that read facts behind ``metric`` (itself, or a derived one's inputs)."""
    if metric.kind != "derived":
        return [metric]
    return [leaf for r in metric.references for leaf in _leaves(metrics, metrics[r])]


def _naive_date(value: dt.datetime, grain: str) -> dt.date:
    d = value.astimezone(dt.UTC).date()
    if grain == "week":
        return d - dt.timedelta(days=d.weekday())
    if grain == "month":
        return d.replace(day=1)
    if grain == "quarter":
        return d.replace(month=(d.month - 1) // 3 * 3 + 1, day=1)
    if grain == "year":
        return d.replace(month=1, day=1)
    return d


def _previous_period_start(start: dt.datetime, grain: str) -> dt.datetime:
    d = _naive_date(start, grain)
    if grain == "day":
        p = d - dt.timedelta(days=1)
    elif grain == "week":
        p = d - dt.timedelta(days=7)
    else:
        months = {"month": 1, "quarter": 3, "year": 12}[grain]
        index = d.year * 12 + d.month - 1 - months
        p = dt.date(index // 12, index % 12 + 1, 1)
    return dt.datetime(p.year, p.month, p.day, tzinfo=dt.UTC)


def _fetch(backend: BaseBackend, metric: Metric, by: Sequence[str], start: dt.datetime | None,
           end: dt.datetime | None, filters: Mapping[str, Sequence[str]],
           stratum: str | None = None) -> pd.DataFrame:  # fmt: skip
    """Run the aggregation and bring it back with plain column names and types."""
    names, records = _fetch_table(backend, metric, by, start, end, filters, stratum)
    return pd.DataFrame({c: [r[c] for r in records] for c in names}, columns=names)


def _key(metric: Metric, by: Sequence[str], start: dt.datetime | None, end: dt.datetime | None,
         filters: Mapping[str, Sequence[str]], stratum: str | None) -> tuple[Any, ...]:  # fmt: skip
    return ("metric", repr(metric), tuple(by), start, end,
            tuple((k, tuple(v)) for k, v in sorted(filters.items())), stratum)  # fmt: skip


def _aggregate(backend: BaseBackend, metric: Metric, by: Sequence[str], start: dt.datetime | None,
               end: dt.datetime | None, filters: Mapping[str, Sequence[str]],
               stratum: str | None) -> Any:  # fmt: skip
    return ax.aggregate(backend, metric, by, start=start, end=end, filters=filters,
                        stratum=stratum)  # fmt: skip


def _renames(by: Sequence[str], stratum: str | None) -> dict[str, str]:
    return {slices.key(d): ax.column_name(d) for d in [*by, *([stratum] if stratum else [])]}


_INTS = ("n", "promoters", "passives", "detractors", "x")
_FLOATS = ("mean", "sd", "sum_x", "sum_y", "sum_xx", "sum_yy", "sum_xy")


def _day(value: Any) -> str:
    if type(value) is dt.date:  # what DuckDB gives for a truncated day
        return value.isoformat()
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(pd.Timestamp(value).strftime("%Y-%m-%d"))


def _int(value: Any) -> int:
    if type(value) is int:  # what DuckDB gives: as is
        return value
    return 0 if value is None or _missing(value) else int(value)


def _float(value: Any) -> float:
    if type(value) is float:
        return value
    return math.nan if value is None or _missing(value) else float(value)


def _fetch_records(backend: BaseBackend, metric: Metric, by: Sequence[str],
                   start: dt.datetime | None, end: dt.datetime | None,
                   filters: Mapping[str, Sequence[str]],
                   stratum: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    return _fetch_table(backend, metric, by, start, end, filters, stratum)[1]


def _missing(value: Any) -> bool:
    """None, NaN, NaT or pd.NA (what an engine gives for a missing typed value)."""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list-like value is not missing
        return False


def _fetch_table(backend: BaseBackend, metric: Metric, by: Sequence[str],
                 start: dt.datetime | None, end: dt.datetime | None,
                 filters: Mapping[str, Sequence[str]],
                 stratum: str | None = None,
                 targets: list[tuple[Any, ...]] | None = None,
                 ) -> tuple[list[str], list[dict[str, Any]]]:  # fmt: skip
    """The aggregation's column names, and its rows as plain dicts (slice values as text,
    periods as YYYY-MM-DD, counts as int, moments as float), sorted by the slice columns:
    numbers, dates and bins by value (missing last), the rest by label.

    Plain Python on the few aggregated rows: per-column pandas operations cost more than the
    query itself on small stores. Given a list as ``targets``, the target table's rows are
    added to it (a second, small statement)."""
    columns, tuples = _read(backend, metric, by, start, end, filters, stratum, targets)
    casts = _casts(columns, by)
    rows = [{c: (v if f is None else f(v)) for c, f, v in zip(columns, casts, t, strict=True)}
            for t in tuples]  # fmt: skip
    orders = [slices.order_key(d) for d in by if slices.order_key(d) in columns]
    keys = [ax.column_name(d) for d in by] + ([ax.column_name(stratum)] if stratum else [])
    if keys:

        def order(r: dict[str, Any]) -> list[tuple[bool, Any]]:
            out: list[tuple[bool, Any]] = []
            for d in by:
                ok = slices.order_key(d)
                if ok in orders:
                    v = r[ok]
                    out.append((True, 0) if _missing(v) else (False, v))
                else:
                    out.append((False, str(r[ax.column_name(d)])))
            return out + [(False, str(r[k])) for k in keys]

        rows.sort(key=order)
    names = [c for c in columns if c not in orders]
    if orders:
        rows = [{c: r[c] for c in names} for r in rows]
    return names, rows


def _read(backend: BaseBackend, metric: Metric, by: Sequence[str], start: dt.datetime | None,
          end: dt.datetime | None, filters: Mapping[str, Sequence[str]], stratum: str | None,
          targets: list[tuple[Any, ...]] | None,
          ) -> tuple[list[str], list[tuple[Any, ...]]]:  # fmt: skip
    """The aggregation as run: its column names (slices as ``compute`` names them) and its
    rows as the engine gives them, unsorted; the target rows added to ``targets`` (a list)."""
    key = _key(metric, by, start, end, filters, stratum)
    if stratum is None and rollup.applies(backend, metric, by, start, end, filters):
        version, build = rollup.aggregate(backend, metric, by, start, end, filters)
        key = (*key, version)
    else:

        def build() -> Any:
            return _aggregate(backend, metric, by, start, end, filters, stratum)

    # Flattened on DuckDB: the statement Ibis nests one select per step costs more to parse
    # and bind than to run on a small store.
    names, tuples = to_rows(backend, key, build, flat=True)
    if targets is not None:
        targets.extend(_installation_targets(backend))
    rename = _renames(by, stratum)
    return [rename.get(c, c) for c in names], tuples


def _casts(columns: Sequence[str], by: Sequence[str]) -> list[Callable[[Any], Any] | None]:
    """Per column of an aggregation: how its values become plain ones (None: as they are)."""
    casts: list[Callable[[Any], Any] | None] = []
    grains = {ax.column_name(d) for d in by if d in ax.GRAINS}
    labels = {ax.column_name(d) for d in by} - grains
    for c in columns:
        if c in grains:
            casts.append(_day)
        elif c in labels:
            casts.append(str)
        elif c in _INTS:
            casts.append(_int)
        elif c in _FLOATS:
            casts.append(_float)
        else:
            casts.append(None)
    return casts


def _answer(backend: BaseBackend, metric: Metric, by: Sequence[str], asked: Sequence[str],
            start: dt.datetime | None, end: dt.datetime | None,
            filters: Mapping[str, Sequence[str]], confidence: float,
            targets: pd.DataFrame | None) -> pd.DataFrame:  # fmt: skip
    """``compute``'s usual question (no comparison, no weights, not derived), column by
    column: the same rows, order, values and types as ``_rows`` then ``_output`` give,
    without a dict per slice. ``asked`` is ``by`` as the caller named it (for targets)."""
    read: list[tuple[Any, ...]] = []
    columns, tuples = _read(backend, metric, by, start, end, filters, None,
                            read if targets is None else None)  # fmt: skip
    table = _target_table(metric, read if targets is None else targets)
    count = len(tuples)
    data: dict[str, list[Any]] = {}
    for c, f, values in zip(columns, _casts(columns, by),
                            zip(*tuples, strict=True) if tuples else [()] * len(columns),
                            strict=True):  # fmt: skip
        data[c] = list(values) if f is None else list(map(f, values))
    keys = [ax.column_name(d) for d in by]
    if keys and count > 1:
        order = _order(data, by, keys)
        data = {c: [v[i] for i in order] for c, v in data.items()}
    n = data["n"]
    value, low, high, method = _intervals(metric, data, count, confidence)
    flags = ["" if m is not None else BELOW_MIN_SAMPLE for m in method]
    below = _method(metric)
    out: dict[str, list[Any]] = {k: data[k] for k in keys}
    out["metric"] = [metric.name] * count
    out.update(value=value, ci_low=low, ci_high=high, n=n, weighted_n=[None] * count,
               method=[below if m is None else m for m in method])  # fmt: skip
    present = {ax.column_name(d) for d in asked} & (set(data) if count else set())
    out["target"], out["on_target"] = _targets_of(
        metric, asked, table, {c: data[c] for c in present}, value, count)  # fmt: skip
    out["flags"] = flags
    # The same dtypes as a frame built column by column from these lists, then cut; the
    # columns in the order of ``out`` (naming them again costs an index lookup each).
    if list(out) != [*keys, *OUTPUT]:  # a slice column named as an output column
        return pd.DataFrame(out, columns=[*keys, *OUTPUT])
    return pd.DataFrame(out)


def _order(data: Mapping[str, list[Any]], by: Sequence[str], keys: Sequence[str]) -> list[int]:
    """The positions of the rows of ``data`` in ``_fetch_table``'s order: numbers, dates and
    bins by value (missing last), the rest by label; ties in their order as read."""
    parts: list[list[Any]] = []
    for d in by:
        ok = slices.order_key(d)
        if ok in data:
            parts.append([(True, 0) if _missing(v) else (False, v) for v in data[ok]])
        else:
            parts.append([(False, str(v)) for v in data[ax.column_name(d)]])
    parts += [[(False, str(v)) for v in data[k]] for k in keys]
    sort_keys = list(zip(*parts, strict=True))
    return sorted(range(len(sort_keys)), key=sort_keys.__getitem__)


def _intervals(metric: Metric, data: Mapping[str, list[Any]], count: int, confidence: float,
               ) -> tuple[list[Any], list[Any], list[Any], list[str | None]]:  # fmt: skip
    """Each row's value, ci_low, ci_high (None where missing) and method, as ``_rows`` gives
    them; method None for a row below the metric's minimum sample (no number)."""
    n = data["n"]
    ok = [i for i in range(count) if n[i] >= metric.min_sample and n[i] != 0]
    value: list[Any] = [None] * count
    low: list[Any] = [None] * count
    high: list[Any] = [None] * count
    method: list[str | None] = [None] * count
    if not ok:
        return value, low, high, method
    if metric.kind in ("nps", "proportion"):
        if metric.kind == "nps":
            v, lo, hi = stats.nps_intervals([data["promoters"][i] for i in ok],
                                            [data["passives"][i] for i in ok],
                                            [data["detractors"][i] for i in ok],
                                            confidence)  # fmt: skip
            label = "nps-" + NPS_METHOD.replace("_", "-")
        else:
            x = [min(data["x"][i], n[i]) for i in ok]
            v, lo, hi = stats.wilson_intervals(x, [n[i] for i in ok], confidence)
            if metric.invert:
                v, lo, hi = 1 - v, 1 - hi, 1 - lo
            label = "wilson"
        for i, a, b, c in zip(ok, (v * 100).tolist(), (lo * 100).tolist(), (hi * 100).tolist(),
                              strict=True):  # fmt: skip
            value[i], low[i], high[i], method[i] = a, b, c, label
        return value, low, high, method
    names = list(data)
    for i in ok:
        r = _interval(metric, {c: data[c][i] for c in names}, confidence)
        value[i], low[i], high[i] = r.value, _nan_none(r.low), _nan_none(r.high)
        method[i] = r.method
    return value, low, high, method


# Every interval and comparison goes through cxm.metrics.stats, which keeps it inside the
# metric's range: NPS -100..100 (adjusted Wald, Rocks 2016), % 0..100 (Wilson), means inside
# their declared scale (pseudo-answers at the scale's ends). See docs/metrics.md.
NPS_METHOD = "adjusted_wald"


def _scale(metric: Metric) -> stats.Scale:
    """The range of a mean metric's answers, as its definition declares it."""
    s = metric.scale or {}
    return stats.Scale(s.get("min"), s.get("max"))


def _range(metric: Metric) -> stats.Scale:
    """The range of the metric's value in its reporting unit."""
    if metric.kind == "nps":
        return stats.Scale(-100.0, 100.0)
    if metric.kind == "proportion":
        return stats.Scale(0.0, 100.0)
    return _scale(metric)


def _interval(metric: Metric, row: Row, confidence: float) -> stats.Interval:
    if metric.kind == "nps":
        i = stats.nps_interval(row["promoters"], row["passives"], row["detractors"], confidence,
                               NPS_METHOD)  # fmt: skip
        return stats.Interval(i.value * 100, i.low * 100, i.high * 100, i.se * 100, i.n, i.method)
    if metric.kind == "proportion":
        x = min(row["x"], row["n"])
        i = stats.wilson_interval(x, row["n"], confidence)
        if metric.invert:
            i = stats.Interval(1 - i.value, 1 - i.high, 1 - i.low, i.se, i.n, i.method)
        return stats.Interval(i.value * 100, i.low * 100, i.high * 100, i.se * 100, i.n, i.method)
    if metric.kind == "count":
        n = float(row["n"])
        return stats.Interval(n, float("nan"), float("nan"), float("nan"), n, "count")
    if metric.kind == "ratio":
        i = stats.ratio_interval(row["sum_x"], row["sum_y"], row["sum_xx"], row["sum_yy"],
                                 row["sum_xy"], row["n"], confidence)  # fmt: skip
        s = _scale(metric)
        low, high = stats.bound(i.value * 100, i.low * 100, i.high * 100, s.min, s.max)
        return stats.Interval(i.value * 100, low, high, i.se * 100, i.n, i.method)
    return stats.mean_interval(row["mean"], row["sd"], row["n"], confidence, _scale(metric))


def _estimate_and_variance(metric: Metric, row: Row, confidence: float) -> tuple[float, float]:
    """Per-observation estimate and (adjusted) variance of one stratum, in the metric's unit."""
    if metric.kind in ("count", "ratio"):
        raise Invalid(f"{metric.name} is a {metric.kind}: weighting applies to nps, proportion "
                      "and mean metrics")  # fmt: skip
    if metric.kind == "nps":
        p, a, d = row["promoters"], row["passives"], row["detractors"]
        return stats.nps_score(p, a, d) * 100, stats.adjusted_variance("nps", row) * 10000
    if metric.kind == "proportion":
        x = min(row["x"], row["n"])
        p = x / row["n"]
        var = stats.adjusted_variance("proportion", {"x": x, "n": row["n"]}, confidence)
        return (1 - p if metric.invert else p) * 100, var * 10000
    var = stats.adjusted_variance("mean", row, confidence, _scale(metric))
    return row["mean"], var


def _empty_row(n: float) -> dict[str, Any]:
    return {"value": None, "ci_low": None, "ci_high": None, "n": n}


def _statistics(backend: BaseBackend, metrics: Mapping[str, Metric], metric: Metric,
                by: Sequence[str], start: dt.datetime | None, end: dt.datetime | None,
                filters: Mapping[str, Sequence[str]], weights: Weighting | None,
                confidence: float) -> pd.DataFrame:  # fmt: skip
    if metric.kind == "derived":
        return _derived(backend, metrics, metric, by, start, end, filters, weights, confidence)
    keys = [ax.column_name(d) for d in by]
    if weights is None:
        return _frame(_rows(backend, metric, by, start, end, filters, confidence), keys, metric)
    stratum = f"trait:{weights.trait}"
    agg = _fetch(backend, metric, by, start, end, filters, stratum=stratum)
    strat_col = ax.column_name(stratum)
    rows = []
    groups = agg.groupby(keys, sort=True) if keys else [((), agg)]
    for key, g in groups:
        key_t = key if isinstance(key, tuple) else (key,)
        out = dict(zip(keys, key_t, strict=True))
        counts = {str(r[strat_col]): float(r["n"]) for r in g.to_dict("records") if r["n"] > 0}
        n = int(sum(counts.values()))
        w = stats.poststrat_weights(counts, weights.shares)
        flags = []
        if n < metric.min_sample or not w:
            flags.append(BELOW_MIN_SAMPLE)
        unknown = sorted(set(counts) - set(weights.shares))
        if unknown:
            flags.append("unweighted_strata:" + "|".join(unknown))
        if BELOW_MIN_SAMPLE in flags:
            out.update(_empty_row(n), weighted_n=None, method=_method(metric) + "-poststratified",
                       flags=",".join(flags))  # fmt: skip
        else:
            recs = {str(r[strat_col]): r for r in g.to_dict("records") if str(r[strat_col]) in w}
            est, var = {}, {}
            for h, r in recs.items():
                est[h], var[h] = _estimate_and_variance(metric, r, confidence)
            i = stats.weighted_interval(est, var, counts, w, confidence,
                                        _method(metric) + "-poststratified",
                                        _range(metric))  # fmt: skip
            out.update(value=i.value, ci_low=_nan_none(i.low), ci_high=_nan_none(i.high), n=n,
                       weighted_n=i.n,
                       method=i.method, flags=",".join(flags))  # fmt: skip
        out["_agg"] = None
        rows.append(out)
    return _frame(rows, keys, metric)


def _rows(backend: BaseBackend, metric: Metric, by: Sequence[str], start: dt.datetime | None,
          end: dt.datetime | None, filters: Mapping[str, Sequence[str]],
          confidence: float,
          targets: list[tuple[Any, ...]] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """One dict per slice: its keys, value, interval, n, method, flags and ``_agg`` (the
    aggregated row the tests read). Given a list as ``targets``, the installation's target
    rows (metric, dimension, value, target) are added to it, read by the same statement on
    DuckDB."""
    keys = [ax.column_name(d) for d in by]
    method = _method(metric)
    rows = []
    _, records = _fetch_table(backend, metric, by, start, end, filters, targets=targets)
    for rec in records:
        out = {k: rec[k] for k in keys}
        n = int(rec["n"])
        if n < metric.min_sample or n == 0:
            out.update(_empty_row(n), weighted_n=None, method=method, flags=BELOW_MIN_SAMPLE)
        else:
            i = _interval(metric, rec, confidence)
            out.update(value=i.value, ci_low=_nan_none(i.low), ci_high=_nan_none(i.high),
                       n=n, weighted_n=None, method=i.method, flags="")  # fmt: skip
        out["_agg"] = rec
        rows.append(out)
    return rows


def _output(rows: list[dict[str, Any]], keys: list[str], metric: Metric) -> pd.DataFrame:
    """``compute``'s answer from finished rows: the slice columns, then ``OUTPUT``."""
    data: dict[str, list[Any]] = {k: [r[k] for r in rows] for k in keys}
    data["metric"] = [metric.name] * len(rows)
    for c in OUTPUT[1:]:
        data[c] = [r.get(c) for r in rows]
    # The same dtypes as a frame built column by column from these lists, then cut.
    return pd.DataFrame(data, columns=[*keys, *OUTPUT])


def _nan_none(v: float) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def _method(metric: Metric) -> str:
    mean = "adjusted-mean" if _scale(metric).closed else "t"
    return {"nps": "nps-adjusted-wald", "proportion": "wilson", "mean": mean, "count": "count",
            "ratio": "ratio-linearised"}.get(metric.kind, "derived")  # fmt: skip


def _frame(rows: list[dict[str, Any]], keys: list[str], metric: Metric) -> pd.DataFrame:
    cols = [*keys, "value", "ci_low", "ci_high", "n", "weighted_n", "method", "flags", "_agg"]
    df = pd.DataFrame({c: [r.get(c) for r in rows] for c in cols}, columns=cols)
    df.insert(len(keys), "metric", metric.name)
    return df


_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}  # fmt: skip


def _evaluate(node: ast.AST, values: Mapping[str, float | None]) -> float | None:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, values)
    if isinstance(node, ast.Constant):
        return float(node.value)  # type: ignore[arg-type]  # formula check: numbers only
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.UnaryOp):
        v = _evaluate(node.operand, values)
        return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
    assert isinstance(node, ast.BinOp)
    a, b = _evaluate(node.left, values), _evaluate(node.right, values)
    if a is None or b is None or (isinstance(node.op, ast.Div) and b == 0):
        return None
    return float(_OPS[type(node.op)](a, b))


def _derived(backend: BaseBackend, metrics: Mapping[str, Metric], metric: Metric,
             by: Sequence[str], start: dt.datetime | None, end: dt.datetime | None,
             filters: Mapping[str, Sequence[str]], weights: Weighting | None,
             confidence: float) -> pd.DataFrame:  # fmt: skip
    """A formula over other metrics, evaluated per slice on their values (no interval)."""
    keys = [ax.column_name(d) for d in by]
    parts = {}
    for ref in metric.references:
        part = _statistics(backend, metrics, metrics[ref], by, start, end, filters, weights,
                           confidence)  # fmt: skip
        parts[ref] = part.set_index(keys) if keys else part
    index = None
    for part in parts.values():
        index = part.index if index is None else index.intersection(part.index)
    assert metric.formula is not None
    tree = ast.parse(metric.formula, mode="eval")
    rows = []
    for key in index if index is not None else []:
        values = {ref: _nan_none(p.loc[key, "value"]) for ref, p in parts.items()}
        n = int(min(p.loc[key, "n"] for p in parts.values()))
        flags = sorted({f for p in parts.values() for f in str(p.loc[key, "flags"]).split(",")
                        if f})  # fmt: skip
        value = None if any(v is None for v in values.values()) else _evaluate(tree, values)
        if value is None and BELOW_MIN_SAMPLE not in flags and n < metric.min_sample:
            flags.append(BELOW_MIN_SAMPLE)
        out = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True)) if keys \
            else {}  # fmt: skip
        out.update(value=value, ci_low=None, ci_high=None, n=n, weighted_n=None,
                   method="derived", flags=",".join(flags), _agg=None)  # fmt: skip
        rows.append(out)
    df = _frame(rows, keys, metric)
    return df.sort_values(keys).reset_index(drop=True) if keys else df


def _test(metric: Metric, a: Row, b: Row,
          confidence: float) -> stats.TestResult | None:  # fmt: skip
    """The two-sample test appropriate to the metric, on two aggregated rows."""
    if metric.kind == "nps":
        if a["n"] == 0 or b["n"] == 0:
            return None
        r = stats.nps_test(
            (a["promoters"], a["passives"], a["detractors"]),
            (b["promoters"], b["passives"], b["detractors"]),
            confidence,
            NPS_METHOD,
        )
        return stats.TestResult(r.delta * 100, r.se * 100, r.low * 100, r.high * 100,
                                r.p_value, r.method)  # fmt: skip
    if metric.kind == "proportion":
        if a["n"] == 0 or b["n"] == 0:
            return None
        r = stats.proportion_test(min(a["x"], a["n"]), a["n"], min(b["x"], b["n"]), b["n"],
                                  confidence)  # fmt: skip
        low, high = (-r.high, -r.low) if metric.invert else (r.low, r.high)
        sign = -1 if metric.invert else 1
        return stats.TestResult(sign * r.delta * 100, r.se * 100, low * 100, high * 100,
                                r.p_value, r.method)  # fmt: skip
    if metric.kind == "ratio":
        if a["n"] < 2 or b["n"] < 2 or a["sum_y"] == 0 or b["sum_y"] == 0:
            return None
        ia, ib = (stats.ratio_interval(row["sum_x"], row["sum_y"], row["sum_xx"],
                                       row["sum_yy"], row["sum_xy"], row["n"], confidence)
                  for row in (a, b))  # fmt: skip
        r = stats.ratio_test(ia, ib, confidence)
        return stats.TestResult(r.delta * 100, r.se * 100, r.low * 100, r.high * 100,
                                r.p_value, r.method)  # fmt: skip
    if metric.kind == "mean":
        if a["n"] < 2 or b["n"] < 2:
            return None
        return stats.mean_test(a["mean"], a["sd"], a["n"], b["mean"], b["sd"], b["n"],
                               confidence, _scale(metric))  # fmt: skip
    return None


def _set_test(df: pd.DataFrame, i: int, label: str, r: stats.TestResult | None) -> None:
    df.at[i, "compared_with"] = label
    if r is not None:
        df.at[i, "delta"] = r.delta
        df.at[i, "p_value"] = r.p_value


def _init_compare(df: pd.DataFrame) -> None:
    df["compared_with"] = None
    df["delta"] = float("nan")
    df["p_value"] = float("nan")


def _compare_previous(metric: Metric, by: Sequence[str], grain: str | None, df: pd.DataFrame,
                      confidence: float) -> None:  # fmt: skip
    _init_compare(df)
    assert grain is not None
    slice_cols = [ax.column_name(d) for d in by if d != grain]
    previous: dict[tuple[Any, ...], tuple[Any, Any]] = {}
    for i in df.sort_values(grain).index:
        key = tuple(df.at[i, c] for c in slice_cols)
        agg: Any = df.at[i, "_agg"]
        if key in previous and agg is not None:
            period, prev = previous[key]
            below = BELOW_MIN_SAMPLE in str(df.at[i, "flags"]) or prev is None
            r = None if below else _test(metric, agg, prev, confidence)
            _set_test(df, i, period, r)
        previous[key] = (df.at[i, grain], agg if BELOW_MIN_SAMPLE not in str(
            df.at[i, "flags"]) else None)  # fmt: skip


def _compare_rest(backend: BaseBackend, metrics: Mapping[str, Metric], metric: Metric,
                  by: Sequence[str], grain: str | None, start: dt.datetime | None,
                  end: dt.datetime | None, filters: Mapping[str, Sequence[str]],
                  df: pd.DataFrame, confidence: float) -> None:  # fmt: skip
    """Each slice against all other rows of its period: totals minus the slice."""
    _init_compare(df)
    if metric.kind == "derived":
        return
    totals = _fetch_records(backend, metric, [grain] if grain else [], start, end, filters)
    total_by = {(r[grain] if grain else None): r for r in totals}
    for i in df.index:
        agg: Any = df.at[i, "_agg"]
        if agg is None or BELOW_MIN_SAMPLE in str(df.at[i, "flags"]):
            continue
        tot = total_by.get(df.at[i, grain] if grain else None)
        if tot is None:
            continue
        rest = _subtract(metric, tot, agg)
        enough = rest is not None and rest["n"] >= metric.min_sample
        _set_test(df, i, "rest", _test(metric, agg, rest, confidence) if enough and rest else None)


def _subtract(metric: Metric, tot: Row,
              part: Row) -> dict[str, Any] | None:  # fmt: skip
    n = tot["n"] - part["n"]
    if n <= 0:
        return None
    if metric.kind in ("nps", "proportion", "count", "ratio"):
        cols = {"nps": ("promoters", "passives", "detractors"), "proportion": ("x",), "count": (),
                "ratio": ("sum_x", "sum_y", "sum_xx", "sum_yy", "sum_xy")}[metric.kind]  # fmt: skip
        return {"n": n, **{c: tot[c] - part[c] for c in cols}}
    # Means: recover the rest's mean and sd from the totals' and the slice's moments.
    s_t, s_p = tot["mean"] * tot["n"], part["mean"] * part["n"]
    ss_t = _sumsq(tot)
    ss_p = _sumsq(part)
    mean = (s_t - s_p) / n
    var = ((ss_t - ss_p) - n * mean * mean) / (n - 1) if n > 1 else float("nan")
    return {"n": n, "mean": mean, "sd": math.sqrt(max(var, 0.0))}


def _sumsq(row: Row) -> float:
    sd = row["sd"] if row["sd"] == row["sd"] else 0.0
    return float((row["n"] - 1) * sd * sd + row["n"] * row["mean"] ** 2)


def _adjust(df: pd.DataFrame, correction: str) -> None:
    tested = df["p_value"].notna()
    df["p_adjusted"] = float("nan")
    if tested.any():
        ps = df.loc[tested, "p_value"].tolist()
        adj = stats.holm(ps) if correction == "holm" else stats.benjamini_hochberg(ps)
        df.loc[tested, "p_adjusted"] = adj
    df["significant"] = df["p_adjusted"] < 0.05


def read_targets(source: Engine | BaseBackend) -> pd.DataFrame:
    """The installation's metric targets: metric, dimension, value, target (one row each)."""
    columns = ["metric", "dimension", "value", "target"]

    def build() -> Any:
        t = ax.target_overrides(backend)
        if t is None:
            raise LookupError("no metric_targets table")
        return t.select(*columns)

    with reading(source) as backend:
        # Through to_frame: on DuckDB the compiled statement is kept per connection, so each
        # compute() reads the (small) table without building and compiling the query again.
        try:
            return to_frame(backend, ("metric_targets", *columns), build)
        except LookupError:
            return pd.DataFrame(columns=columns)


TargetTable = dict[tuple[str, str], float]
_TARGET_COLUMNS = ("metric", "dimension", "value", "target")


def _target_select(backend: BaseBackend) -> Callable[[], Any]:
    """Builds the target table's rows (metric, dimension, value, target); LookupError when
    the backend has no target table."""

    def build() -> Any:
        t = ax.target_overrides(backend)
        if t is None:
            raise LookupError("no metric_targets table")
        return t.select(*_TARGET_COLUMNS)

    return build


# The target rows read on an open DuckDB connection are kept on its backend object with the
# count of target writes they were read at, and read again once a target is set. While a
# connection is open its process holds the DuckDB file, so no other process writes it; in this
# process the targets are written only by ``set_target``, which counts its write when it
# writes and again when its transaction ends (a read in between, which sees the old rows,
# is not kept past the commit).
_KEPT_TARGETS = "_cxm_targets"
_target_writes = [0]
_target_lock = threading.Lock()


def _count_target_write(*_: Any) -> None:
    with _target_lock:
        _target_writes[0] += 1


def _installation_targets(backend: BaseBackend) -> list[tuple[Any, ...]]:
    """The target table's rows (metric, dimension, value, target); none without a table."""
    if backend.name != "duckdb":
        try:
            return to_rows(backend, ("metric_targets-rows", *_TARGET_COLUMNS),
                           _target_select(backend))[1]  # fmt: skip
        except LookupError:  # no target table (a lake without one)
            return []
    writes = _target_writes[0]
    kept: tuple[int, list[tuple[Any, ...]]] | None = getattr(backend, _KEPT_TARGETS, None)
    if kept is not None and kept[0] == writes:
        return kept[1]
    try:
        rows = to_rows(backend, ("metric_targets-rows", *_TARGET_COLUMNS),
                       _target_select(backend))[1]  # fmt: skip
    except LookupError:
        rows = []
    setattr(backend, _KEPT_TARGETS, (writes, rows))
    return rows


def _target_table(metric: Metric,
                  overrides: pd.DataFrame | list[tuple[Any, ...]]) -> TargetTable:  # fmt: skip
    """``metric``'s installation targets keyed by (dimension, value); ("", "") is overall."""
    if isinstance(overrides, pd.DataFrame):
        columns = [overrides[c].tolist() for c in _TARGET_COLUMNS]
        overrides = list(zip(*columns, strict=True))
    return {(str(d), str(v)): float(t) for m, d, v, t in overrides if m == metric.name}


def _targets_of(metric: Metric, by: Sequence[str], table: TargetTable,
                slice_values: Mapping[str, list[Any]], values: list[Any],
                count: int) -> tuple[list[float | None], list[bool | None]]:  # fmt: skip
    """Each row's target and whether its value meets it: the slice target (the first
    dimension of ``by`` with one), else the installation's, else the definition's."""
    default = table.get(("", ""), metric.target)
    # ``by`` as the caller named the dimensions: a slice target is set per dimension so named.
    named = [(d, [str(v) for v in slice_values[ax.column_name(d)]]) for d in by
             if ax.column_name(d) in slice_values]  # fmt: skip
    targets: list[float | None] = []
    for i in range(count):
        target = default
        for d, labels in named:
            key = (d, labels[i])
            if key in table:
                target = table[key]
                break
        targets.append(target)
    on: list[bool | None] = []
    for value, target in zip(values, targets, strict=True):
        if value is None or target is None or value != value:
            on.append(None)
        else:
            on.append(bool(value >= target if metric.direction == "higher" else value <= target))
    return targets, on


def _row_targets(rows: list[dict[str, Any]], metric: Metric, by: Sequence[str],
                 table: TargetTable) -> None:  # fmt: skip
    present = {ax.column_name(d) for d in by} & (set(rows[0]) if rows else set())
    values = {c: [r[c] for r in rows] for c in present}
    targets, on = _targets_of(metric, by, table, values, [r["value"] for r in rows], len(rows))
    for r, target, hit in zip(rows, targets, on, strict=True):
        r["target"], r["on_target"] = target, hit


def _apply_targets(df: pd.DataFrame, metric: Metric, by: Sequence[str],
                   table: TargetTable) -> None:  # fmt: skip
    """Each slice's target and ``on_target`` (see ``_targets_of``), as columns of ``df``."""
    present = {ax.column_name(d): df[ax.column_name(d)].tolist() for d in by
               if ax.column_name(d) in df}  # fmt: skip
    targets, on = _targets_of(metric, by, table, present, df["value"].tolist(), len(df))
    df["target"] = targets
    df["on_target"] = on


# --- targets and alerts (write side: callers commit) ---------------------------------------


def set_target(conn: Connection, metrics: Mapping[str, Metric], name: str, target: float,
               dimension: str = "", value: str = "") -> None:  # fmt: skip
    """Set the installation's target for a metric, or for one slice of it."""
    get_metric(metrics, name)
    if bool(dimension) != bool(value):
        raise Invalid("give both dimension and value for a slice target, or neither")
    if dimension:
        _check_dimension(dimension)
    if not math.isfinite(target):
        raise Invalid("target must be a finite number")
    key = {"metric": name, "dimension": dimension, "value": value}
    # Targets kept by open connections are read again after this write and after its end.
    _count_target_write()
    sa.event.listen(conn, "commit", _count_target_write, once=True)
    sa.event.listen(conn, "rollback", _count_target_write, once=True)
    conn.execute(metric_targets.delete().where(
        *(metric_targets.c[k] == v for k, v in key.items())))  # fmt: skip
    conn.execute(metric_targets.insert().values(**key, target=target, set_at=utcnow()))


def list_targets(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(metric_targets).order_by(
        metric_targets.c.metric, metric_targets.c.dimension, metric_targets.c.value))  # fmt: skip
    return [dict(r._mapping) for r in rows]


def record_alerts(
    conn: Connection,
    source: Engine | BaseBackend,
    name: str,
    by: Sequence[str] = (),
    *,
    grain: str = "month",
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    alpha: float = 0.05,
    metrics: Mapping[str, Metric] | None = None,
) -> list[dict[str, Any]]:
    """Record significant drops against the previous period as alerts; returns new alerts.

    "Drop" follows the metric's direction (a rise in churn is a drop). P-values are
    Holm-adjusted over all slices and periods tested at once. Re-running is idempotent.
    """
    metrics = metrics if metrics is not None else load()
    metric = get_metric(metrics, name)
    if grain not in ax.GRAINS:
        raise Invalid(f"grain: use one of {', '.join(ax.GRAINS)}")
    dims = [d for d in by if d not in ax.GRAINS]
    df = compute(source, name, [*dims, grain], start=start, end=end, compare="previous",
                 metrics=metrics)  # fmt: skip
    worse = df["delta"] < 0 if metric.direction == "higher" else df["delta"] > 0
    hits = df[worse & (df["p_adjusted"] < alpha)]
    created = []
    now = utcnow()
    for rec in hits.to_dict("records"):
        slice_ = ",".join(f"{d}={rec[ax.column_name(d)]}" for d in dims)
        ident = hashlib.sha256(f"{name}|{grain}|{slice_}|{rec[grain]}".encode()).hexdigest()[:32]
        row = {
            "id": ident, "metric": name, "grain": grain, "slice": slice_,
            "period": rec[grain], "previous_period": rec["compared_with"],
            "value": float(rec["value"]), "previous_value": float(rec["value"] - rec["delta"]),
            "p_value": float(rec["p_value"]), "p_adjusted": float(rec["p_adjusted"]),
            "method": str(rec["method"]), "status": "open", "created_at": now,
        }  # fmt: skip
        stmt = insert_ignore(metric_alerts).values(**row).returning(metric_alerts.c.id)
        if conn.execute(stmt).first() is not None:
            created.append(row)
    return created


def list_alerts(conn: Connection, name: str | None = None) -> list[dict[str, Any]]:
    q = sa.select(metric_alerts).order_by(metric_alerts.c.period.desc(), metric_alerts.c.metric)
    if name:
        q = q.where(metric_alerts.c.metric == name)
    return [dict(r._mapping) for r in conn.execute(q)]


# ---- the statistics of one metric on rows chosen elsewhere (theme and signal impact) ----


def interval(metric: Metric, row: Row, confidence: float = 0.95) -> stats.Interval | None:
    """The metric's value and interval, in its reporting unit, from one row of
    ``analytics.summarise``; None when the row has no observation."""
    if not row["n"]:
        return None
    return _interval(metric, row, confidence)


def difference(metric: Metric, a: Row, b: Row,
               confidence: float = 0.95) -> stats.TestResult | None:  # fmt: skip
    """``a`` minus ``b`` with its interval and p-value, by the metric's own two-sample test
    (NPS adjusted Wald, Agresti-Caffo for a %, Welch for a mean); None when a sample is too
    small for it."""
    return _test(metric, a, b, confidence)


def rest(metric: Metric, total: Row, part: Row) -> dict[str, Any] | None:
    """The statistics of the rows of ``total`` outside ``part`` (None when none are left)."""
    return _subtract(metric, total, part)

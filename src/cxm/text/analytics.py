"""Ibis expressions over responses and text tags: texts to annotate, and theme impact on any
metric of survey answers (NPS, CSAT, CES, custom ratings) or on churn.

Each metric's rows, sufficient statistics, interval and two-sample test come from the metrics
layer (one definition for the platform); the counts come from one Ibis aggregation, the
arithmetic runs on them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa
from ibis.backends import BaseBackend
from sqlalchemy.engine import Engine

from cxm.customers.facts import with_trait
from cxm.errors import Invalid
from cxm.metrics import analytics as metrics_ax
from cxm.metrics import service as metrics_service
from cxm.metrics.definitions import Lifecycle, Metric
from cxm.store import analytics
from cxm.store.analytics import reading
from cxm.surveys import facts as survey_facts
from cxm.surveys.facts import CUSTOMER
from cxm.text import facts as text_facts
from cxm.text import schemas

SOURCE = "survey_response"


@dataclass(frozen=True)
class Slice:
    """Which responses: a survey, a time window on ``submitted_at`` (half-open), a segment."""

    survey: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    segment: str | None = None  # customers whose ``segment`` trait has this value
    # Whose answers: customers' by default; "employee" for pulse comments; None for both.
    population: str | None = CUSTOMER
    touchpoints: frozenset[str] | None = None  # only responses at these (None: all)


def _naive_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


def _responses(con: Any, where: Slice) -> Any:
    r = survey_facts.responses(con, where.population)
    r = r.filter(r.completed, r.comment.notnull())
    if where.survey:
        r = r.filter(r.survey_key == where.survey)
    if where.since:
        r = r.filter(r.submitted_at >= _naive_utc(where.since))
    if where.until:
        r = r.filter(r.submitted_at < _naive_utc(where.until))
    if where.segment:
        r = r.filter(r.customer_id.isin(with_trait(con, "segment", where.segment)))
    if where.touchpoints is not None:
        r = r.filter(r.touchpoint_key.isin(sorted(where.touchpoints)))
    return r


# Every comment gets annotated, customers' and employees' alike; analyses choose a population.
EVERYONE = Slice(population=None)
POPULATIONS = {"customer": CUSTOMER, "employee": "employee", "all": None}


def population(name: str) -> str | None:
    """``customer`` | ``employee`` | ``all`` as a ``Slice.population``; Invalid otherwise."""
    if name not in POPULATIONS:
        raise Invalid(f"population '{name}' is unknown: use {', '.join(POPULATIONS)}")
    return POPULATIONS[name]


def response_texts(
    engine: Engine,
    where: Slice = EVERYONE,
    *,
    ids: Sequence[str] | None = None,
    pending_model: str | None = None,
    limit: int | None = None,
) -> pa.Table:
    """Responses with a comment: id, comment, nps, csat, submitted_at (oldest first).

    ``pending_model`` keeps only those not yet annotated by that model.
    """
    con = analytics(engine)
    r = _responses(con, where)
    r = r.filter(r.comment.strip().length() > 0)
    if ids is not None:
        r = r.filter(r.id.isin(list(ids)))
    if pending_model:
        a = text_facts.sentiment(con)
        done = a.filter(a.source == SOURCE, a.model == pending_model).select(done_id=a.source_id)
        r = r.anti_join(done, r.id == done.done_id)
    r = r.select("id", "comment", "nps", "csat", "submitted_at").order_by(["submitted_at", "id"])
    if limit:
        r = r.limit(limit)
    return r.to_pyarrow()


IMPACT_KINDS = ("nps", "proportion", "mean")
CHURN = "churn"


def language_counts(
    source: Engine | BaseBackend, model: str | None = None, where: Slice = EVERYONE
) -> tuple[str | None, list[dict[str, Any]]]:
    """Per language of the comments in ``where``, as annotated by ``model`` (default: the
    newest lexicon-tier model): ``language``, ``texts``, ``scored`` and ``unscored``, most
    texts first. One Ibis aggregation, so DuckDB, PostgreSQL and Spark give the same counts.
    """
    with reading(source) as con:
        a = text_facts.sentiment(con).filter(lambda t: t.source == SOURCE)
        if model is None:
            lexicon = a.filter(a.tier == "lexicon")
            found = lexicon.aggregate(m=lexicon.model.max()).to_pyarrow().to_pylist()
            model = found[0]["m"] if found else None
            if model is None:
                return None, []
        a = a.filter(a.model == model)
        r = _responses(con, where).select(rid=lambda t: t.id)
        a = a.join(r, a.source_id == r.rid)
        unscored = (a.label == "unscored").ifelse(1, 0)
        rows = (
            a.group_by("language")
            .aggregate(texts=a.count(), unscored=unscored.sum())
            .to_pyarrow()
            .to_pylist()
        )
    out = [
        {"language": row["language"], "texts": int(row["texts"]),
         "scored": int(row["texts"]) - int(row["unscored"] or 0),
         "unscored": int(row["unscored"] or 0)}
        for row in rows
    ]  # fmt: skip
    return model, sorted(out, key=lambda row: (-row["texts"], row["language"]))


@dataclass(frozen=True)
class Outcome:
    """What theme impact is measured on: a metric over survey responses (NPS, CSAT, CES, a
    custom rating; kinds nps, proportion, mean) or, with ``lifecycle``, churn."""

    metric: Metric
    lifecycle: Lifecycle | None = None


def _metric(name: str, description: str, kind: str, **kw: Any) -> Metric:
    base: dict[str, Any] = dict(
        time=None, column=None, base=None, filters={}, rows=None, success=None, numerator=None,
        denominator=None, invert=False, per=None, per_agg="sum", formula=None, unit="points",
        direction="higher", owner=None, target=None, min_sample=1, source="theme impact",
    )  # fmt: skip
    return Metric(name=name, description=description, kind=kind, fact="responses",
                  **(base | kw))  # fmt: skip


# NPS of the answers in the slice, whoever gave them (the slice's population decides).
SLICE_NPS = Outcome(_metric("nps", "NPS of the answers in the slice", "nps", column="nps",
                            filters={"nps": {"is_null": False}}))  # fmt: skip


def outcome(metrics: Mapping[str, Metric], name: str) -> Outcome:
    """The outcome called ``name``: a metric of ``metrics`` measured on survey responses, or
    ``churn`` (the answering customer churned, by the lifecycle of the metric files, at or
    after the answer). Invalid, naming the usable ones, otherwise."""
    usable = sorted(n for n, m in metrics.items() if _usable(m) is None)
    if name == CHURN:
        lifecycle = next((m.lifecycle for m in metrics.values() if m.lifecycle), None)
        if lifecycle is None:
            raise Invalid("churn impact needs the customer lifecycle (acquisition and churn "
                          "events) in a metrics file; see docs/metrics.md")  # fmt: skip
        churn = _metric(CHURN, "answers whose customer churned at or after answering",
                        "proportion", success={"churned": True}, unit="%",
                        direction="lower")  # fmt: skip
        return Outcome(churn, lifecycle)
    if name not in metrics:
        raise Invalid(f"metric {name!r} is unknown; theme impact reads one of: "
                      f"{', '.join([*usable, CHURN])}")  # fmt: skip
    why = _usable(metrics[name])
    if why:
        raise Invalid(f"{name} {why}; theme impact compares survey answers with and without a "
                      f"theme: use one of {', '.join([*usable, CHURN])}")  # fmt: skip
    return Outcome(metrics[name])


def _usable(m: Metric) -> str | None:
    """Why metric ``m`` cannot measure theme impact, or None when it can."""
    if m.fact != "responses":
        return f"is measured on {m.fact or 'other metrics'}, not on survey answers"
    if m.kind not in IMPACT_KINDS:
        return f"is a {m.kind}; impact needs an NPS, a % or a mean of answers"
    if m.per:
        return f"is a mean per {m.per}, not per answer"
    return None


def _outcome_rows(con: BaseBackend, where: Slice, out: Outcome) -> Any:
    """One row per answer of the slice that has a value of the outcome: ``id`` and what the
    outcome's metric reads (its own filters apply on top of the slice)."""
    r = _responses(con, where)
    if out.lifecycle is not None:
        r = r.filter(r.customer_id.notnull())
        life = metrics_ax.customer_lifecycle(con, out.lifecycle)
        life = life.select(_lc=life.customer_id, _churned_at=life.churned_at)
        r = r.left_join(life, r.customer_id == life._lc)
        churned = (r._churned_at >= r.submitted_at).fill_null(False)
        return r.select("id", churned=churned)
    rows = metrics_ax.fact_rows(con, out.metric, [])
    return rows.filter(rows.id.isin(r.id))


def _records(table: Any) -> list[dict[str, Any]]:
    """Rows of an aggregate, with a missing sd (one answer) as NaN, as the metrics layer
    reads it."""
    rows = [dict(r) for r in table.to_pyarrow().to_pylist()]
    for r in rows:
        if "sd" in r and r["sd"] is None:
            r["sd"] = math.nan
    return rows


def _unfavourable(m: Metric, row: Mapping[str, Any]) -> float | None:
    """How many rows of ``row`` count against the metric (detractors, not top box, churned)."""
    if m.kind == "nps":
        return float(row.get("detractors") or 0)
    if m.kind == "proportion":
        x, n = float(row.get("x") or 0), float(row.get("n") or 0)
        good_is_x = (m.direction == "higher") != m.invert
        return n - x if good_is_x else x
    return None


def theme_impact(
    source: Engine | BaseBackend,
    themes: Sequence[schemas.Theme],
    where: Slice = Slice(),
    *,
    confidence: float = 0.95,
    outcome: Outcome = SLICE_NPS,
) -> schemas.ImpactReport:
    """Per theme: volume, share of the unfavourable answers mentioning it, the metric with and
    without it, and its impact: what the metric would gain if the answers mentioning the theme
    scored like those that don't, ``share x (value_without - value_with)`` (the other way round
    for a metric where lower is better), so positive always means the theme hurts. The
    interval is the share times the metric's own two-sample interval of the gap (NPS:
    adjusted Wald, Rocks 2016; %: Agresti-Caffo; mean: Welch, on a closed scale with the
    adjusted means of ``cxm.metrics.stats``). Units are the metric's (NPS points, % points,
    scale points). ``note`` says in words why a figure is missing.
    """
    with reading(source) as con:
        return _theme_impact(con, themes, where, confidence, outcome)


def _theme_impact(con: BaseBackend, themes: Sequence[schemas.Theme], where: Slice,
                  confidence: float, out: Outcome) -> schemas.ImpactReport:  # fmt: skip
    m = out.metric
    rows = _outcome_rows(con, where, out)
    totals = _records(metrics_ax.summarise(rows, m))[0]
    means = None
    if m.kind == "nps":
        # The mean 0-10 answer, with and without each theme, beside the NPS.
        means = replace(m, kind="mean")
        totals["_mean"] = _records(metrics_ax.summarise(rows, means))[0]
    by_theme: dict[tuple[str, str], dict[str, Any]] = {}
    taxonomies = sorted({t.taxonomy for t in themes})
    if taxonomies:
        tt = text_facts.tags(con)
        tt = tt.filter(tt.source == SOURCE, tt.taxonomy.isin(taxonomies))
        tt = tt.select(_sid=tt.source_id, _tax=tt.taxonomy, _key=tt.theme_key).distinct()
        joined = rows.join(tt, rows.id == tt._sid)
        for rec in _records(metrics_ax.summarise(joined, m, ["_tax", "_key"])):
            by_theme[(rec["_tax"], rec["_key"])] = rec
        if means is not None:
            for rec in _records(metrics_ax.summarise(joined, means, ["_tax", "_key"])):
                by_theme[(rec["_tax"], rec["_key"])]["_mean"] = rec
    n = int(totals["n"] or 0)
    overall = metrics_service.interval(m, totals, confidence)
    bad_total = _unfavourable(m, totals)
    sign = 1.0 if m.direction == "higher" else -1.0
    out_themes = []
    method = None
    for theme in themes:
        row = by_theme.get((theme.taxonomy, theme.key))
        nw = int(row["n"]) if row else 0
        with_ = metrics_service.interval(m, row, confidence) if row else None
        # Without the theme: every row when none mentions it.
        rest: Mapping[str, Any] | None = (
            metrics_service.rest(m, totals, row) if row else (totals if n else None)
        )
        without = metrics_service.interval(m, rest, confidence) if rest else None
        gap = metrics_service.difference(m, rest, row, confidence) if row and rest else None
        impact = low = high = None
        note = None
        if n == 0:
            note = "nothing to compare: no answer in the slice has a value"
        elif row is None:
            note = "no answer with a value mentions it"
        elif rest is None:
            note = "every answer mentions it: there is nothing to compare with"
        elif gap is None:
            note = (f"too few answers to compare ({nw} mention it, {n - nw} do not; a mean "
                    "needs two on each side)")  # fmt: skip
        else:
            share = nw / n
            ends = sorted((sign * share * gap.low, sign * share * gap.high))
            impact, low, high = sign * share * gap.delta, ends[0], ends[1]
            method = gap.method
        bad_with = (_unfavourable(m, row) if row else 0.0) or 0.0
        avg_with = avg_without = None
        if means is not None:
            mean_with = row.get("_mean") if row else None
            mean_rest = (metrics_service.rest(means, totals["_mean"], mean_with) if mean_with
                         else (totals["_mean"] if n else None))  # fmt: skip
            avg_with = mean_with["mean"] if mean_with else None
            avg_without = mean_rest["mean"] if mean_rest else None
        elif m.kind == "mean":
            avg_with = with_.value if with_ else None
            avg_without = without.value if without else None
        share_bad = round(bad_with / bad_total, 4) if bad_total else 0.0
        is_nps = m.kind == "nps"
        out_themes.append(
            schemas.ThemeImpact(
                taxonomy=theme.taxonomy,
                theme=theme.key,
                name=theme.name,
                department_key=theme.department_key,
                volume=nw,
                share=round(nw / n, 4) if n else 0.0,
                detractor_share=share_bad,
                avg_score_with=_round3(avg_with),
                avg_score_without=_round3(avg_without),
                nps_with=_round(with_.value) if is_nps and with_ else None,
                nps_without=_round(without.value) if is_nps and without else None,
                nps_impact=_round(impact) if is_nps else None,
                nps_impact_low=_round(low) if is_nps else None,
                nps_impact_high=_round(high) if is_nps else None,
                value_with=_round(with_.value) if with_ else None,
                value_without=_round(without.value) if without else None,
                impact=_round(impact),
                impact_low=_round(low),
                impact_high=_round(high),
                note=note,
            )
        )
    out_themes.sort(key=lambda t: -(t.impact or 0))
    report_note = None
    if n == 0:
        report_note = (f"no answer with a comment in this slice has a value of {m.name} "
                       f"({m.description.rstrip('.')}): choose another survey, period, "
                       "population or metric")  # fmt: skip
    elif not themes:
        report_note = "the taxonomy has no themes: apply one (cxm text taxonomy starter)"
    return schemas.ImpactReport(
        responses=n,
        nps=_round(overall.value) if overall and m.kind == "nps" else None,
        confidence=confidence,
        themes=out_themes,
        metric=m.name,
        unit=m.unit,
        direction=m.direction,
        value=_round(overall.value) if overall else None,
        method=method,
        note=report_note,
    )


def _round3(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), 3)


def _round(value: float | None) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(value, 2)


def sentiment_by_label(engine: Engine, model: str, where: Slice = Slice()) -> dict[str, int]:
    """How many responses in the slice carry each sentiment label under ``model``."""
    con = analytics(engine)
    r = _responses(con, where)
    a = text_facts.sentiment(con)
    a = a.filter(a.source == SOURCE, a.model == model)
    joined = r.join(a, r.id == a.source_id)
    rows = joined.group_by("label").aggregate(n=joined.count()).to_pyarrow().to_pylist()
    return {row["label"]: int(row["n"]) for row in rows}

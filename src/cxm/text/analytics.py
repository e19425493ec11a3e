"""Ibis expressions over responses and text tags: texts to annotate, and theme impact on NPS.

NPS and its Wald interval come from ``cxm.metrics.stats`` (one definition for the platform);
the counts come from one Ibis aggregation, the arithmetic runs on them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from ibis.backends import BaseBackend
from sqlalchemy.engine import Engine

from cxm.customers.facts import with_trait
from cxm.errors import Invalid
from cxm.metrics.stats import Interval, nps_interval, nps_test
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


def _counts(table: Any) -> dict[str, Any]:
    promoter = (table.nps >= 9).ifelse(1, 0)
    detractor = (table.nps <= 6).ifelse(1, 0)
    return {
        "n": table.count(),
        "promoters": promoter.sum(),
        "detractors": detractor.sum(),
        "score_sum": table.nps.sum(),
    }


def _nps(n: int, promoters: int, detractors: int, confidence: float) -> Interval | None:
    """NPS on [-1, 1] with its Wald interval (the metrics layer's definition), or None."""
    if n <= 0:
        return None
    return nps_interval(promoters, n - promoters - detractors, detractors, confidence)


def theme_impact(
    source: Engine | BaseBackend,
    themes: Sequence[schemas.Theme],
    where: Slice = Slice(),
    *,
    confidence: float = 0.95,
) -> schemas.ImpactReport:
    """Per theme: volume, share of detractors mentioning it, average score with and without,
    and NPS impact: the NPS points the company would gain if the responses mentioning the theme
    scored like those that don't, with a Wald interval.
    """
    with reading(source) as con:
        return _theme_impact(con, themes, where, confidence)


def _theme_impact(con: BaseBackend, themes: Sequence[schemas.Theme], where: Slice,
                  confidence: float) -> schemas.ImpactReport:  # fmt: skip
    r = _responses(con, where)
    r = r.filter(r.nps.notnull())
    totals = r.aggregate(**_counts(r)).to_pyarrow().to_pylist()[0]
    by_theme: dict[tuple[str, str], dict[str, Any]] = {}
    taxonomies = sorted({t.taxonomy for t in themes})
    if taxonomies:
        tt = text_facts.tags(con)
        tt = tt.filter(tt.source == SOURCE, tt.taxonomy.isin(taxonomies))
        joined = r.join(tt, r.id == tt.source_id)
        grouped = joined.group_by(["taxonomy", "theme_key"]).aggregate(**_counts(joined))
        for row in grouped.to_pyarrow().to_pylist():
            by_theme[(row["taxonomy"], row["theme_key"])] = row
    n = int(totals["n"] or 0)
    promoters = int(totals["promoters"] or 0)
    detractors = int(totals["detractors"] or 0)
    score_sum = float(totals["score_sum"] or 0)
    overall = _nps(n, promoters, detractors, confidence)
    out = []
    for theme in themes:
        row = by_theme.get((theme.taxonomy, theme.key), {})
        nw = int(row.get("n") or 0)
        pw, dw = int(row.get("promoters") or 0), int(row.get("detractors") or 0)
        sw = float(row.get("score_sum") or 0)
        with_ = _nps(nw, pw, dw, confidence)
        without = _nps(n - nw, promoters - pw, detractors - dw, confidence)
        impact = low = high = None
        if with_ and without:
            # impact = share x (NPS without - NPS with): the share scales the gap's interval
            share = nw / n
            gap = nps_test(
                (promoters - pw, n - nw - (promoters - pw) - (detractors - dw), detractors - dw),
                (pw, nw - pw - dw, dw),
                confidence,
            )
            impact = share * gap.delta * 100
            low, high = share * gap.low * 100, share * gap.high * 100
        out.append(
            schemas.ThemeImpact(
                taxonomy=theme.taxonomy,
                theme=theme.key,
                name=theme.name,
                department_key=theme.department_key,
                volume=nw,
                share=round(nw / n, 4) if n else 0.0,
                detractor_share=round(dw / detractors, 4) if detractors else 0.0,
                avg_score_with=round(sw / nw, 3) if nw else None,
                avg_score_without=round((score_sum - sw) / (n - nw), 3) if n - nw else None,
                nps_with=round(with_.value * 100, 2) if with_ else None,
                nps_without=round(without.value * 100, 2) if without else None,
                nps_impact=_round(impact),
                nps_impact_low=_round(low),
                nps_impact_high=_round(high),
            )
        )
    out.sort(key=lambda t: -(t.nps_impact or 0))
    return schemas.ImpactReport(
        responses=n,
        nps=round(overall.value * 100, 2) if overall else None,
        confidence=confidence,
        themes=out,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def sentiment_by_label(engine: Engine, model: str, where: Slice = Slice()) -> dict[str, int]:
    """How many responses in the slice carry each sentiment label under ``model``."""
    con = analytics(engine)
    r = _responses(con, where)
    a = text_facts.sentiment(con)
    a = a.filter(a.source == SOURCE, a.model == model)
    joined = r.join(a, r.id == a.source_id)
    rows = joined.group_by("label").aggregate(n=joined.count()).to_pyarrow().to_pylist()
    return {row["label"]: int(row["n"]) for row in rows}

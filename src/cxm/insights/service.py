"""Insights for the CLI and the API: signals, attribution, key drivers, predictions, revenue
at risk; and the narrowing of each result to what a role reads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import cast

import pandas as pd
import pyarrow as pa
from ibis.backends import BaseBackend
from sqlalchemy.engine import Connection, Engine

from cxm.errors import Invalid
from cxm.insights import analytics, facts, predict
from cxm.insights import attribution as attr
from cxm.insights import drivers as drv
from cxm.insights import panels as pnl
from cxm.insights import revenue as rev
from cxm.insights.analytics import WINDOW_DAYS, log_end
from cxm.insights.definitions import Signal, installation_dir, load
from cxm.metrics import definitions as metric_definitions
from cxm.metrics.definitions import Lifecycle
from cxm.store.analytics import reading


def signals(data_dir: Path) -> dict[str, Signal]:
    """The shipped signals, overridden and extended by ``<data dir>/signals/*.yaml``."""
    return load(installation_dir(data_dir))


def lifecycle(data_dir: Path) -> Lifecycle | None:
    """The company-wide customer lifecycle (which events churn a customer), from the metrics
    files; None when no metrics file defines one."""
    metrics = metric_definitions.load(metric_definitions.installation_dir(data_dir))
    return next((m.lifecycle for m in metrics.values() if m.lifecycle is not None), None)


def attribution(
    source: Engine | BaseBackend,
    data_dir: Path,
    outcome: str = "nps",
    window_days: int = WINDOW_DAYS,
    survey: str | None = None,
) -> attr.Attribution:
    """Attribute ``outcome`` to the installation's signals and their departments: ``nps``,
    ``churn``, or the name of any metric measured answer by answer on survey responses (csat,
    csat_mean, ces, a custom rating); ``Invalid`` naming the usable ones for any other, or
    for unusable data."""
    metrics = metric_definitions.load(metric_definitions.installation_dir(data_dir))
    lc = next((m.lifecycle for m in metrics.values() if m.lifecycle is not None), None)
    metric = None
    if outcome not in attr.OUTCOMES:
        usable = sorted(n for n, m in metrics.items() if _answer_metric(m))
        if outcome not in metrics or not _answer_metric(metrics[outcome]):
            raise Invalid(f"outcome: {outcome!r}; choose one of nps, churn or a metric of "
                          f"survey answers: {', '.join(usable)}")  # fmt: skip
        metric = metrics[outcome]
    defined = list(signals(data_dir).values())
    with reading(source) as con:
        return attr.attribute(con, defined, outcome, lc, window_days, survey, metric)


def _lifecycle_or_fail(data_dir: Path) -> Lifecycle:
    found = lifecycle(data_dir)
    if found is None:
        raise Invalid(
            "no customer lifecycle is defined (which events acquire and churn a customer): "
            "add one to a metrics file (docs/metrics.md)"
        )
    return found


def feature_sets(
    con: BaseBackend,
    data_dir: Path,
    window_days: int = predict.WINDOW_DAYS,
    lead_hours: int = predict.LEAD_HOURS,
    as_of: dt.datetime | None = None,
    traits: Sequence[str] = predict.TRAITS,
) -> tuple[predict.Features, predict.Features | None, predict.Features, list[Signal]]:
    """The churn training, NPS training and scoring feature tables, and the signals used."""
    if not 0 <= lead_hours <= 8760:
        raise Invalid(f"lead: {lead_hours} hours; give a number of hours from 0 to 8760")
    life = _lifecycle_or_fail(data_dir)
    touchpoint_owner, _ = attr.owners(con)
    defined = list(signals(data_dir).values())
    # Shipped signals at touchpoints this company lacks are left out; with none left, the
    # models still have the traits and the activity.
    usable = [s for s in defined if all(t in touchpoint_owner for t in s.touchpoints)]
    if any(not s.shipped for s in defined if s not in usable):
        attr._usable(defined, touchpoint_owner)  # raises, naming the unknown touchpoint
    end = as_of or log_end(con)
    churn_pts = analytics.churn_points(con, life, end, lead_hours)
    common = {
        "traits": tuple(traits),
        "window_days": window_days,
        "lead_hours": lead_hours,
        "exclude": life.churn,
    }
    churn = predict.features(con, churn_pts, usable, **common)  # type: ignore[arg-type]
    nps = predict.features(con, analytics.nps_points(con), usable, **common)  # type: ignore[arg-type]
    current = predict.features(con, analytics.scoring_points(con, life, end), usable, **common)  # type: ignore[arg-type]
    return churn, (nps if len(nps.frame) else None), current, usable


def train(
    source: Engine | BaseBackend,
    data_dir: Path,
    seed: int = predict.SEED,
    window_days: int = predict.WINDOW_DAYS,
    lead_hours: int = predict.LEAD_HOURS,
    traits: Sequence[str] = predict.TRAITS,
) -> predict.Evaluation:
    """Train on 70% of the customers and report the holdout figures (nothing is stored)."""
    with reading(source) as con:
        churn, nps, _, _ = feature_sets(con, data_dir, window_days, lead_hours, None, traits)
    return predict.evaluate(churn, nps, seed)


def score(
    source: Engine | BaseBackend,
    data_dir: Path,
    seed: int = predict.SEED,
    window_days: int = predict.WINDOW_DAYS,
    lead_hours: int = predict.LEAD_HOURS,
    as_of: dt.datetime | None = None,
    traits: Sequence[str] = predict.TRAITS,
) -> predict.Scores:
    """Fit on every customer and score each one who has not churned at ``as_of`` (default:
    the end of the log). Nothing is stored; ``store_scores`` writes the result."""
    with reading(source) as con:
        end = as_of or log_end(con)
        churn, nps, current, usable = feature_sets(
            con, data_dir, window_days, lead_hours, end, traits
        )
    return predict.score(churn, nps, current, usable, end, seed)


def prediction_table(scores: predict.Scores) -> pa.Table:
    """The rows of ``customer_predictions`` for ``scores`` as one Arrow table (times naive UTC,
    reasons as JSON text), written in one bulk insert."""
    f = scores.frame
    n = len(f)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)

    def text(column: str) -> pa.Array:
        values = f[column].array
        if isinstance(values, pd.arrays.ArrowExtensionArray):
            return pa.array(values).cast(pa.string())
        return pa.array(values.to_numpy(object), pa.string())

    return pa.table({
        "customer_id": pa.array(f["customer_id"].astype(str).to_numpy(object), pa.string()),
        "churn_risk": pa.array(f["churn_risk"].to_numpy(float)),
        "predicted_nps": pa.array(f["predicted_nps"].to_numpy(float), from_pandas=True),
        "reasons": text("reasons"),
        "nps_reasons": text("nps_reasons"),
        "model_version": pa.repeat(pa.scalar(scores.model_version), n),
        "feature_set": pa.repeat(pa.scalar(scores.feature_set), n),
        "seed": pa.repeat(pa.scalar(scores.seed, pa.int64()), n),
        "as_of": pa.repeat(pa.scalar(scores.as_of.replace(tzinfo=None), pa.timestamp("us")), n),
        "scored_at": pa.repeat(pa.scalar(now, pa.timestamp("us")), n),
    })  # fmt: skip


def store_scores(conn: Connection, scores: predict.Scores) -> int:
    """Replace the stored predictions with ``scores`` in the caller's transaction."""
    return facts.replace_prediction_table(conn, prediction_table(scores))


def drivers(
    source: Engine | BaseBackend,
    data_dir: Path,
    outcome: str = "nps",
    window_days: int = WINDOW_DAYS,
    bootstrap: int = drv.BOOTSTRAP,
    seed: int = drv.SEED,
    survey: str | None = None,
) -> drv.Drivers:
    """Key drivers of ``outcome`` (``nps``, ``csat`` or ``churn``) over the installation's
    signals, the themes tagged on comments and the survey attributes. ``survey`` (a survey
    key; nps and csat): that survey's answers, with its rated questions as drivers, labelled
    with their text; ``NotFound`` naming the known surveys for an unknown one."""
    if outcome not in drv.OUTCOMES:
        raise Invalid(f"outcome: {outcome!r}; choose one of {', '.join(drv.OUTCOMES)}")
    if not 0 <= bootstrap <= 2000:
        raise Invalid(f"bootstrap: {bootstrap}; give a number of resamples from 0 to 2000")
    questions = survey_questions(source, survey) if survey is not None else None
    defined = list(signals(data_dir).values())
    with reading(source) as con:
        return drv.drivers(con, defined, cast(drv.Outcome, outcome), lifecycle(data_dir),
                           window_days, bootstrap, seed, survey, questions)  # fmt: skip


def survey_questions(
    source: Engine | BaseBackend, survey: str
) -> dict[str, tuple[str, tuple[float, float] | None]]:
    """The questions of ``survey``'s current definition: id -> (text in its default language,
    its answer scale or None); empty when ``source`` is a bare analytics backend (a lake)."""
    from cxm.surveys import service as surveys

    if not isinstance(source, Engine):
        return {}
    with source.connect() as conn:
        defn = surveys.get_definition(conn, survey)
    out: dict[str, tuple[str, tuple[float, float] | None]] = {}
    for q in defn.questions:
        text = q.text or {}
        label = text.get(defn.default_language) or next(iter(text.values()), q.id)
        bounds = q.bounds()
        out[q.id] = (label, (float(bounds[0]), float(bounds[1])) if bounds else None)
    return out


def scope_attribution(
    result: attr.Attribution, departments: frozenset[str] | None
) -> attr.Attribution:
    """``result`` narrowed to the signals and departments in ``departments`` (None: all)."""
    if departments is None:
        return result
    mine = [
        e for e in result.signals if e.department and set(e.department.split(",")) & departments
    ]
    return replace(
        result, signals=mine, departments=[d for d in result.departments if d.key in departments]
    )


def scope_drivers(result: drv.Drivers, departments: frozenset[str] | None) -> drv.Drivers:
    """``result`` narrowed to the drivers owned by ``departments`` (None: all). Themes and
    survey attributes belong to no department and are left out of a narrowed result."""
    if departments is None:
        return result
    mine = [
        d for d in result.drivers if d.department and set(d.department.split(",")) & departments
    ]
    return replace(
        result, drivers=mine, departments=[d for d in result.departments if d.key in departments]
    )


def revenue(
    source: Engine | BaseBackend,
    data_dir: Path,
    reduction: float = 0.5,
    window_days: int = WINDOW_DAYS,
) -> rev.Revenue:
    """Revenue at risk by NPS category and by signal, and the value of fixing each signal if
    its reach fell by ``reduction`` (0-1)."""
    defined = list(signals(data_dir).values())
    with reading(source) as con:
        return rev.revenue(con, defined, lifecycle(data_dir), reduction, window_days)


def scope_revenue(result: rev.Revenue, departments: frozenset[str] | None) -> rev.Revenue:
    """``result`` with only the signals owned by ``departments`` (None: all); the NPS-category
    table is company-wide and aggregate, so it stays."""
    if departments is None:
        return result
    mine = [s for s in result.signals
            if s.department and set(s.department.split(",")) & departments]  # fmt: skip
    return replace(result, signals=mine)


def panels(
    con: BaseBackend,
    data_dir: Path,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> pnl.Panels:
    """The dashboards' insights: every department's signals and costs (one read), over the
    period ``[since, until)`` (naive UTC; None: the whole log)."""
    return pnl.panels(con, list(signals(data_dir).values()), lifecycle(data_dir),
                      since=since, until=until)  # fmt: skip


def _answer_metric(m: metric_definitions.Metric) -> bool:
    """Whether ``m`` is a mean over survey answers (what a per-answer model can explain)."""
    from cxm.metrics.analytics import per_row

    return m.fact == "responses" and per_row(m)

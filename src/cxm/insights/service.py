"""Insights for the CLI and the API: the installation's signals, an outcome's attribution."""

from __future__ import annotations

from pathlib import Path

from ibis.backends import BaseBackend
from sqlalchemy.engine import Engine

from cxm.errors import Invalid
from cxm.insights import attribution as attr
from cxm.insights.analytics import WINDOW_DAYS
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


def _answer_metric(m: metric_definitions.Metric) -> bool:
    """Whether ``m`` is a mean over survey answers (what a per-answer model can explain)."""
    from cxm.metrics.analytics import per_row

    return m.fact == "responses" and per_row(m)

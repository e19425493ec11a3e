"""Ibis expressions for insights: signal events, the signals met before each answer and by each
customer, and the feature tables the attribution models fit on.

Everything here is one expression per table, run on the engine (DuckDB, PostgreSQL or Spark);
the log is read through ``cxm.interactions.facts.log``, answers through
``cxm.surveys.facts.responses`` and traits through ``cxm.customers.facts.traits``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import ibis
import ibis.expr.types as ir
from ibis.backends import BaseBackend

from cxm.customers.facts import traits
from cxm.errors import Invalid
from cxm.insights.definitions import Signal
from cxm.interactions.facts import log
from cxm.metrics import analytics as metrics_ax
from cxm.metrics.definitions import Lifecycle, Metric
from cxm.surveys.facts import responses

WINDOW_DAYS = 180  # how long a signal is remembered before an answer (the demo plants 180)
CONTROLS = ("segment", "tenure_months")  # the traits every model controls for


def check_window(days: int) -> int:
    """``days`` if it is a usable window (1 to 3,650 days); otherwise ``Invalid``."""
    if not 1 <= days <= 3650:
        raise Invalid(f"window: {days} days; give a number of days from 1 to 3650")
    return days


def signal_events(con: BaseBackend, signals: Sequence[Signal]) -> ir.Table:
    """Every event that meets a signal: ``(customer_id, event_time, signal)``.

    One row per event and signal it meets (an event may meet several); events not yet resolved
    to a customer are left out.
    """
    if not signals:
        raise Invalid("no signals defined: add one to the signals files (docs/insights.md)")
    t = log(con)
    parts = [
        t.filter(s.predicate(t), t.customer_id.notnull()).select(
            "customer_id", "event_time", signal=ibis.literal(s.key)
        )
        for s in signals
    ]
    return parts[0].union(*parts[1:], distinct=False) if len(parts) > 1 else parts[0]


def _met(j: ir.Table, signals: Sequence[Signal]) -> dict[str, ir.Value]:
    # 1 when at least one joined event met the signal; 0 when none did (or none joined).
    return {s.key: ibis.ifelse(j.signal == s.key, 1, 0).max() for s in signals}


def answer_signals(
    con: BaseBackend,
    signals: Sequence[Signal],
    window_days: int = WINDOW_DAYS,
    survey: str | None = None,
) -> ir.Table:
    """For each customer answer with an NPS score: which signals its customer met in the
    ``window_days`` before answering.

    Shape: ``(response_id, customer_id, submitted_at, nps, <one 0/1 column per signal key>)``,
    one row per answer (``survey`` narrows to one survey's answers; None: every NPS answer).
    A signal counts when its event time is in ``[submitted_at - window, submitted_at)``.
    """
    check_window(window_days)
    r = responses(con)
    r = r.filter(r.nps.notnull(), r.customer_id.notnull(), r.submitted_at.notnull())
    if survey is not None:
        r = r.filter(r.survey_key == survey)
    r = r.select(
        response_id=r.id, customer_id=r.customer_id, submitted_at=r.submitted_at, nps=r.nps
    )
    e = signal_events(con, signals).rename(_customer="customer_id", _time="event_time").view()
    j = r.left_join(
        e,
        [
            r.customer_id == e._customer,
            e._time < r.submitted_at,
            e._time >= r.submitted_at - ibis.interval(days=window_days),
        ],
    )
    keys = ["response_id", "customer_id", "submitted_at", "nps"]
    return j.group_by(keys).aggregate(**_met(j, signals))


def metric_signals(
    con: BaseBackend,
    signals: Sequence[Signal],
    metric: Metric,
    window_days: int = WINDOW_DAYS,
    survey: str | None = None,
) -> ir.Table:
    """For each customer answer counted by ``metric`` (a metric of survey answers: its own
    filters apply), its value and which signals its customer met in the ``window_days``
    before answering.

    Shape: ``(response_id, customer_id, submitted_at, value, <one 0/1 column per signal>)``;
    ``value`` is ``metrics.analytics.row_value`` (the 0-10 or scale answer, or 100/0 for a
    %). Invalid for a metric that is not a mean over survey answers.
    """
    check_window(window_days)
    if metric.fact != "responses" or not metrics_ax.per_row(metric):
        raise Invalid(f"{metric.name} is not measured answer by answer on survey responses "
                      "(a count, ratio, derived metric or another fact)")  # fmt: skip
    r = metrics_ax.fact_rows(con, metric, [])
    r = r.filter(r.customer_id.notnull(), r.submitted_at.notnull())
    if survey is not None:
        r = r.filter(r.survey_key == survey)
    value = metrics_ax.row_value(r, metric)
    assert value is not None
    r = r.select(response_id=r.id, customer_id=r.customer_id, submitted_at=r.submitted_at,
                 value=value)  # fmt: skip
    e = signal_events(con, signals).rename(_customer="customer_id", _time="event_time").view()
    j = r.left_join(
        e,
        [
            r.customer_id == e._customer,
            e._time < r.submitted_at,
            e._time >= r.submitted_at - ibis.interval(days=window_days),
        ],
    )
    keys = ["response_id", "customer_id", "submitted_at", "value"]
    return j.group_by(keys).aggregate(**_met(j, signals))


def customer_traits(con: BaseBackend, names: Sequence[str] = CONTROLS) -> ir.Table:
    """Traits in wide form: ``(customer_id, <one text column per trait name>)``, one row per
    customer holding any of them (absent traits are null)."""
    t = traits(con)
    t = t.filter(t.name.isin(list(names)))
    return t.group_by("customer_id").aggregate(**{n: t.value.max(where=t.name == n) for n in names})


def customer_outcomes(con: BaseBackend, lifecycle: Lifecycle, as_of: dt.datetime) -> ir.Table:
    """Each customer's relationship as the metrics lifecycle defines it.

    Shape: ``(customer_id, churned, reference_time)``, one row per customer with at least one
    acquisition event. ``churned`` is 1 when their last churn event has no acquisition event
    after it; ``reference_time`` is then that churn event, else ``as_of`` (the end of the log).
    """
    t = log(con)
    t = t.filter(t.customer_id.notnull())
    acq = t.filter(t.name.isin(list(lifecycle.acquisition)))
    acq = acq.group_by("customer_id").aggregate(last_acquired=acq.event_time.max())
    ch = t.filter(t.name.isin(list(lifecycle.churn)))
    ch = ch.group_by(_churner="customer_id").aggregate(churned_at=ch.event_time.max())
    j = acq.left_join(ch, acq.customer_id == ch._churner)
    churned = j.churned_at.notnull() & (j.churned_at >= j.last_acquired)
    return j.select(
        customer_id=j.customer_id,
        churned=ibis.ifelse(churned, 1, 0),
        reference_time=ibis.ifelse(churned, j.churned_at, ibis.literal(as_of, "timestamp")),
    )


def customer_signals(
    con: BaseBackend,
    signals: Sequence[Signal],
    lifecycle: Lifecycle,
    as_of: dt.datetime,
    window_days: int = WINDOW_DAYS,
) -> ir.Table:
    """For each customer: whether they churned and which signals they met in the
    ``window_days`` up to their reference time (their churn, else ``as_of``).

    Shape: ``(customer_id, churned, <one 0/1 column per signal key>)``, one row per customer
    of ``customer_outcomes``. Nothing after a churner's cancellation counts.
    """
    check_window(window_days)
    c = customer_outcomes(con, lifecycle, as_of).view()
    e = signal_events(con, signals).rename(_customer="customer_id", _time="event_time").view()
    j = c.left_join(
        e,
        [
            c.customer_id == e._customer,
            e._time <= c.reference_time,
            e._time >= c.reference_time - ibis.interval(days=window_days),
        ],
    )
    return j.group_by(["customer_id", "churned"]).aggregate(**_met(j, signals))


def with_controls(t: ir.Table, con: BaseBackend, names: Sequence[str] = CONTROLS) -> ir.Table:
    """``t`` (keyed by ``customer_id``) with the control traits as text columns (null when the
    customer has none)."""
    w = customer_traits(con, names).rename(_customer="customer_id")
    j = t.left_join(w, t.customer_id == w._customer)
    return j.drop("_customer")


def log_end(con: BaseBackend) -> dt.datetime:
    """The time of the latest event in the log (the default ``as_of``); ``Invalid`` when the
    log is empty."""
    t = log(con)
    end = con.execute(t.event_time.max())
    if end is None or end != end:  # None or NaT
        raise Invalid("the interaction log is empty: import interactions first")
    return dt.datetime.fromisoformat(str(end)).replace(tzinfo=None)

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
from cxm.surveys.facts import answers, responses
from cxm.text.facts import tags

WINDOW_DAYS = 180  # how long a signal is remembered before an answer (the demo plants 180)
CONTROLS = ("segment", "tenure_months")  # the traits every model controls for
SCORES = ("nps", "csat", "ces")  # the score columns of a response
THEME_SOURCE = "survey_response"  # themes tagged on survey comments


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
    score: str = "nps",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> ir.Table:
    """For each customer answer with a ``score`` (``nps``, ``csat`` or ``ces``): which signals
    its customer met in the ``window_days`` before answering.

    Shape: ``(response_id, customer_id, submitted_at, <score>, <one 0/1 column per signal
    key>)``, one row per answer (``survey`` narrows to one survey's answers; None: every answer
    with that score). A signal counts when its event time is in
    ``[submitted_at - window, submitted_at)``. ``since``/``until`` (naive UTC) keep the answers
    submitted in ``[since, until)``.
    """
    check_window(window_days)
    if score not in SCORES:
        raise Invalid(f"score: {score!r}; choose one of {', '.join(SCORES)}")
    r = responses(con)
    r = r.filter(r[score].notnull(), r.customer_id.notnull(), r.submitted_at.notnull())
    if survey is not None:
        r = r.filter(r.survey_key == survey)
    if since is not None:
        r = r.filter(r.submitted_at >= ibis.literal(since, "timestamp"))
    if until is not None:
        r = r.filter(r.submitted_at < ibis.literal(until, "timestamp"))
    r = r.select(
        response_id=r.id,
        customer_id=r.customer_id,
        submitted_at=r.submitted_at,
        **{score: r[score]},
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
    keys = ["response_id", "customer_id", "submitted_at", score]
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
    r = metrics_ax.fact_rows(con, metric, [], customer=True)
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


def customer_outcomes(
    con: BaseBackend, lifecycle: Lifecycle, as_of: dt.datetime, since: dt.datetime | None = None
) -> ir.Table:
    """Each customer's relationship as the metrics lifecycle defines it, as of ``as_of``.

    Shape: ``(customer_id, churned, reference_time)``, one row per customer with at least one
    acquisition event up to ``as_of``. ``churned`` is 1 when their last churn event up to
    ``as_of`` has no acquisition event after it; ``reference_time`` is then that churn event,
    else ``as_of`` (by default the end of the log; events after it never count). With
    ``since``, customers who had already churned before it are left out: the customers of the
    period ``[since, as_of]``, and ``churned`` says who churned in it.
    """
    t = log(con)
    t = t.filter(t.customer_id.notnull(), t.event_time <= ibis.literal(as_of, "timestamp"))
    acq = t.filter(t.name.isin(list(lifecycle.acquisition)))
    acq = acq.group_by("customer_id").aggregate(last_acquired=acq.event_time.max())
    ch = t.filter(t.name.isin(list(lifecycle.churn)))
    ch = ch.group_by(_churner="customer_id").aggregate(churned_at=ch.event_time.max())
    j = acq.left_join(ch, acq.customer_id == ch._churner)
    churned = j.churned_at.notnull() & (j.churned_at >= j.last_acquired)
    out = j.select(
        customer_id=j.customer_id,
        churned=ibis.ifelse(churned, 1, 0),
        reference_time=ibis.ifelse(churned, j.churned_at, ibis.literal(as_of, "timestamp")),
    )
    if since is not None:
        out = out.filter(out.reference_time >= ibis.literal(since, "timestamp"))
    return out


def customer_signals(
    con: BaseBackend,
    signals: Sequence[Signal],
    lifecycle: Lifecycle,
    as_of: dt.datetime,
    window_days: int = WINDOW_DAYS,
    since: dt.datetime | None = None,
) -> ir.Table:
    """For each customer: whether they churned and which signals they met in the
    ``window_days`` up to their reference time (their churn, else ``as_of``).

    Shape: ``(customer_id, churned, <one 0/1 column per signal key>)``, one row per customer
    of ``customer_outcomes`` (with ``since``: the customers of the period ``[since, as_of]``).
    Nothing after a churner's cancellation counts.
    """
    check_window(window_days)
    c = customer_outcomes(con, lifecycle, as_of, since).view()
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


def features_at(
    con: BaseBackend,
    points: ir.Table,
    signals: Sequence[Signal],
    window_days: int,
    exclude: Sequence[str] = (),
) -> ir.Table:
    """What each customer's log said in the ``window_days`` before a point in time.

    ``points``: ``(key, customer_id, cutoff)``, one row per key (a customer, or an answer).
    Shape: ``(key, <one 0/1 column per signal key>, events_per_30d)``, one row per point: a
    signal is 1 when an event met it in ``[cutoff - window, cutoff)``; ``events_per_30d`` is
    the number of log events in that span (events named in ``exclude`` left out, e.g. the
    lifecycle's churn events) per 30 days of the span the customer was seen in (from their
    first event in it). Nothing at or after ``cutoff`` counts.
    """
    check_window(window_days)
    span = ibis.interval(days=window_days)
    if signals:
        p = points.view()
        e = signal_events(con, signals).rename(_customer="customer_id", _time="event_time")
        e = e.view()
        j = p.left_join(
            e, [p.customer_id == e._customer, e._time < p.cutoff, e._time >= p.cutoff - span]
        )
        met = j.group_by("key").aggregate(**_met(j, signals))
    else:  # a company without signals still has traits and activity
        met = points.select("key")
    t = log(con)
    t = t.filter(t.customer_id.notnull())
    if exclude:
        t = t.filter(~t.name.isin(list(exclude)) | t.name.isnull())
    t = t.select(_customer=t.customer_id, _time=t.event_time)
    q = points.view()
    a = q.left_join(
        t, [q.customer_id == t._customer, t._time < q.cutoff, t._time >= q.cutoff - span]
    )
    seen_from = a._time.min()
    days = (a.cutoff.max().epoch_seconds() - seen_from.epoch_seconds()) / 86400.0
    act = a.group_by(_key="key").aggregate(_events=a._time.count(), _days=ibis.greatest(days, 1.0))
    act = act.select(
        "_key", events_per_30d=ibis.ifelse(act._events > 0, act._events * 30.0 / act._days, 0.0)
    )
    out = met.left_join(act, met.key == act._key)
    return out.drop("_key")


def churn_points(
    con: BaseBackend, lifecycle: Lifecycle, as_of: dt.datetime, lead_hours: int
) -> ir.Table:
    """Training points for churn: ``(key, customer_id, cutoff, churned)``, one per customer of
    ``customer_outcomes``; ``cutoff`` is ``lead_hours`` before their reference time (their
    churn, else ``as_of``), so the cancellation itself and what led straight into it (the
    visit to the cancel page, the call to cancel) never count."""
    c = customer_outcomes(con, lifecycle, as_of)
    return c.select(
        key=c.customer_id,
        customer_id=c.customer_id,
        cutoff=c.reference_time - ibis.interval(hours=lead_hours),
        churned=c.churned,
    )


def nps_points(con: BaseBackend) -> ir.Table:
    """Training points for predicted NPS: ``(key, customer_id, cutoff, nps)``, one per customer
    answer with an NPS score, cut off at the moment the answer was submitted."""
    r = responses(con)
    r = r.filter(r.nps.notnull(), r.customer_id.notnull(), r.submitted_at.notnull())
    return r.select(key=r.id, customer_id=r.customer_id, cutoff=r.submitted_at, nps=r.nps)


def scoring_points(con: BaseBackend, lifecycle: Lifecycle, as_of: dt.datetime) -> ir.Table:
    """Points to score: ``(key, customer_id, cutoff)`` for every customer who has not churned,
    cut off at ``as_of`` (the prediction date)."""
    c = customer_outcomes(con, lifecycle, as_of)
    c = c.filter(c.churned == 0)
    return c.select(
        key=c.customer_id, customer_id=c.customer_id, cutoff=ibis.literal(as_of, "timestamp")
    )


def theme_keys(con: BaseBackend) -> list[str]:
    """The themes tagged on survey comments, sorted (a small distinct query)."""
    t = tags(con)
    t = t.filter(t.source == THEME_SOURCE).select("theme_key").distinct()
    return sorted(str(k) for k in con.execute(t)["theme_key"])


def answer_themes(con: BaseBackend, keys: Sequence[str]) -> ir.Table:
    """Which themes each answer's comment was tagged with: ``(response_id, theme_<key> ...)``
    (0/1), one row per tagged answer (answers without a tag have no row)."""
    t = tags(con)
    t = t.filter(t.source == THEME_SOURCE, t.theme_key.isin(list(keys)))
    return t.group_by(response_id=t.source_id).aggregate(
        **{f"theme_{k}": ibis.ifelse(t.theme_key == k, 1, 0).max() for k in keys}
    )


def attribute_questions(
    con: BaseBackend, exclude_types: Sequence[str], survey: str | None = None
) -> list[str]:
    """Survey questions answered with a number whose type is not in ``exclude_types`` (the
    outcome's own question): the survey attributes a driver analysis can use (``survey``:
    only that survey's questions)."""
    a = answers(con)
    a = a.filter(a.value_number.notnull(), ~a.question_type.isin(list(exclude_types)))
    if survey is not None:
        r = responses(con)
        r = r.filter(r.survey_key == survey).select(_rid=r.id)
        a = a.join(r, a.response_id == r._rid).select(a.question_id)
    return sorted(str(q) for q in con.execute(a.select("question_id").distinct())["question_id"])


def answer_attributes(con: BaseBackend, questions: Sequence[str]) -> ir.Table:
    """Each answer's numeric answers to ``questions``: ``(response_id, attr_<question> ...)``
    (null where not answered), one row per answer that answered any of them."""
    a = answers(con)
    a = a.filter(a.question_id.isin(list(questions)), a.value_number.notnull())
    return a.group_by("response_id").aggregate(
        **{f"attr_{q}": a.value_number.max(where=a.question_id == q) for q in questions}
    )


def customer_themes(
    con: BaseBackend, points: ir.Table, keys: Sequence[str], window_days: int
) -> ir.Table:
    """Which themes each customer's comments were tagged with in the ``window_days`` before a
    point: ``points`` is ``(key, customer_id, cutoff)``; shape ``(key, theme_<key> ...)``."""
    r = responses(con)
    r = r.filter(r.customer_id.notnull(), r.submitted_at.notnull())
    th = answer_themes(con, keys)
    rt = r.join(th, r.id == th.response_id).select(
        _customer=r.customer_id,
        _time=r.submitted_at,
        **{f"theme_{k}": th[f"theme_{k}"] for k in keys},
    )
    p = points.view()
    span = ibis.interval(days=window_days)
    j = p.left_join(
        rt, [p.customer_id == rt._customer, rt._time < p.cutoff, rt._time >= p.cutoff - span]
    )
    return j.group_by("key").aggregate(
        **{f"theme_{k}": j[f"theme_{k}"].max().fill_null(0) for k in keys}
    )

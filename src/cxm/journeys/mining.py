"""Process mining over the interaction log: a journey's cases, its directly-follows graph,
variants, throughput, outcomes, rework and hand-offs between departments, as Ibis expressions.

Every expression here is built from ``events(con, journey)``: the log rows that are activities
of the journey, one row per event with ``case_id, customer_id, activity, event_time, event_id,
touchpoint_key, step`` (``step`` counts from 1 inside the case in (event_time, event_id)
order). The methods are the standard ones of process mining (van der Aalst, *Process Mining:
Data Science in Action*, 2nd ed., 2016): a case is one trace, the directly-follows relation
pairs each event with the next event of the same case, a variant is a case's activity sequence.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import ibis
import ibis.expr.datatypes as dtypes
import ibis.expr.types as ir
from ibis.backends import BaseBackend

from cxm.customers.facts import traits
from cxm.errors import Invalid
from cxm.interactions.facts import log
from cxm.journeys.definitions import ANY, CUSTOMER, Activity, Journey
from cxm.metrics import analytics as metrics_ax
from cxm.metrics.definitions import FACTS, Metric
from cxm.metrics.slices import property_text
from cxm.org.facts import touchpoints_expr
from cxm.surveys import facts as survey_facts

SEP = " → "  # between the activities of a variant or a sub-path
CATEGORIES = ("promoter", "passive", "detractor")


def _json(t: ir.Table, name: str) -> ir.StringValue:
    """The property's value as text (``NW-1``, ``3``, ``true``; a string's quotes dropped);
    NULL when absent or null. A JSON column (DuckDB, PostgreSQL) and the lake's JSON text
    (Spark) give the same text (``metrics.slices.property_text``)."""
    return property_text(t, name)


def _text(value: Any) -> str:
    """A ``where`` value as ``_json`` gives it: a string as is, else its JSON text."""
    return value if isinstance(value, str) else json.dumps(value)


def _prop(t: ir.Table, column: str, value: Any) -> ir.BooleanValue:
    return (t[column] == _text(value)).fill_null(False)


def _matches(t: ir.Table, a: Activity, props: dict[str, str]) -> ir.BooleanValue:
    """Whether a row of ``t`` matches rule ``a``; ``props`` names the column holding each
    property's JSON text (read once per row, not once per rule)."""
    cond = ibis.literal(True) if a.event == ANY else t.name == a.event
    if a.touchpoint is not None:
        cond &= (t.touchpoint_key == a.touchpoint).fill_null(False)
    for name, value in a.where:
        cond &= _prop(t, props[name], value)
    for name in a.has:
        cond &= t[props[name]].notnull()
    return cond


def _case_key(t: ir.Table, journey: Journey, props: dict[str, str]) -> ir.StringValue:
    if journey.case == CUSTOMER:
        return t.customer_id
    # Identifiers written as strings ("NW-1") or numbers (17) both name a case.
    return t[props[journey.case]]


def _properties(journey: Journey) -> list[str]:
    """The event properties the journey reads: its case key and its rules' conditions."""
    names = {journey.case} if journey.case != CUSTOMER else set()
    for a in journey.activities:
        names |= {n for n, _ in a.where} | set(a.has)
    return sorted(names)


def events(con: BaseBackend, journey: Journey, start: dt.datetime | None = None,
           end: dt.datetime | None = None, customer: str | None = None) -> ir.Table:  # fmt: skip
    """The journey's events: ``case_id, customer_id`` (the customer of the case's first
    event), ``activity, event_time, event_id, touchpoint_key, started_at, step``, and
    ``next_activity, next_time`` (of the case's next event; NULL at its last).

    An event enters when it matches an activity rule (the first matching rule gives its
    label) and carries the case key. A case starts at its first ``start`` activity (in
    [start, end) when given; naive UTC) and holds the events from then until ``max_duration``
    later; events before the start or after that are not part of it. A rule for every event
    (``*``) labels each event with its name; ``start: ["*"]`` starts a case at its first
    event. A per-customer journey with ``require_trait`` holds only the customers with that
    trait. With ``customer``, only that customer's own events are read (their cases, for the
    customer 360).

    Set-based throughout: each property's JSON is read once per row, and a case's start is
    a minimum per case joined back to its events (no second pass over the log).
    """
    t = log(con)
    if customer is not None:
        t = t.filter(t.customer_id == customer)
    if not journey.any_event:
        t = t.filter(t.name.isin(sorted({a.event for a in journey.activities})))
    props = {name: f"_p{i}" for i, name in enumerate(_properties(journey))}
    t = t.select("customer_id", "name", "event_time", "event_id", "touchpoint_key",
                 **{col: _json(t, name) for name, col in props.items()})  # fmt: skip
    label = ibis.cases(
        *[(_matches(t, a, props), t.name if a.event == ANY else ibis.literal(a.label))
          for a in journey.activities],
        else_=ibis.null("string"),
    )  # fmt: skip
    ev = t.select(
        case_id=_case_key(t, journey, props),
        customer_id=t.customer_id,
        activity=label,
        event_time=t.event_time,
        event_id=t.event_id,
        touchpoint_key=t.touchpoint_key,
    )
    ev = ev.filter(ev.activity.notnull(), ev.case_id.notnull())
    if journey.case == CUSTOMER and journey.require_trait is not None:
        tr = traits(con)
        ev = ev.filter(ev.case_id.isin(tr.filter(tr.name == journey.require_trait).customer_id))
    starting = None if journey.any_start else ev.activity.isin(list(journey.start))
    # A case's start: an aggregate joined back (cheaper than a window over the case on
    # DuckDB: a hash aggregate, where the window partitions and sorts every event).
    starts = ev.group_by(_sid=ev.case_id).aggregate(started_at=ev.event_time.min(where=starting))
    ev = ev.join(starts, ev.case_id == starts._sid).drop("_sid")
    limit = ev.started_at + ibis.interval(seconds=round(journey.max_hours * 3600))
    # A case key without a start activity has no start (NULL): none of its events passes.
    kept = [ev.event_time >= ev.started_at, ev.event_time <= limit]
    if start is not None:
        kept.append(ev.started_at >= start)
    if end is not None:
        kept.append(ev.started_at < end)
    ev = ev.filter(*kept)
    w = ibis.window(group_by=ev.case_id, order_by=[ev.event_time, ev.event_id])
    # A case belongs to the customer of its first event (a FIRST_VALUE window: every engine
    # has it, unlike an ordered FIRST aggregate).
    # The next event's activity and time ride on the same ordered window (one sort serves
    # the steps, the case's customer and the directly-follows pairs).
    return ev.mutate(
        step=ibis.row_number().over(w) + 1,
        customer_id=ev.customer_id.first().over(w),
        next_activity=ev.activity.lead().over(w),
        # Nullable: the last event has no next one (ibis types a lead as its column).
        next_time=ev.event_time.lead().over(w).cast(dtypes.Timestamp(nullable=True)),
    )


def _in_order(con: BaseBackend, value: ir.StringColumn,
              order: list[ir.Column]) -> ir.Value:  # fmt: skip
    """An aggregate of ``value`` in ``order``, joined by " → " once ``_joined`` has read it.

    Ibis's PySpark compiler has no ordered aggregate: there the values are collected with
    their order keys and sorted afterwards (``_joined``); elsewhere an ordered GROUP_CONCAT.
    """
    if con.name != "pyspark":
        return value.group_concat(SEP, order_by=order)
    return ibis.struct({**{f"o{i}": k for i, k in enumerate(order)}, "v": value}).collect()


def _joined(con: BaseBackend, t: ir.Table, column: str) -> ir.Table:
    """``t`` with ``column`` (an ``_in_order`` aggregate) as the joined text."""
    if con.name != "pyspark":
        return t
    return t.mutate(**{column: t[column].sort().map(lambda x: x.v).join(SEP)})


def _hours(later: ir.TimestampValue, earlier: ir.TimestampValue) -> ir.FloatingValue:
    return (later.epoch_seconds() - earlier.epoch_seconds()) / 3600.0


def cases(con: BaseBackend, journey: Journey, ev: ir.Table | None = None) -> ir.Table:
    """One row per case: ``case_id, customer_id, started_at, ended_at, events,
    throughput_hours, variant, outcome, failed, churned, promoters, passives, detractors``.

    ``customer_id`` is the customer of the case's first event. ``outcome`` is ``failure``
    when a failure activity occurs in the case, else ``success`` when a success activity
    does, else ``open``. ``throughput_hours`` is the time from the first to the last event.
    ``variant`` is the activity sequence joined by " → ". ``churned``: the customer has a
    churn event (the journey's ``churn``, default ``subscription_cancelled``) at or after the
    case started. The NPS counts are the customer's NPS answers (customers' answers only)
    submitted at or after the case started.
    """
    ev = events(con, journey) if ev is None else ev
    # An outcome the journey does not have is never reached (no placeholder activity: a NUL
    # character is not a valid PostgreSQL string).
    flags = {
        flag: ev.activity.isin(list(labels)).any()
        for flag, labels in (("_failed", journey.failure), ("_succeeded", journey.success))
        if labels
    }
    per = ev.group_by("case_id").aggregate(
        customer_id=ev.customer_id.max(),  # one per case (events())
        started_at=ev.started_at.min(),
        ended_at=ev.event_time.max(),
        events=ev.count(),
        variant=_in_order(con, ev.activity, [ev.step]),  # step: (time, id) order
        **flags,
    )
    per = _joined(con, per, "variant")
    per = per.mutate(
        **{f: ibis.literal(False) for f in ("_failed", "_succeeded") if f not in flags}
    )
    per = per.mutate(
        throughput_hours=_hours(per.ended_at, per.started_at),
        outcome=ibis.cases((per._failed, "failure"), (per._succeeded, "success"), else_="open"),
        failed=per._failed,
    ).drop("_failed", "_succeeded")
    lg = log(con)
    churn = lg.filter(lg.name.isin(list(journey.churn)), lg.customer_id.notnull())
    churn = churn.group_by(ccid=churn.customer_id).aggregate(churned_at=churn.event_time.max())
    per = per.left_join(churn, per.customer_id == churn.ccid).drop("ccid")
    per = per.mutate(churned=(per.churned_at >= per.started_at).fill_null(False)).drop("churned_at")
    r = survey_facts.responses(con)
    r = r.filter(r.nps_category.isin(CATEGORIES), r.customer_id.notnull())
    r = r.select(rid=r.id, rcid=r.customer_id, submitted_at=r.submitted_at, cat=r.nps_category)
    j = per.select("case_id", "customer_id", "started_at").join(
        r, [per.customer_id == r.rcid, r.submitted_at >= per.started_at]
    )
    # Each answer counts once: for the customer's latest case started at or before it (a
    # customer with many orders would otherwise lend one answer to every earlier order).
    latest = ibis.window(group_by=j.rid, order_by=[ibis.desc(j.started_at), ibis.desc(j.case_id)])
    j = j.mutate(_nth=ibis.row_number().over(latest))
    j = j.filter(j._nth == 0)
    scores = j.group_by(scid=j.case_id).aggregate(
        **{f"{c}s": (j.cat == c).sum() for c in CATEGORIES}
    )
    per = per.left_join(scores, per.case_id == scores.scid).drop("scid")
    return per.mutate(**{f"{c}s": per[f"{c}s"].fill_null(0) for c in CATEGORIES})


def directly_follows(ev: ir.Table) -> ir.Table:
    """The directly-follows graph: ``source, target, frequency, cases, median_hours`` (the
    median time from an event to the next event of the same case)."""
    pairs = ev.filter(ev.next_activity.notnull())
    return pairs.group_by(source=pairs.activity, target=pairs.next_activity).aggregate(
        frequency=pairs.count(),
        cases=pairs.case_id.nunique(),
        median_hours=_hours(pairs.next_time, pairs.event_time).median(),
    )


def variants(cs: ir.Table) -> ir.Table:
    """Variants: ``variant, cases, share, failures, churned, median_hours, promoters,
    passives, detractors`` (``share`` of all cases), most frequent first."""
    total = cs.count()
    v = cs.group_by("variant").aggregate(
        cases=cs.count(),
        failures=cs.failed.sum(),
        churned=cs.churned.sum(),
        median_hours=cs.throughput_hours.median(),
        **{f"{c}s": cs[f"{c}s"].sum() for c in CATEGORIES},
    )
    # As floats: PostgreSQL divides integers to an integer (every share would be 0).
    share = v.cases.cast("float64") / total.as_scalar().cast("float64")
    return v.mutate(share=share).order_by([ibis.desc("cases"), "variant"])


def activities(ev: ir.Table) -> ir.Table:
    """Per activity: ``activity, events, cases, rework_cases`` (cases where it occurs more
    than once) and ``repeats`` (occurrences beyond the first in each case)."""
    per = ev.group_by(["case_id", "activity"]).aggregate(n=ev.count())
    return per.group_by("activity").aggregate(
        events=per.n.sum(),
        cases=per.count(),
        rework_cases=(per.n > 1).sum(),
        repeats=(per.n - 1).sum(),
    )


def reworked(ev: ir.Table, journey: Journey) -> ir.Table:
    """The cases with rework: ``case_id`` of each case where an activity that is not one of
    the journey's ``repeatable`` labels occurs more than once."""
    steps = ev
    if journey.repeatable:
        steps = ev.filter(~ev.activity.isin(list(journey.repeatable)))
    per = steps.group_by(["case_id", "activity"]).aggregate(n=steps.count())
    return per.filter(per.n > 1).select("case_id").distinct()


def owners(con: BaseBackend, ev: ir.Table) -> ir.Table:
    """Per activity and owning department: ``activity, department, events`` (the events of
    the activity at touchpoints that department owns)."""
    tp = touchpoints_expr(con).select(tkey="key", department="department_key")
    owned = ev.join(tp, ev.touchpoint_key == tp.tkey)
    owned = owned.filter(owned.department.notnull())
    return owned.group_by(["activity", "department"]).aggregate(events=owned.count())


def stages(con: BaseBackend, ev: ir.Table) -> ir.Table:
    """Per activity and stage: ``activity, stage, events`` (the events of the activity at
    touchpoints of that stage; the org model gives each touchpoint its stage)."""
    tp = touchpoints_expr(con).select(tkey="key", stage="stage")
    staged = ev.join(tp, ev.touchpoint_key == tp.tkey)
    staged = staged.filter(staged.stage.notnull())
    return staged.group_by(["activity", "stage"]).aggregate(events=staged.count())


def stage_flows(con: BaseBackend, ev: ir.Table, depth: int) -> ir.Table:
    """``step, source, target, cases``: cases whose step ``step`` is at a touchpoint of stage
    ``source`` and whose next step is at stage ``target`` (``unstaged`` for an event without a
    staged touchpoint), over the first ``depth`` steps."""
    tp = touchpoints_expr(con).select(tkey="key", tstage="stage")
    staged = ev.left_join(tp, ev.touchpoint_key == tp.tkey)
    staged = staged.mutate(stage=staged.tstage.fill_null("unstaged")).select(
        "case_id", "event_time", "event_id", "step", "stage"
    )
    w = ibis.window(group_by=staged.case_id, order_by=[staged.event_time, staged.event_id])
    pairs = staged.mutate(target=staged.stage.lead().over(w))
    pairs = pairs.filter(pairs.target.notnull(), pairs.step < depth)
    return pairs.group_by(step=pairs.step, source=pairs.stage, target=pairs.target).aggregate(
        cases=pairs.count()
    )


def handoff_events(con: BaseBackend, ev: ir.Table) -> ir.Table:
    """Each hand-off between departments: ``case_id, source, target`` (one row per hand-off):
    consecutive events of a case whose touchpoints are owned by different departments (events
    at touchpoints nobody owns are skipped)."""
    tp = touchpoints_expr(con).select(tkey="key", department="department_key")
    owned = ev.join(tp, ev.touchpoint_key == tp.tkey).drop("tkey")
    owned = owned.filter(owned.department.notnull())
    w = ibis.window(group_by=owned.case_id, order_by=[owned.event_time, owned.event_id])
    moved = owned.mutate(previous=owned.department.lag().over(w))
    moved = moved.filter(moved.previous.notnull(), moved.previous != moved.department)
    return moved.select("case_id", source=moved.previous, target=moved.department)


def handoffs(con: BaseBackend, ev: ir.Table, moved: ir.Table | None = None) -> ir.Table:
    """Hand-offs between departments: ``source, target, frequency, cases`` (``moved``: the
    ``handoff_events`` of ``ev`` when already computed)."""
    moved = handoff_events(con, ev) if moved is None else moved
    return moved.group_by(["source", "target"]).aggregate(
        frequency=moved.count(), cases=moved.case_id.nunique()
    )


def carried(cs: ir.Table, per_case: ir.Table, by: list[str]) -> ir.Table:
    """What the cases holding each ``by`` value carry: ``*by, cases, failures, churned,
    promoters, passives, detractors`` (``per_case`` has ``case_id`` and ``by``; a case
    counts once per value however often it holds it)."""
    keys = per_case.select("case_id", *by).distinct()
    j = keys.join(cs, "case_id")
    return j.group_by(by).aggregate(
        cases=j.count(),
        failures=j.failed.sum(),
        churned=j.churned.sum(),
        **{f"{c}s": j[f"{c}s"].sum() for c in CATEGORIES},
    )


def sub_paths(ev: ir.Table, longest: int = 3) -> ir.Table:
    """Each case's distinct sub-paths (runs of 1 to ``longest`` consecutive activities):
    ``case_id, path`` (activities joined by " → ")."""
    w = ibis.window(group_by=ev.case_id, order_by=[ev.event_time, ev.event_id])
    nxt = {f"a{k}": ev.activity.lead(k - 1).over(w) for k in range(1, longest + 1)}
    runs = ev.select("case_id", **nxt)
    parts = []
    for n in range(1, longest + 1):
        cols = [runs[f"a{k}"] for k in range(1, n + 1)]
        path = cols[0]
        for c in cols[1:]:
            path = path.concat(SEP, c)
        ok = runs[f"a{n}"].notnull()
        parts.append(runs.filter(ok).select("case_id", path=path))
    return ibis.union(*parts, distinct=True)


def drop_off(ev: ir.Table, cs: ir.Table) -> ir.Table:
    """Drop-off per activity: ``activity, dropped``: cases whose last event is this activity
    and that did not reach a success outcome (they failed or are still open)."""
    last = ev.filter(ev.next_activity.isnull()).select("case_id", "activity")  # a case's last
    ended = last.join(cs.select("case_id", "outcome"), "case_id")
    ended = ended.filter(ended.outcome != "success")
    return ended.group_by("activity").aggregate(dropped=ended.count())


def answers(con: BaseBackend, cs: ir.Table, metric: Metric) -> ir.Table:
    """The rows ``metric`` counts (its fact's rows after its own filters: survey answers),
    each attributed to its customer's latest case started at or before it, as the NPS of
    ``cases`` is: the fact's columns plus ``case_id``. Answers of customers without such a
    case are left out. Invalid for a metric over another fact than survey responses.
    """
    if metric.fact != "responses":
        raise Invalid(f"{metric.name} does not read survey answers (it reads {metric.fact}); "
                      "a journey carries the scores of its customers' answers")  # fmt: skip
    fact = FACTS[metric.fact]
    r = metrics_ax.fact_rows(con, metric, [], customer=True)
    r = r.filter(r.customer_id.notnull())
    c = cs.select(case_id=cs.case_id, _ccid=cs.customer_id, _started=cs.started_at)
    j = r.join(c, [r.customer_id == c._ccid, r[fact.time] >= c._started])
    latest = ibis.window(group_by=j[fact.key],
                         order_by=[ibis.desc(j._started), ibis.desc(j.case_id)])  # fmt: skip
    j = j.mutate(_nth=ibis.row_number().over(latest))
    return j.filter(j._nth == 0).drop("_nth", "_ccid", "_started")


def step_scores(ev: ir.Table, answered: ir.Table, metric: Metric) -> ir.Table:
    """The metric's sufficient statistics (``metrics.analytics.summarise``) per step:
    ``_step`` and the statistics of the answers attributed to the cases through that step
    (each answer once per step, however often its case passes the step)."""
    steps = ev.select(_case=ev.case_id, _step=ev.activity).distinct()
    j = answered.join(steps, answered.case_id == steps._case).drop("_case")
    return metrics_ax.summarise(j, metric, ["_step"])


# ---- conformance to the defined stage order ----

START = "(start)"  # the source of a deviation at a case's first staged event
DEVIATIONS = ("skipped stage", "backwards", "backwards hand-off", "undefined stage")


def staged(con: BaseBackend, ev: ir.Table) -> ir.Table:
    """The events at touchpoints that have a stage: ``case_id, event_time, event_id, stage,
    department`` (the touchpoint's owner; NULL when nobody owns it). Events at touchpoints
    without a stage (or without a touchpoint) have no place in the stage order."""
    tp = touchpoints_expr(con).select(tkey="key", stage="stage", department="department_key")
    st = ev.join(tp, ev.touchpoint_key == tp.tkey)
    st = st.filter(st.stage.notnull())
    return st.select("case_id", "event_time", "event_id", "stage", "department")


def stage_deviations(con: BaseBackend, ev: ir.Table, journey: Journey) -> ir.Table:
    """Where each case leaves the journey's defined stage order: ``case_id, kind, source,
    target`` (stages), one row per deviating event, ``kind`` one of ``DEVIATIONS``:

    - *skipped stage*: the case moves forward past a stage the definition requires (from
      ``(start)`` when its first staged event comes after a required stage);
    - *backwards*: it moves back to an earlier stage of the order, within one department;
    - *backwards hand-off*: it moves back to an earlier stage at a touchpoint another
      department owns (the case is handed back);
    - *undefined stage*: an event at a stage the definition does not list (``source``: the
      previous staged event's stage, ``(start)`` at the first).

    Consecutive events at one stage are one visit (a stage may repeat in place). A case with
    no row here follows the defined order.
    """
    order = [s for s, _ in journey.stages]
    rank = {s: i for i, s in enumerate(order)}
    cum = [0]  # cum[k]: the required stages before position k
    for _, optional in journey.stages:
        cum.append(cum[-1] + (0 if optional else 1))
    st = staged(con, ev)
    w_all = ibis.window(group_by=st.case_id, order_by=[st.event_time, st.event_id])
    st = st.mutate(
        rank=st.stage.substitute(rank, else_=-1).cast("int64"),
        prev_any=st.stage.lag().over(w_all),
    )
    outside = st.filter(st.rank < 0)
    outside = outside.select(
        "case_id", kind=ibis.literal(DEVIATIONS[3]),
        source=outside.prev_any.fill_null(START), target=outside.stage,
    )  # fmt: skip
    d = st.filter(st.rank >= 0)
    w = ibis.window(group_by=d.case_id, order_by=[d.event_time, d.event_id])
    d = d.mutate(
        prev_rank=d.rank.lag().over(w),
        prev_stage=d.stage.lag().over(w),
        prev_department=d.department.lag().over(w),
    )
    required_before = d.stage.substitute({s: cum[i] for s, i in rank.items()}, else_=0)
    required_after_prev = d.prev_stage.substitute({s: cum[i + 1] for s, i in rank.items()}, else_=0)
    handed = (d.prev_department != d.department).fill_null(False)
    kind = ibis.cases(
        (d.prev_rank.isnull() & (required_before > 0), DEVIATIONS[0]),
        (d.rank < d.prev_rank, ibis.ifelse(handed, DEVIATIONS[2], DEVIATIONS[1])),
        ((d.rank > d.prev_rank) & (required_before - required_after_prev > 0), DEVIATIONS[0]),
        else_=ibis.null("string"),
    )
    d = d.select("case_id", kind=kind, source=d.prev_stage.fill_null(START), target=d.stage)
    d = d.filter(d.kind.notnull())
    return ibis.union(d, outside, distinct=False)


def stage_sequences(con: BaseBackend, ev: ir.Table) -> ir.Table:
    """Each case's stage sequence: ``case_id, stages`` (the stages of its staged events in
    order, a run at one stage written once, joined by " → ")."""
    st = staged(con, ev)
    w = ibis.window(group_by=st.case_id, order_by=[st.event_time, st.event_id])
    st = st.mutate(prev=st.stage.lag().over(w))
    moved = st.filter(st.prev.isnull() | (st.prev != st.stage))
    seq = moved.group_by("case_id").aggregate(
        stages=_in_order(con, moved.stage, [moved.event_time, moved.event_id])
    )
    return _joined(con, seq, "stages")

"""What the dashboards show of insights: each department's signals with their effect, reach,
trend and cost, and the departments ranked by what their frictions cost.

One read (``panels``) serves the overview and every scorecard; a figure that cannot be
computed (no lifecycle, too few answers) is left out with the reason, never failing the page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import ibis
from ibis.backends import BaseBackend

from cxm.errors import Invalid
from cxm.insights import analytics
from cxm.insights import attribution as attr
from cxm.insights import revenue as rev
from cxm.insights.definitions import Signal
from cxm.metrics.definitions import Lifecycle

TREND_MONTHS = 6


@dataclass
class SignalPanel:
    key: str
    label: str
    reach: float  # share of NPS answers whose customer met it
    nps_points: float | None  # effect on NPS (-100..100), with its 95% interval
    nps_low: float | None
    nps_high: float | None
    nps_cost: float | None  # score points the mean answer loses (-effect x reach)
    extra_churned: float | None
    revenue_at_risk: float | None  # annual revenue its extra churn takes
    trend: list[tuple[str, int]] = field(default_factory=list)  # (YYYY-MM, customers who met it)


@dataclass
class DepartmentPanel:
    key: str
    name: str
    signals: list[SignalPanel]
    revenue_at_risk: float  # sum over its signals (a shared signal split evenly)
    extra_churned: float
    nps_cost: float
    note: str = ""


@dataclass
class Panels:
    departments: list[DepartmentPanel]  # ranked by revenue at risk, then NPS cost
    notes: list[str] = field(default_factory=list)  # figures left out, and why

    def department(self, key: str) -> DepartmentPanel | None:
        return next((d for d in self.departments if d.key == key), None)


def trends(
    con: BaseBackend,
    signals: Sequence[Signal],
    end: dt.datetime,
    months: int = TREND_MONTHS,
    since: dt.datetime | None = None,
) -> dict[str, list[tuple[str, int]]]:
    """Customers who met each signal per calendar month, over the ``months`` up to ``end``
    (with ``since``: from ``since`` to ``end``)."""
    e = analytics.signal_events(con, signals)
    last = ibis.literal(end, "timestamp")
    e = e.filter(e.event_time <= last)
    if since is not None:
        e = e.filter(e.event_time >= ibis.literal(since, "timestamp"))
    else:
        e = e.filter(e.event_time > last - ibis.interval(days=31 * months))
    e = e.mutate(month=e.event_time.truncate("M"))
    g = e.group_by(["signal", "month"]).aggregate(customers=e.customer_id.nunique())
    out: dict[str, list[tuple[str, int]]] = {s.key: [] for s in signals}
    for row in g.order_by(["signal", "month"]).execute().itertuples():
        out[str(row.signal)].append((f"{row.month:%Y-%m}", int(row.customers)))
    return out


def panels(
    con: BaseBackend,
    signals: Sequence[Signal],
    lifecycle: Lifecycle | None,
    window_days: int = analytics.WINDOW_DAYS,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> Panels:
    """Every department's panel (see the module docstring), over the period
    ``[since, until)`` (naive UTC; None: the whole log): the NPS effects and reach from the
    answers given in it, the churn and revenue from the customers of the period (those who
    had not churned before it) and who of them churned by its end, the trend by month in it."""
    touchpoint_owner, names = attr.owners(con)
    notes: list[str] = []
    try:
        usable = attr._usable(signals, touchpoint_owner)
    except Invalid as exc:
        usable, notes = [], [str(exc)]
    nps: dict[str, attr.SignalEffect] = {}
    money: dict[str, rev.SignalRevenue] = {}
    trend: dict[str, list[tuple[str, int]]] = {}
    if usable:
        try:
            found = attr.attribute(con, usable, "nps", None, window_days, since=since, until=until)
            nps = {e.key: e for e in found.signals}
        except Invalid as exc:
            notes.append(f"NPS effects: {exc}")
        try:
            money = {
                s.key: s
                for s in rev.revenue(con, usable, lifecycle, 1.0, window_days, since, until).signals
            }
        except Invalid as exc:
            notes.append(f"churn and revenue: {exc}")
        try:
            end = analytics.log_end(con)
            trend = trends(con, usable, min(end, until) if until else end, since=since)
        except Invalid as exc:
            notes.append(f"trend: {exc}")
    out = []
    for key, name in names.items():
        mine = [s for s in usable if key in attr._owner(s, touchpoint_owner).split(",")]
        rows = []
        total_rev = total_churn = total_nps = 0.0
        for s in mine:
            share = len(attr._owner(s, touchpoint_owner).split(","))
            e, m = nps.get(s.key), money.get(s.key)
            row = SignalPanel(
                key=s.key, label=s.label, reach=e.reach if e else 0.0,
                nps_points=e.nps_points if e else None, nps_low=e.nps_points_low if e else None,
                nps_high=e.nps_points_high if e else None, nps_cost=e.cost if e else None,
                extra_churned=m.extra_churned if m else None,
                revenue_at_risk=m.revenue_at_risk if m else None, trend=trend.get(s.key, []),
            )  # fmt: skip
            rows.append(row)
            total_rev += (row.revenue_at_risk or 0.0) / share
            total_churn += (row.extra_churned or 0.0) / share
            total_nps += (row.nps_cost or 0.0) / share
        note = "" if mine else "no signals at this department's touchpoints"
        out.append(DepartmentPanel(key, name, rows, total_rev, total_churn, total_nps, note))
    out.sort(key=lambda d: (-d.revenue_at_risk, -d.nps_cost, d.key))
    return Panels(out, notes)

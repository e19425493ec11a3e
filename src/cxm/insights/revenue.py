"""Revenue at risk: by NPS category and by signal, and the value of fixing a signal.

* **Annual revenue** of a customer: the ``revenue`` of the lifecycle's revenue events (see
  docs/metrics.md) in the 365 days up to their reference time (their churn, else the end of
  the log), computed by Ibis on the engine.
* **By NPS category**: customers by the category of their latest NPS answer before their
  reference time (promoter 9-10, passive 7-8, detractor 0-6, or none). For each: customers,
  churned, churn rate, the annual revenue of those who stayed and of those who churned
  (revenue lost), and **revenue at risk** = the stayers' annual revenue x the category's churn
  rate (what the category's observed churn would take from it next).
* **By signal**: the churn attribution's logistic regression (``attribution.fit_churn``): the
  extra churned customers of a signal (the sum over those who met it of p - p without it) and
  the **revenue at risk**: the same sum weighted by each customer's annual revenue.
* **Value of fixing a signal**: if its reach fell by ``reduction`` (0-1), that share of those
  who met it would not, each keeping p - p without it: customers kept = reduction x extra
  churned; revenue kept = reduction x revenue at risk (expected values under the model).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
from ibis.backends import BaseBackend

from cxm.errors import Invalid
from cxm.insights import analytics
from cxm.insights import attribution as attr
from cxm.insights.definitions import Signal
from cxm.interactions.facts import log
from cxm.metrics.definitions import Lifecycle
from cxm.surveys.facts import responses

CATEGORIES = ("promoter", "passive", "detractor", "none")


def customer_revenue(
    con: BaseBackend, lifecycle: Lifecycle, as_of: dt.datetime, since: dt.datetime | None = None
) -> ir.Table:
    """``(customer_id, churned, reference_time, annual_revenue, nps_category)``, one row per
    customer of ``analytics.customer_outcomes`` (with ``since``: the customers of the period
    ``[since, as_of]``): revenue in the 365 days up to the reference time, and the category of
    the latest NPS answer before it (``none`` without one)."""
    c = analytics.customer_outcomes(con, lifecycle, as_of, since).view()
    t = log(con)
    t = t.filter(t.name.isin(list(lifecycle.revenue)), t.customer_id.notnull())
    t = t.select(_c=t.customer_id, _t=t.event_time, _r=t.revenue.fill_null(0))
    j = c.left_join(t, [c.customer_id == t._c, t._t <= c.reference_time,
                        t._t > c.reference_time - ibis.interval(days=365)])  # fmt: skip
    rev = j.group_by(["customer_id", "churned", "reference_time"]).aggregate(
        annual_revenue=j._r.sum().fill_null(0)
    )
    r = responses(con)
    r = r.filter(r.nps.notnull(), r.customer_id.notnull(), r.submitted_at.notnull())
    r = r.select(_rc=r.customer_id, _rt=r.submitted_at, _nps=r.nps)
    k = rev.view()
    a = k.left_join(r, [k.customer_id == r._rc, r._rt < k.reference_time])
    ranked = a.mutate(_n=ibis.row_number().over(group_by=a.customer_id, order_by=ibis.desc(a._rt)))
    latest = ranked.filter(ranked._n == 0)
    category = ibis.cases(
        (latest._nps >= 9, "promoter"),
        (latest._nps >= 7, "passive"),
        (latest._nps.notnull(), "detractor"),
        else_="none",
    )
    return latest.select("customer_id", "churned", "reference_time", "annual_revenue",
                         nps_category=category)  # fmt: skip


@dataclass
class CategoryRevenue:
    category: str
    customers: int
    churned: int
    churn_rate: float
    revenue_active: float  # annual revenue of those who stayed
    revenue_lost: float  # annual revenue of those who churned
    revenue_at_risk: float  # revenue_active x churn_rate


@dataclass
class SignalRevenue:
    key: str
    label: str
    department: str | None
    met: int
    extra_churned: float | None
    revenue_at_risk: float | None  # annual revenue the signal's extra churn takes
    customers_kept: float | None  # if its reach fell by ``reduction``
    revenue_kept: float | None


@dataclass
class Revenue:
    reduction: float
    customers: int
    currency_note: str
    categories: list[CategoryRevenue]
    signals: list[SignalRevenue] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def by_category(frame: pd.DataFrame) -> list[CategoryRevenue]:
    """The NPS-category table of a ``customer_revenue`` frame."""
    out = []
    for cat in CATEGORIES:
        f = frame[frame.nps_category == cat]
        n, churned = len(f), int(f.churned.sum())
        rate = churned / n if n else 0.0
        active = float(f.annual_revenue[f.churned == 0].sum())
        lost = float(f.annual_revenue[f.churned == 1].sum())
        out.append(CategoryRevenue(cat, n, churned, rate, active, lost, active * rate))
    return out


def revenue(
    con: BaseBackend,
    signals: Sequence[Signal],
    lifecycle: Lifecycle | None,
    reduction: float = 0.5,
    window_days: int = analytics.WINDOW_DAYS,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> Revenue:
    """Revenue at risk by NPS category and by signal, and what fixing each signal is worth if
    its reach fell by ``reduction`` (0-1). ``since``/``until`` (naive UTC): the customers of
    that period, churned or not at its end (by default the whole log). ``Invalid`` without a
    lifecycle or with a reduction outside 0-1."""
    if lifecycle is None:
        raise Invalid("revenue needs the customer lifecycle (the metrics files define it)")
    if not 0.0 <= reduction <= 1.0:
        raise Invalid(f"reduction: {reduction}; give a share from 0 to 1 (0.5: half the reach)")
    end = analytics.log_end(con)
    if until is not None:
        end = min(end, until)
    rev = customer_revenue(con, lifecycle, end, since)
    frame: pd.DataFrame = rev.execute()
    touchpoint_owner, _ = attr.owners(con)
    usable = attr._usable(signals, touchpoint_owner)
    t = analytics.customer_signals(con, usable, lifecycle, end, window_days, since)
    t = analytics.with_controls(t, con).execute()
    t = t.merge(frame[["customer_id", "annual_revenue"]], on="customer_id", how="left")
    keys = [s.key for s in usable]
    fits = attr.fit_churn(t, keys)
    money = fits.get("_revenue", {})
    out = []
    for s in usable:
        fit = fits.get(s.key, {})
        extra, at_risk = fit.get("extra_churned"), money.get(s.key)
        out.append(
            SignalRevenue(
                key=s.key, label=s.label, department=attr._owner(s, touchpoint_owner),
                met=int((t[s.key] == 1).sum()), extra_churned=extra, revenue_at_risk=at_risk,
                customers_kept=None if extra is None else reduction * extra,
                revenue_kept=None if at_risk is None else reduction * at_risk,
            )
        )  # fmt: skip
    out.sort(key=lambda r: -(r.revenue_at_risk or 0.0))
    return Revenue(
        reduction=reduction,
        customers=len(frame),
        currency_note="annual revenue in the currency of the revenue events",
        categories=by_category(frame),
        signals=out,
    )

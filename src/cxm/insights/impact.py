"""An initiative's impact against a matched control group: difference in differences.

Treated: customer answers with the initiative's metric at its touchpoints; control: answers
with the same metric at every other touchpoint, from customers of the segments the treated
answers come from (matched on segment: segment fixed effects in the model). Both in the
``days`` before and after the start. The estimate is the interaction in the least-squares
model ``value ~ treated + after + treated x after + segment`` with HC3 robust errors
(Angrist & Pischke 2009, ch. 5): the change at the treated touchpoints beyond the change the
rest of the company saw over the same time. NPS answers count +100/0/-100.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import ibis
import numpy as np
import pandas as pd
import statsmodels.api as sm
from ibis.backends import BaseBackend

from cxm.errors import Invalid
from cxm.insights import analytics
from cxm.surveys.facts import responses

METRICS = ("nps", "csat", "ces")
MIN_CELL = 2


def answers(
    con: BaseBackend, touchpoints: Sequence[str], metric: str, start: dt.datetime, days: int
) -> pd.DataFrame:
    """``(value, treated, after, touchpoint, segment)``, one row per customer answer with
    ``metric`` in the ``days`` around ``start`` (computed by Ibis; the segment from the
    customer's traits)."""
    if metric not in METRICS:
        raise Invalid(f"metric: {metric!r}; choose one of {', '.join(METRICS)}")
    r = responses(con)
    lo = ibis.literal(start - dt.timedelta(days=days), "timestamp")
    hi = ibis.literal(start + dt.timedelta(days=days), "timestamp")
    r = r.filter(r.completed, r[metric].notnull(), r.customer_id.notnull(),
                 r.touchpoint_key.notnull(), r.submitted_at >= lo, r.submitted_at < hi)  # fmt: skip
    if metric == "nps":
        value = ibis.cases((r.nps >= 9, 100.0), (r.nps <= 6, -100.0), else_=0.0)
    else:
        value = r[metric].cast("float64")
    r = r.select(
        customer_id=r.customer_id,
        value=value,
        treated=ibis.ifelse(r.touchpoint_key.isin(list(touchpoints)), 1, 0),
        after=ibis.ifelse(r.submitted_at >= ibis.literal(start, "timestamp"), 1, 0),
        touchpoint=r.touchpoint_key,
    )
    frame: pd.DataFrame = analytics.with_controls(r, con, ["segment"]).execute()
    frame["segment"] = frame["segment"].astype(object).where(frame["segment"].notna(), "(none)")
    return frame.drop(columns="customer_id")


def did(frame: pd.DataFrame) -> dict[str, Any]:
    """Difference in differences on ``(value, treated, after, segment)``: the control keeps
    only the treated answers' segments. Returns the 2x2 cell means and counts, the plain
    difference of differences, and the model's estimate with its 95% interval and p-value
    (``None`` with a ``note`` when a cell has fewer than two answers)."""
    segments = set(frame.loc[frame.treated == 1, "segment"])
    f = frame[frame.segment.isin(segments)].reset_index(drop=True)
    cells = {
        f"{'treated' if t else 'control'}_{'after' if a else 'before'}": f[
            (f.treated == t) & (f.after == a)
        ].value
        for t in (1, 0)
        for a in (0, 1)
    }
    control = f.loc[f.treated == 0, "touchpoint"] if "touchpoint" in f else pd.Series([])
    out: dict[str, Any] = {
        "method": "difference in differences, OLS with segment fixed effects, HC3 errors",
        "control_touchpoints": sorted(str(t) for t in set(control)),
        "segments": sorted(str(s) for s in segments),
        "cells": {
            k: {"n": len(v), "mean": float(v.mean()) if len(v) else None} for k, v in cells.items()
        },
    }
    if min(len(v) for v in cells.values()) < MIN_CELL:
        return out | {"estimate": None, "low": None, "high": None, "p_value": None,
                      "plain": None, "note": "fewer than two answers in a cell"}  # fmt: skip
    m = {k: float(v.mean()) for k, v in cells.items()}
    plain = (m["treated_after"] - m["treated_before"]) - (m["control_after"] - m["control_before"])
    x = pd.DataFrame({"treated": f.treated, "after": f.after, "both": f.treated * f.after},
                     dtype=float)  # fmt: skip
    if f.segment.nunique() > 1:
        dummies = pd.get_dummies(f.segment, prefix="segment", drop_first=True, dtype=float)
        x = pd.concat([x, dummies], axis=1)
    fit = sm.OLS(f.value.astype(float), sm.add_constant(x)).fit(cov_type="HC3")
    low, high = fit.conf_int(0.05).loc["both"]
    p = float(fit.pvalues["both"])
    return out | {"estimate": float(fit.params["both"]), "low": float(low), "high": float(high),
                  "p_value": None if np.isnan(p) else p, "plain": plain, "note": ""}  # fmt: skip


def initiative_impact(
    con: BaseBackend, touchpoints: Sequence[str], metric: str, start: dt.date, days: int = 90
) -> dict[str, Any]:
    """The difference in differences of an initiative (its touchpoints, metric, start date)."""
    when = dt.datetime.combine(start, dt.time(0))
    out = did(answers(con, touchpoints, metric, when, days)) | {"window_days": days}
    return out | {"summary": summary(out, metric, touchpoints)}


UNITS = {"nps": "NPS points", "csat": "CSAT points", "ces": "CES points"}


def summary(result: dict[str, Any], metric: str, touchpoints: Sequence[str]) -> str:
    """One sentence a CX lead reads: how much more the metric moved at the initiative's
    touchpoints than at the control touchpoints, with the interval and what it allows."""
    days = result.get("window_days", 90)
    where = ", ".join(touchpoints)
    control = ", ".join(result.get("control_touchpoints") or []) or "no other touchpoint"
    group = (f"the control group is the answers with the same metric at the other touchpoints "
             f"({control}) from customers of the same segments "
             f"({', '.join(result.get('segments') or []) or 'none'})")  # fmt: skip
    if result.get("estimate") is None:
        return (f"Not enough answers yet to compare {where} with a control group "
                f"({result.get('note') or 'too few answers'}); {group}.")  # fmt: skip
    est, low, high = result["estimate"], result["low"], result["high"]
    unit = UNITS.get(metric, "points")
    better = "lower" if metric == "ces" else "higher"  # a lower effort score is better
    moved = f"{abs(est):.2f} {unit} {'more' if est > 0 else 'less'}"
    if low > 0 or high < 0:
        side = "above" if low > 0 else "below"
        sure = f"the whole 95% interval lies {side} zero, so the change is unlikely to be chance"
    else:
        sure = "the 95% interval includes zero, so the change could be chance"
    return (
        f"In the {days} days after the start, {metric.upper()} at {where} moved {moved} "
        f"than in the control group over the same time ({est:+.2f}, 95% interval "
        f"{low:+.2f} to {high:+.2f}; {better} is better); {sure}. Here {group}. It assumes "
        f"that without the initiative {where} would have moved like the control group."
    )

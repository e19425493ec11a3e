"""Partner scorecards: how the touchpoints a partner runs score, and what their signals cost.

Every figure comes from its one definition: CSAT, NPS and CES from ``cxm.metrics.compute``
narrowed to the partner's touchpoints (the ``partner`` org dimension), the signals' costs
from the insights attribution (``cxm.insights.service.attribution``), keeping the signals
whose touchpoints the partner runs.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection, Engine

from cxm.errors import Invalid, NotFound
from cxm.insights import service as insights
from cxm.metrics import service as metrics_service
from cxm.metrics.definitions import Metric
from cxm.org import service as org
from cxm.org.scope import Scope, readable_partners

SCORECARD_METRICS = ("csat", "nps", "ces")


def readable_partner(conn: Connection, scope: Scope, key: str) -> None:
    """NotFound unless the scope reads partner ``key``: a partner user reads their own only;
    staff who read every department (admin, cx_lead, viewers in aggregate) read all; a
    manager reads the partners running touchpoints of their department."""
    if scope.by_partner and scope.partner_key != key:
        raise NotFound("no such partner in your scope")
    org.get_partner(conn, key)  # NotFound naming the known ones
    readable = readable_partners(conn, scope)
    if readable is not None and key not in readable:
        raise NotFound("no such partner in your scope")


def _num(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def scorecard(
    engine: Engine,
    conn: Connection,
    data_dir: Path,
    key: str,
    *,
    metrics: Mapping[str, Metric],
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    min_slice: int = 0,
) -> dict[str, Any]:
    """The scorecard of partner ``key``.

    Returns ``{"partner": {key, name, kind, touchpoints}, "metrics": [{metric, value, ci_low,
    ci_high, n, flags}], "by_touchpoint": [{touchpoint, metric, value, n}], "signals":
    [{key, label, touchpoints, cost, effect}], "signals_note": str}``. Values are in each
    metric's unit (CSAT %, NPS -100..100, CES mean on its scale); ``cost`` is NPS points lost
    (effect x reach, see ``cxm.insights.attribution``). Touchpoint slices with fewer than
    ``min_slice`` answers are left out. NotFound for an unknown partner.
    """
    partner = org.get_partner(conn, key)
    rows: list[dict[str, Any]] = []
    by_tp: list[dict[str, Any]] = []
    for name in SCORECARD_METRICS:
        if name not in metrics:
            continue
        filters = {"partner": [key]}
        overall = metrics_service.compute(
            engine, name, (), start=start, end=end, filters=filters, metrics=metrics
        )
        for rec in overall.to_dict("records"):
            rows.append(
                {
                    "metric": name,
                    "value": _num(rec["value"]),
                    "ci_low": _num(rec["ci_low"]),
                    "ci_high": _num(rec["ci_high"]),
                    "n": int(rec["n"] or 0),
                    "flags": [f for f in str(rec["flags"] or "").split(",") if f],
                }
            )
        sliced = metrics_service.compute(
            engine, name, ["touchpoint"], start=start, end=end, filters=filters, metrics=metrics
        )
        for rec in sliced.to_dict("records"):
            if int(rec["n"] or 0) < min_slice:
                continue
            by_tp.append(
                {"touchpoint": rec["touchpoint"], "metric": name, "value": _num(rec["value"]),
                 "n": int(rec["n"] or 0)}
            )  # fmt: skip
    signals: list[dict[str, Any]] = []
    note = ""
    run = set(partner.touchpoints)
    try:
        result = insights.attribution(engine, data_dir, "nps")
    except Invalid as exc:
        note = f"no signal costs: {exc}"
    else:
        for s in result.signals:
            if run & set(s.touchpoints):
                signals.append(
                    {"key": s.key, "label": s.label, "touchpoints": s.touchpoints,
                     "cost": s.cost, "effect": s.effect, "met": s.met}
                )  # fmt: skip
    return {
        "partner": partner.model_dump(),
        "metrics": rows,
        "by_touchpoint": by_tp,
        "signals": signals,
        "signals_note": note,
    }

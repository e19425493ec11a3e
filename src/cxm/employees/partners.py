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
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
from sqlalchemy.engine import Connection, Engine

from cxm.employees import partner_pulse
from cxm.employees.confidential import DEFAULT_MINIMUM
from cxm.errors import Invalid, NotFound
from cxm.insights import attribution as attr
from cxm.insights import service as insights
from cxm.insights.definitions import Signal
from cxm.metrics import service as metrics_service
from cxm.metrics.definitions import Metric
from cxm.metrics.slices import property_text
from cxm.org import service as org
from cxm.org.scope import Scope, readable_partners
from cxm.store.analytics import reading

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
    minimum: int = DEFAULT_MINIMUM,
) -> dict[str, Any]:
    """The scorecard of partner ``key``.

    Returns ``{"partner": {key, name, kind, touchpoints}, "metrics": [{metric, value, ci_low,
    ci_high, n, flags}], "by_touchpoint": [{touchpoint, metric, value, n}], "signals":
    [{key, label, touchpoints, cost, effect}], "signals_note": str}``. Values are in each
    metric's unit (CSAT %, NPS -100..100, CES mean on its scale); ``cost`` is NPS points lost
    (effect x reach, see ``cxm.insights.attribution``). Touchpoint slices with fewer than
    ``min_slice`` answers are left out. ``"pulse"``: the partner pulse of the partner's own
    people (``partner_pulse.results``), under the minimum group size ``minimum``. NotFound
    for an unknown partner.
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
    signals, note = partner_signal_costs(engine, conn, data_dir, key)
    return {
        "partner": partner.model_dump(),
        "metrics": rows,
        "by_touchpoint": by_tp,
        "signals": signals,
        "signals_note": note,
        "pulse": partner_pulse.results(
            engine, key, minimum=minimum, start=_naive(start), end=_naive(end)
        ),
    }


@dataclass(frozen=True)
class _RunBy(Signal):
    """A signal met only by the interactions partner ``partner`` ran: every interaction at a
    touchpoint it runs whole, and at a touchpoint it runs in part (``partner_runs: marked``)
    those whose ``properties.partner`` names it."""

    partner: str = ""
    whole: tuple[str, ...] = ()
    marked: tuple[str, ...] = ()

    def predicate(self, log: ir.Table) -> ir.BooleanValue:
        ran: ir.BooleanValue = log.touchpoint_key.isin(list(self.whole) or [""])
        if self.marked:
            named = (property_text(log, "partner") == self.partner).fill_null(False)
            ran = ran | (log.touchpoint_key.isin(list(self.marked)) & named)
        return super().predicate(log) & ran


def partner_signal_costs(
    engine: Engine, conn: Connection, data_dir: Path, key: str
) -> tuple[list[dict[str, Any]], str]:
    """The signals at the touchpoints partner ``key`` runs, with what the interactions the
    partner ran cost: ``[{key, label, touchpoints, effect, met, cost, met_touchpoint,
    cost_touchpoint}]`` and a note (why there are none).

    ``effect`` is the insights attribution's (NPS points per answer whose customer met the
    signal, fitted on every answer); ``met`` counts the answers whose customer met the signal
    through an interaction the partner ran (in the same window before answering), and
    ``cost`` = -effect x met / answers, the attribution's cost with the partner's reach. At a
    touchpoint the partner runs whole this is the touchpoint's cost (``cost_touchpoint``); at
    one it runs in part only the marked interactions count.
    """
    partner = org.get_partner(conn, key)
    run = set(partner.touchpoints)
    if not run:
        return [], "this partner runs no touchpoint"
    try:
        result = insights.attribution(engine, data_dir, "nps")
    except Invalid as exc:
        return [], f"no signal costs: {exc}"
    mine = [s for s in result.signals if run & set(s.touchpoints)]
    if not mine:
        return [], ""
    runs = {t.key: t.partner_runs for t in org.list_touchpoints(conn) if t.partner_key == key}
    whole = tuple(sorted(t for t, how in runs.items() if how != "marked"))
    marked = tuple(sorted(t for t, how in runs.items() if how == "marked"))
    defined = insights.signals(data_dir)
    wrapped = [
        _RunBy(**{f.name: getattr(defined[s.key], f.name) for f in fields(Signal)},
               partner=key, whole=whole, marked=marked)
        for s in mine
    ]  # fmt: skip
    with reading(engine) as con:
        frame = attr.feature_table(con, wrapped, "nps", window_days=result.window_days)
    rows = len(frame)
    out: list[dict[str, Any]] = []
    for s in mine:
        met = int((frame[s.key] == 1).sum()) if rows else 0
        cost = None if s.effect is None or not rows else -s.effect * met / rows
        out.append(
            {"key": s.key, "label": s.label, "touchpoints": s.touchpoints, "effect": s.effect,
             "met": met, "cost": cost, "met_touchpoint": s.met, "cost_touchpoint": s.cost}
        )  # fmt: skip
    out.sort(key=lambda x: -float(x["cost"] or 0.0))
    return out, ""


def _naive(value: dt.datetime | None) -> dt.datetime | None:
    """Naive UTC (how the store keeps times)."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)

"""Dashboards: the CX lead's overview and one scorecard per department.

Every number comes from the metrics layer (``cxm.metrics.compute``); pages only arrange it.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from ibis.backends import BaseBackend
from sqlalchemy.engine import Connection

from cxm.errors import NotFound
from cxm.metrics import Metric, compute, load
from cxm.metrics.analytics import NONE_LABEL
from cxm.metrics.service import backend_for, list_alerts
from cxm.org import service as org
from cxm.org.auth import Principal
from cxm.org.scope import scope_for
from cxm.org.security import db, get_engine
from cxm.web.charts import trend_chart
from cxm.web.filters import Filters
from cxm.web.pages import render
from cxm.web.sessions import signed_in

router = APIRouter(include_in_schema=False)
HEADLINE = ("nps", "csat", "ces")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as plain dicts with NaN turned into None (templates test for None)."""
    return [{str(k): _clean(v) for k, v in row.items()} for row in df.to_dict("records")]


def catalog(request: Request) -> dict[str, Metric]:
    """The metric definitions, read once per app (they change with a restart)."""
    metrics: dict[str, Metric] | None = getattr(request.app.state, "metrics", None)
    if metrics is None:
        metrics = load()
        request.app.state.metrics = metrics
    return metrics


class Board:
    """One page's metric queries: one Ibis backend, one catalog, the page's filters."""

    def __init__(self, backend: BaseBackend, metrics: dict[str, Metric], f: Filters) -> None:
        self.backend, self.metrics, self.filters = backend, metrics, f

    def frame(self, name: str, by: list[str], **kw: Any) -> pd.DataFrame:
        f = self.filters
        return compute(self.backend, name, by, start=f.start_at, end=f.end_at,
                       filters=f.metric_filters(), metrics=self.metrics, **kw)  # fmt: skip

    def rows(self, name: str, by: list[str], **kw: Any) -> list[dict[str, Any]]:
        return records(self.frame(name, by, **kw))


def kpis(board: Board) -> list[dict[str, Any]]:
    """The headline scores, each with its interval, n, method and target."""
    metrics = board.metrics
    out = []
    for name in HEADLINE:
        rows = board.rows(name, [])
        row = rows[0] if rows else {"value": None, "n": 0}
        about = {"description": metrics[name].description, "unit": metrics[name].unit}
        out.append({**row, "name": name, "label": name.upper(), **about})
    return out


@router.get("/", response_class=HTMLResponse)
def overview(
    request: Request, who: Principal = Depends(signed_in), conn: Connection = Depends(db)
) -> HTMLResponse:
    """NPS, CSAT and CES with intervals and trend, by department, movers, volume, alerts."""
    scope = scope_for(who)
    f = Filters.from_request(request, scope)
    with backend_for(get_engine(request)) as backend:
        board = Board(backend, catalog(request), f)
        headline = kpis(board)
        trend = board.rows("nps", ["month"])
        by_dept = _by_department(board)
        moves = board.frame("csat", ["department", "month"], compare="previous")
        rate = board.rows("response_rate", [])
    names = {d.key: d.name for d in org.list_departments(conn)}
    movers = records(_latest_significant(moves))
    alerts = [a for a in list_alerts(conn) if a["status"] == "open" and _in_view(a, f)]
    return render(
        request, who, "overview.html",
        filters=f, departments=org.list_departments(conn), department_names=names,
        kpis=headline, trend=trend, chart=trend_chart(trend, "month", "NPS by month"),
        by_department=by_dept, headline=HEADLINE, movers=movers,
        response_rate=rate[0] if rate else None, alerts=alerts[:10],
        volume=sum(int(r.get("n") or 0) for r in trend),
    )  # fmt: skip


def _in_view(alert: dict[str, Any], f: Filters) -> bool:
    """An alert belongs in a department's view when it is company-wide or about that department."""
    if not f.department:
        return True
    return alert["slice"] in ("", f"department={f.department}")


def _by_department(board: Board) -> list[dict[str, Any]]:
    """One row per department with its headline scores (responses at touchpoints it owns)."""
    table: dict[str, dict[str, Any]] = {}
    for name in HEADLINE:
        for r in board.rows(name, ["department"]):
            table.setdefault(r["department"], {"department": r["department"]})[name] = r
    # Responses with no touchpoint (relationship NPS) belong to no department.
    table.pop(NONE_LABEL, None)
    return sorted(table.values(), key=lambda r: r["department"])


def _latest_significant(df: pd.DataFrame) -> pd.DataFrame:
    """The last period's slices whose change from the period before is significant."""
    if df.empty or "significant" not in df:
        return df.iloc[0:0]
    latest = df[df["month"] == df["month"].max()]
    moved = latest[latest["significant"].fillna(False).astype(bool)]
    return moved.reindex(moved["delta"].abs().sort_values(ascending=False).index)


@router.get("/departments", response_class=HTMLResponse)
def departments_index(
    request: Request, who: Principal = Depends(signed_in), conn: Connection = Depends(db)
) -> HTMLResponse:
    scope = scope_for(who)
    f = Filters.from_request(request, scope)
    departments = org.list_departments(conn)
    if scope.by_department:
        departments = [d for d in departments if d.key == scope.department_key]
    with backend_for(get_engine(request)) as backend:
        board = Board(backend, catalog(request), f)
        scores = {r["department"]: r for r in _by_department(board)}
    return render(request, who, "departments.html", filters=f, departments=departments,
                  scores=scores, headline=HEADLINE)  # fmt: skip


@router.get("/departments/{key}", response_class=HTMLResponse)
def scorecard(
    key: str, request: Request, who: Principal = Depends(signed_in),
    conn: Connection = Depends(db),
) -> HTMLResponse:  # fmt: skip
    """One department's part of the experience: its touchpoints, trend, comments, neighbours."""
    scope = scope_for(who)
    if scope.by_department and key != scope.department_key:
        raise NotFound(f"department '{key}' does not exist")
    department = org.get_department(conn, key)
    f = Filters.from_request(request, scope)
    f = Filters(f.start, f.end, key, f.segment)
    touchpoints = org.list_touchpoints(conn, key)
    with backend_for(get_engine(request)) as backend:
        board = Board(backend, catalog(request), f)
        headline = kpis(board)
        trend = board.rows("csat", ["month"])
        by_tp: dict[str, dict[str, Any]] = {}
        for name in HEADLINE:
            for r in board.rows(name, ["touchpoint"]):
                by_tp.setdefault(r["touchpoint"], {})[name] = r
    return render(
        request, who, "scorecard.html",
        department=department, filters=f, kpis=headline, touchpoints=touchpoints,
        by_touchpoint=by_tp, chart=trend_chart(trend, "month", f"CSAT at {department.name}"),
        trend=trend, metrics=HEADLINE,
    )  # fmt: skip

"""Dashboards: the CX lead's overview and one scorecard per department.

Every number comes from the metrics layer (``cxm.metrics.compute``); pages only arrange it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.engine import Connection

from cxm.employees import service as employees
from cxm.errors import NotFound
from cxm.feedback import service as feedback
from cxm.insights import service as insights
from cxm.journeys.analytics import journey_map
from cxm.metrics.analytics import NONE_LABEL
from cxm.metrics.service import BELOW_MIN_SAMPLE, list_alerts
from cxm.org import service as org
from cxm.org.auth import Principal
from cxm.org.scope import readable_departments, scope_for
from cxm.org.security import db, get_engine
from cxm.text import taxonomy
from cxm.text.analytics import Slice, theme_impact
from cxm.web.board import Board, Spec, frame_cache, readers, records, span_task, spec
from cxm.web.charts import trend_chart, trend_rows
from cxm.web.filters import Filters
from cxm.web.pages import catalog, render
from cxm.web.sessions import signed_in

router = APIRouter(include_in_schema=False)
HEADLINE = ("nps", "csat", "ces")


def headline_specs(department: str | None) -> list[Spec]:
    """The queries behind ``kpis``: a department's headline is its row of the company-wide
    scores by department (the same numbers, and one query shared by every department's view)."""
    if department:
        return [spec(m, ["department"], company=True) for m in HEADLINE]
    return [spec(m) for m in HEADLINE]


def kpis(board: Board) -> list[dict[str, Any]]:
    """The headline scores, each with its interval, n, method and target."""
    metrics = board.metrics
    department = board.filters.department
    out = []
    for name in HEADLINE:
        if department:
            rows = [r for r in board.rows(name, ["department"], company=True)
                    if r["department"] == department]  # fmt: skip
        else:
            rows = board.rows(name, [])
        row = rows[0] if rows else {
            "value": None, "ci_low": None, "ci_high": None, "n": 0,
            "target": metrics[name].target, "on_target": None, "flags": BELOW_MIN_SAMPLE,
        }  # fmt: skip
        about = {"description": metrics[name].description, "unit": metrics[name].unit}
        out.append({**row, "name": name, "label": name.upper(), **about})
    return out


# What each department's signals cost over the page's period: one read for every page.
def insights_key(f: Filters) -> tuple[object, ...]:
    return ("insights-panels", f.start, f.end)


def _readable_panels(panels: Any, departments: frozenset[str] | None) -> Any:
    """The panels of the departments the role reads (a manager: their own)."""
    if departments is None:
        return panels
    return replace(panels, departments=[d for d in panels.departments if d.key in departments])


def _insights_read(request: Request, f: Filters) -> Any:
    data_dir = request.app.state.settings.data_dir
    since = f.start_at.replace(tzinfo=None) if f.start_at else None  # naive UTC in the store
    until = f.end_at.replace(tzinfo=None) if f.end_at else None
    return lambda con: insights.panels(con, data_dir, since, until)


@router.get("/", response_class=HTMLResponse)
def overview(
    request: Request,
    who: Principal = Depends(signed_in),
    conn: Connection = Depends(db, scope="function"),
) -> HTMLResponse:
    """NPS, CSAT and CES with intervals and trend, by department, movers, volume, alerts."""
    scope = scope_for(who)
    f = Filters.from_request(request, scope)
    board = Board(readers(request), catalog(request), f, frame_cache(request))
    span_key, span_read = span_task(f)
    board.run([
        *headline_specs(f.department), *(spec(m, ["department"]) for m in HEADLINE),
        spec("nps", ["month"]), spec("csat", ["month"]),
        spec("nps", ["quarter"]), spec("csat", ["quarter"]),
        spec("response_rate"), spec("completion_rate"),
        spec("csat", ["department", "month"], compare="previous"),
    ], {insights_key(f): _insights_read(request, f), span_key: span_read})  # fmt: skip
    headline = kpis(board)
    trend, grain = trend_rows(board, "nps")
    csat_trend, csat_grain = trend_rows(board, "csat")
    by_dept = _by_department(board, conn)
    moves = board.frame("csat", ["department", "month"], compare="previous")
    rate = board.rows("response_rate", [])
    completion = board.rows("completion_rate", [])
    names = {d.key: d.name for d in org.list_departments(conn)}
    movers = records(_latest_significant(moves))
    alerts = [a for a in list_alerts(conn) if a["status"] == "open" and _in_view(a, f)]
    return render(
        request, who, "overview.html", as_of=board.as_of,
        filters=f, span=board.result(span_key), departments=org.list_departments(conn),
        department_names=names,
        kpis=headline, trend=trend, chart=trend_chart(trend, grain, f"NPS by {grain}",
                                                     "NPS (points, -100 to 100)"),
        csat_trend=csat_trend, csat_chart=trend_chart(
            csat_trend, csat_grain, f"CSAT by {csat_grain}", "CSAT (% answering 4 or 5 of 5)"),
        grain=grain, csat_grain=csat_grain,
        by_department=by_dept, headline=HEADLINE, movers=movers,
        response_rate=rate[0] if rate else None, alerts=alerts[:10],
        completion_rate=completion[0] if completion else None,
        rate_descriptions={m: board.metrics[m].description
                           for m in ("response_rate", "completion_rate")},
        # Every customer response in the view (started; completion shown beside it).
        volume=int(completion[0]["n"] or 0) if completion else 0,
        insights=_readable_panels(board.result(insights_key(f)),
                                  readable_departments(conn, scope)),
    )  # fmt: skip


def _in_view(alert: dict[str, Any], f: Filters) -> bool:
    """An alert belongs in a department's view when it is company-wide or about that department."""
    if not f.department:
        return True
    return alert["slice"] in ("", f"department={f.department}")


def _by_department(board: Board, conn: Connection) -> list[dict[str, Any]]:
    """One row per department, every department, with its headline scores (responses at the
    touchpoints it owns) or, where a score is missing, the reason in words."""
    only = board.filters.department  # a manager's view, or a filter: that department alone
    table: dict[str, dict[str, Any]] = {
        d.key: {"department": d.key}
        for d in org.list_departments(conn)
        if only is None or d.key == only
    }
    owned = {t.department_key for t in org.list_touchpoints(conn)}
    for name in HEADLINE:
        found = {r["department"]: r for r in board.rows(name, ["department"])}
        least = board.metrics[name].min_sample
        for key, row in table.items():
            r = found.get(key)
            if r is not None and r.get("value") is not None:
                row[name] = r
            else:
                row[name] = {**(r or {}), "value": None,
                             "reason": _missing(name, key in owned, r, least)}  # fmt: skip
    # Responses with no touchpoint (relationship NPS) belong to no department.
    table.pop(NONE_LABEL, None)
    return sorted(table.values(), key=lambda r: r["department"])


def _missing(metric: str, owns: bool, row: dict[str, Any] | None, least: int) -> str:
    """Why a department has no figure for ``metric``, for a person reading the page."""
    if not owns:
        return "owns no touchpoints"
    n = int((row or {}).get("n") or 0)
    if n == 0:
        return f"no {metric.upper()} answers at its touchpoints"
    return f"fewer than {least} answers (n={n})"


def _latest_significant(df: pd.DataFrame) -> pd.DataFrame:
    """The last period's slices whose change from the period before is significant."""
    if df.empty or "significant" not in df:
        return df.iloc[0:0]
    latest = df[df["month"] == df["month"].max()]
    moved = latest[latest["significant"].fillna(False).astype(bool)]
    return moved.reindex(moved["delta"].abs().sort_values(ascending=False).index)


@router.get("/departments", response_class=HTMLResponse)
def departments_index(
    request: Request,
    who: Principal = Depends(signed_in),
    conn: Connection = Depends(db, scope="function"),
) -> HTMLResponse:
    scope = scope_for(who)
    f = Filters.from_request(request, scope)
    departments = org.list_departments(conn)
    if scope.by_department:
        departments = [d for d in departments if d.key == scope.department_key]
    board = Board(readers(request), catalog(request), f, frame_cache(request))
    board.run([spec(m, ["department"]) for m in HEADLINE])
    scores = {r["department"]: r for r in _by_department(board, conn)}
    return render(request, who, "departments.html", as_of=board.as_of, filters=f,
                  departments=departments,
                  scores=scores, headline=HEADLINE)  # fmt: skip


@router.get("/departments/{key}", response_class=HTMLResponse)
def scorecard(
    key: str, request: Request, who: Principal = Depends(signed_in),
    conn: Connection = Depends(db, scope="function"),
) -> HTMLResponse:  # fmt: skip
    """One department's part of the experience: its touchpoints, trend, comments, neighbours."""
    scope = scope_for(who)
    if scope.by_department and key != scope.department_key:
        raise NotFound(f"department '{key}' does not exist")
    department = org.get_department(conn, key)
    f = Filters.from_request(request, scope)
    f = Filters(f.start, f.end, key, f.segment)
    touchpoints = org.list_touchpoints(conn, key)
    cache = frame_cache(request)
    themes = [t for t in taxonomy.list_themes(conn) if t.department_key == key]
    # One pass over the log serves every department's scorecard for this date range.
    journeys_key = ("journeys", f.start, f.end, f.segment)
    # The themes are part of the key: a refresh recomputes the same question, with its themes.
    impact_key = ("impact", key, f.start, f.end, f.segment,
                  tuple(sorted((t.taxonomy, t.key) for t in themes)))  # fmt: skip
    board = Board(readers(request), catalog(request), f, cache)
    span_key, span_read = span_task(f)
    board.run(
        [*headline_specs(key), *(spec(m, ["touchpoint"]) for m in HEADLINE),
         spec("csat", ["month"]), spec("csat", ["quarter"])],
        {journeys_key: lambda con: journey_map(con, f.start_at, f.end_at, f.segment),
         impact_key: lambda con: (theme_impact(con, themes, Slice(
             since=f.start_at, until=f.end_at, segment=f.segment)) if themes else None),
         insights_key(f): _insights_read(request, f), span_key: span_read},
    )  # fmt: skip
    headline = kpis(board)
    trend, grain = trend_rows(board, "csat")
    by_tp: dict[str, dict[str, Any]] = {}
    for name in HEADLINE:
        for r in board.rows(name, ["touchpoint"]):
            by_tp.setdefault(r["touchpoint"], {})[name] = r
    journeys = board.result(journeys_key).department(key)
    impact = board.result(impact_key)
    # Comments are personal data: agents work from their cases, not from scorecards.
    comments = (
        []
        if scope.by_team
        else feedback.explore(
            conn,
            scope,
            feedback.Query(
                start=f.start_at, end=f.end_at, department=key, segment=f.segment, limit=8
            ),
        ).rows
    )
    people = _people_panel(request, key)
    return render(
        request, who, "scorecard.html", as_of=board.as_of, people=people,
        span=board.result(span_key),
        department=department, filters=f, kpis=headline, touchpoints=touchpoints,
        by_touchpoint=by_tp, chart=trend_chart(
            trend, grain, f"CSAT at {department.name} by {grain}",
            "CSAT (% answering 4 or 5 of 5)"), grain=grain,
        trend=trend, metrics=HEADLINE, journeys=journeys, impact=impact, comments=comments,
        department_names={d.key: d.name for d in org.list_departments(conn)},
        personal=scope.personal_data, insights=board.result(insights_key(f)).department(key),
        insights_notes=board.result(insights_key(f)).notes,
    )  # fmt: skip


def _people_panel(request: Request, department: str) -> dict[str, Any]:
    """The department's and its teams' eNPS (whole range), under the confidentiality rule."""
    minimum = request.app.state.settings.employee_min_group
    engine = get_engine(request)
    depts = employees.pulse_results(engine, "department", minimum=minimum)
    teams = employees.pulse_results(engine, "team", minimum=minimum)
    return {
        "minimum": minimum,
        "department": next((d for d in depts if d.key == department), None),
        "teams": [t for t in teams if t.department_key == department],
    }

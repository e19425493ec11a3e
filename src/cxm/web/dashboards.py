"""Dashboards: the CX lead's overview and one scorecard per department.

Every number comes from the metrics layer (``cxm.metrics.compute``); pages only arrange it.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import pandas as pd
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from ibis.backends import BaseBackend
from sqlalchemy.engine import Connection

from cxm.errors import NotFound
from cxm.feedback import service as feedback
from cxm.journeys.analytics import journey_map
from cxm.metrics import Metric, compute
from cxm.metrics.analytics import NONE_LABEL
from cxm.metrics.service import list_alerts, read_targets
from cxm.org import service as org
from cxm.org.auth import Principal
from cxm.org.scope import scope_for
from cxm.org.security import db, get_engine
from cxm.store.analytics import ReaderPool
from cxm.text import taxonomy
from cxm.text.analytics import Slice, theme_impact
from cxm.web.charts import trend_chart
from cxm.web.filters import Filters
from cxm.web.pages import catalog, render
from cxm.web.sessions import signed_in

router = APIRouter(include_in_schema=False)
HEADLINE = ("nps", "csat", "ces")
_METRIC = "metric"  # marks the cache keys of metric results
TARGETS = ("targets",)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as plain dicts with NaN turned into None (templates test for None)."""
    return [{str(k): _clean(v) for k, v in row.items()} for row in df.to_dict("records")]


Spec = tuple[str, tuple[str, ...], tuple[tuple[str, Any], ...]]


def spec(name: str, by: Sequence[str] = (), **kw: Any) -> Spec:
    return (name, tuple(by), tuple(sorted(kw.items())))


class FrameCache:
    """Metric results shared by every page view for ``ttl`` seconds.

    Dashboards ask the same questions again and again; a minute-old answer is fine for them
    and each page says when its figures were computed. The API and CLI never use this.
    """

    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self._items: dict[tuple[Any, ...], tuple[float, dt.datetime, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> tuple[dt.datetime, Any] | None:
        with self._lock:
            item = self._items.get(key)
        if item is None or time.monotonic() - item[0] > self.ttl:
            return None
        return item[1], item[2]

    def put(self, key: tuple[Any, ...], frame: Any) -> None:
        with self._lock:
            if len(self._items) > 2000:  # bounded: drop the oldest half
                for old in sorted(self._items, key=lambda k: self._items[k][0])[:1000]:
                    del self._items[old]
            self._items[key] = (time.monotonic(), dt.datetime.now(dt.UTC), frame)


def frame_cache(request: Request) -> FrameCache:
    cache: FrameCache | None = getattr(request.app.state, "frame_cache", None)
    if cache is None:
        cache = FrameCache()
        request.app.state.frame_cache = cache
    return cache


def readers(request: Request) -> ReaderPool:
    """The app's pool of analytics connections, opened on the first dashboard view."""
    pool: ReaderPool | None = getattr(request.app.state, "readers", None)
    if pool is None:
        pool = ReaderPool(get_engine(request))
        request.app.state.readers = pool
    return pool


Read = Callable[[BaseBackend], Any]


class Board:
    """One page's reads: metric queries and the page's other reads, run side by side.

    A page names every read it needs up front (``run``); they execute on the app's reader
    pool, then the page takes the results. Results come from the app's ``FrameCache`` when it
    has them.
    """

    def __init__(self, readers: ReaderPool, metrics: dict[str, Metric], f: Filters,
                 cache: FrameCache | None = None) -> None:  # fmt: skip
        self.readers, self.metrics, self.filters, self.cache = readers, metrics, f, cache
        self.as_of: dt.datetime | None = None
        self._results: dict[Any, Any] = {}
        self._targets: pd.DataFrame | None = None

    def _compute(self, key: Spec, backend: BaseBackend) -> pd.DataFrame:
        name, by, kw = key
        f = self.filters
        return compute(backend, name, list(by), start=f.start_at, end=f.end_at,
                       filters=f.metric_filters(), metrics=self.metrics, targets=self._targets,
                       **dict(kw))  # fmt: skip

    def _cache_key(self, key: Spec) -> tuple[Any, ...]:
        f = self.filters
        return (key, f.start, f.end, f.department, f.segment, _METRIC)

    def run(self, specs: Sequence[Spec],
            tasks: Mapping[tuple[Any, ...], Read] | None = None) -> None:  # fmt: skip
        """Compute ``specs`` (metric queries) and ``tasks`` (other reads of the page, keyed for
        the cache) side by side; what the cache holds is not computed again."""
        todo: dict[tuple[Any, ...], Read] = {}
        for key, make in (tasks or {}).items():  # first: they are the longer reads
            if key not in self._results:
                todo[key] = make
        specs = [key for key in dict.fromkeys(specs) if key not in self._results]
        for key in specs:
            todo[self._cache_key(key)] = partial(self._compute, key)
        if specs and self._targets is None:
            # One read of the targets for all the page's metrics.
            cached = self.cache.get(TARGETS) if self.cache else None
            self._targets = cached[1] if cached else self.readers.map([read_targets])[0]
            if self.cache and not cached:
                self.cache.put(TARGETS, self._targets)
        keys = list(todo)
        for key in keys:
            cached = self.cache.get(key) if self.cache else None
            if cached is not None:
                when, self._results[self._local_key(key)] = cached
                self.as_of = min(self.as_of or when, when)
                del todo[key]
        if not todo:
            return
        made = self.readers.map(list(todo.values()))
        for key, value in zip(todo, made, strict=True):
            self._results[self._local_key(key)] = value
            if self.cache:
                self.cache.put(key, value)
        self.as_of = self.as_of or dt.datetime.now(dt.UTC)

    def _local_key(self, key: tuple[Any, ...]) -> Any:
        """Metric results are kept by their spec; other tasks by their own key."""
        return key[0] if key and key[-1] == _METRIC else key

    def result(self, key: tuple[Any, ...]) -> Any:
        """What a task given to ``run`` produced."""
        return self._results[key]

    def frame(self, name: str, by: Sequence[str] = (), **kw: Any) -> pd.DataFrame:
        key = spec(name, by, **kw)
        if key not in self._results:
            self.run([key])
        return self._results[key]

    def rows(self, name: str, by: Sequence[str] = (), **kw: Any) -> list[dict[str, Any]]:
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
    board = Board(readers(request), catalog(request), f, frame_cache(request))
    board.run([
        *(spec(m) for m in HEADLINE), *(spec(m, ["department"]) for m in HEADLINE),
        spec("nps", ["month"]), spec("csat", ["month"]), spec("response_rate"),
        spec("csat", ["department", "month"], compare="previous"),
    ])  # fmt: skip
    headline = kpis(board)
    trend = board.rows("nps", ["month"])
    csat_trend = board.rows("csat", ["month"])
    by_dept = _by_department(board)
    moves = board.frame("csat", ["department", "month"], compare="previous")
    rate = board.rows("response_rate", [])
    names = {d.key: d.name for d in org.list_departments(conn)}
    movers = records(_latest_significant(moves))
    alerts = [a for a in list_alerts(conn) if a["status"] == "open" and _in_view(a, f)]
    return render(
        request, who, "overview.html", as_of=board.as_of,
        filters=f, departments=org.list_departments(conn), department_names=names,
        kpis=headline, trend=trend, chart=trend_chart(trend, "month", "NPS by month"),
        csat_trend=csat_trend, csat_chart=trend_chart(csat_trend, "month", "CSAT by month"),
        by_department=by_dept, headline=HEADLINE, movers=movers,
        response_rate=rate[0] if rate else None, alerts=alerts[:10],
        response_rate_description=board.metrics["response_rate"].description,
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
    board = Board(readers(request), catalog(request), f, frame_cache(request))
    board.run([spec(m, ["department"]) for m in HEADLINE])
    scores = {r["department"]: r for r in _by_department(board)}
    return render(request, who, "departments.html", as_of=board.as_of, filters=f,
                  departments=departments,
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
    cache = frame_cache(request)
    themes = [t for t in taxonomy.list_themes(conn) if t.department_key == key]
    # One pass over the log serves every department's scorecard for this date range.
    journeys_key = ("journeys", f.start, f.end)
    impact_key = ("impact", key, f.start, f.end)
    board = Board(readers(request), catalog(request), f, cache)
    board.run(
        [*(spec(m) for m in HEADLINE), *(spec(m, ["touchpoint"]) for m in HEADLINE),
         spec("csat", ["month"])],
        {journeys_key: lambda con: journey_map(con, f.start_at, f.end_at),
         impact_key: lambda con: (theme_impact(con, themes, Slice(since=f.start_at,
                                                                  until=f.end_at))
                                  if themes else None)},
    )  # fmt: skip
    headline = kpis(board)
    trend = board.rows("csat", ["month"])
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
            conn, scope, feedback.Query(start=f.start_at, end=f.end_at, department=key, limit=8)
        ).rows
    )
    return render(
        request, who, "scorecard.html", as_of=board.as_of,
        department=department, filters=f, kpis=headline, touchpoints=touchpoints,
        by_touchpoint=by_tp, chart=trend_chart(trend, "month", f"CSAT at {department.name}"),
        trend=trend, metrics=HEADLINE, journeys=journeys, impact=impact, comments=comments,
        department_names={d.key: d.name for d in org.list_departments(conn)},
        personal=scope.personal_data,
    )  # fmt: skip

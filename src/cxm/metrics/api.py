"""REST endpoints for metrics: definitions, computed slices, targets and alerts (HTTP only)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from cxm.errors import Invalid
from cxm.metrics import service
from cxm.metrics.definitions import Metric, installation_dir, load
from cxm.org.auth import Principal
from cxm.org.scope import check_slice_dimensions, scope_for, suppress_small_slices
from cxm.org.security import db, get_engine, require

router = APIRouter(tags=["metrics"])
read = Depends(require("read"))
admin = Depends(require("admin"))


class TargetBody(BaseModel):
    target: float
    dimension: str = Field("", description="slice dimension, e.g. department (empty = overall)")
    value: str = Field("", description="slice value, e.g. service (empty = overall)")


def definitions(request: Request) -> dict[str, Metric]:
    return load(installation_dir(request.app.state.settings.data_dir))


def _parse_filters(items: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        dim, sep, value = item.partition("=")
        if not sep or not dim or not value:
            raise Invalid(f"filter: {item!r} is not DIMENSION=VALUE (e.g. department=service)")
        out.setdefault(dim.strip(), []).extend(v.strip() for v in value.split("|"))
    return out


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


@router.get("/metrics", dependencies=[read])
def list_metrics(request: Request) -> list[dict[str, Any]]:
    return [m.summary() for m in definitions(request).values()]


@router.get("/metrics/alerts", dependencies=[read])
def list_alerts(metric: str | None = None, conn: Connection = Depends(db)) -> list[dict[str, Any]]:
    return service.list_alerts(conn, metric)


@router.get("/metrics/targets", dependencies=[read])
def list_targets(conn: Connection = Depends(db)) -> list[dict[str, Any]]:
    return service.list_targets(conn)


@router.put("/metrics/{name}/target", dependencies=[admin])
def set_target(
    name: str, body: TargetBody, request: Request, conn: Connection = Depends(db)
) -> dict[str, Any]:
    service.set_target(conn, definitions(request), name, body.target, body.dimension, body.value)
    return {"metric": name, **body.model_dump()}


@router.get("/metrics/{name}")
def compute_metric(
    name: str,
    request: Request,
    who: Principal = Depends(require("read")),
    by: str = Query("", description="comma-separated dimensions, e.g. department,month"),
    start: dt.datetime | None = Query(None, description="inclusive, ISO 8601 with time zone"),
    end: dt.datetime | None = Query(None, description="exclusive, ISO 8601 with time zone"),
    filter: list[str] = Query([], description="DIMENSION=VALUE[|VALUE...], repeatable"),
    compare: str | None = Query(None, description="previous | rest"),
) -> dict[str, Any]:
    metrics = definitions(request)
    start, end = (v.replace(tzinfo=dt.UTC) if v and v.tzinfo is None else v for v in (start, end))
    dims = [d.strip() for d in by.split(",") if d.strip()]
    filters = _parse_filters(filter)
    settings = request.app.state.settings
    scope = scope_for(who)
    check_slice_dimensions(scope, [*dims, *filters], settings.personal_traits)
    df = service.compute(
        get_engine(request),
        name,
        dims,
        start=start,
        end=end,
        filters=filters,
        compare=compare,
        metrics=metrics,
    )
    rows: list[dict[str, Any]] = [
        {str(k): _clean(v) for k, v in rec.items()} for rec in df.to_dict("records")
    ]
    for row in rows:
        row["flags"] = [f for f in str(row["flags"] or "").split(",") if f]
    rows, suppressed = suppress_small_slices(scope, rows, bool(dims), settings.min_slice_size)
    out: dict[str, Any] = {"metric": metrics[name].summary(), "by": dims, "rows": rows}
    if suppressed:
        out["suppressed"] = suppressed
    return out

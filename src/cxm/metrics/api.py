"""REST endpoints for metrics: definitions, computed slices, targets and alerts (HTTP only)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from cxm.apitypes import Record
from cxm.errors import Invalid, responses
from cxm.metrics import service
from cxm.metrics.definitions import Metric, installation_dir, load
from cxm.metrics.slices import parse_bins
from cxm.org.auth import Principal
from cxm.org.scope import (
    check_slice_dimensions,
    partner_filters,
    scope_for,
    suppress_small_slices,
)
from cxm.org.security import db, get_engine, require

router = APIRouter(tags=["metrics"])
read = Depends(require("read"))
admin = Depends(require("admin"))


class TargetBody(BaseModel):
    target: float
    dimension: str = Field("", description="slice dimension, e.g. department (empty = overall)")
    value: str = Field("", description="slice value, e.g. service (empty = overall)")


class MetricSummary(Record):
    """A metric's one company-wide definition, as listed."""

    name: str
    description: str | None = None
    kind: str
    unit: str | None = None
    direction: str | None = None
    target: float | None = None
    min_sample: int | None = None


class MetricRow(Record):
    """One slice: the ``by`` dimensions' values, then the value with its interval and sample."""

    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    flags: list[str] = Field(default_factory=list)


class MetricResult(BaseModel):
    metric: MetricSummary
    by: list[str]
    rows: list[MetricRow]
    # Slices left out because they hold fewer answers than the minimum a role without
    # personal-data access may see (CXM_MIN_SLICE_SIZE); 0 for everyone else.
    suppressed: int = 0


class TargetOut(BaseModel):
    metric: str
    target: float
    dimension: str
    value: str


# /metrics/alerts and /metrics/targets are routes, never metric names.
MetricName = Annotated[str, PathParam(json_schema_extra={"not": {"enum": ["alerts", "targets"]}})]


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
def list_metrics(request: Request) -> list[MetricSummary]:
    return [MetricSummary.model_validate(m.summary()) for m in definitions(request).values()]


@router.get("/metrics/alerts", dependencies=[read])
def list_alerts(
    metric: str | None = None, conn: Connection = Depends(db, scope="function")
) -> list[Record]:
    return [Record.model_validate(a) for a in service.list_alerts(conn, metric)]


@router.get("/metrics/targets", dependencies=[read])
def list_targets(conn: Connection = Depends(db, scope="function")) -> list[Record]:
    return [Record.model_validate(t) for t in service.list_targets(conn)]


@router.put("/metrics/{name}/target", dependencies=[admin], responses=responses(404))
def set_target(
    name: MetricName,
    body: TargetBody,
    request: Request,
    conn: Connection = Depends(db, scope="function"),
) -> TargetOut:
    service.set_target(conn, definitions(request), name, body.target, body.dimension, body.value)
    return TargetOut(metric=name, **body.model_dump())


@router.get("/metrics/{name}", responses=responses(404))
def compute_metric(
    name: MetricName,
    request: Request,
    who: Principal = Depends(require("read")),
    by: str = Query("", description="comma-separated dimensions, e.g. department,month"),
    start: dt.datetime | None = Query(None, description="inclusive, ISO 8601 with time zone"),
    end: dt.datetime | None = Query(None, description="exclusive, ISO 8601 with time zone"),
    filter: list[str] = Query([], description="DIMENSION=VALUE[|VALUE...], repeatable"),
    compare: str | None = Query(None, description="previous | rest"),
    bins: list[str] = Query(
        [],
        description="cut a number or date slice at edges: EDGES (e.g. 0,6,12,24) for the one "
        "trait:/trigger: dimension in by, or DIMENSION=EDGES; repeatable",
    ),
) -> MetricResult:
    metrics = definitions(request)
    start, end = (v.replace(tzinfo=dt.UTC) if v and v.tzinfo is None else v for v in (start, end))
    dims = [d.strip() for d in by.split(",") if d.strip()]
    filters = _parse_filters(filter)
    settings = request.app.state.settings
    scope = scope_for(who)
    check_slice_dimensions(scope, [*dims, *filters], settings.personal_traits)
    filters = partner_filters(scope, filters)
    df = service.compute(
        get_engine(request),
        name,
        dims,
        start=start,
        end=end,
        filters=filters,
        compare=compare,
        metrics=metrics,
        bins=parse_bins(bins, dims),
    )
    rows: list[dict[str, Any]] = [
        {str(k): _clean(v) for k, v in rec.items()} for rec in df.to_dict("records")
    ]
    for row in rows:
        row["flags"] = [f for f in str(row["flags"] or "").split(",") if f]
    rows, suppressed = suppress_small_slices(scope, rows, bool(dims), settings.min_slice_size)
    return MetricResult.model_validate(
        {"metric": metrics[name].summary(), "by": dims, "rows": rows, "suppressed": suppressed}
    )

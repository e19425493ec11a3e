"""REST endpoints for insights: attribution, key drivers, predictions (HTTP only).

Every figure is narrowed to what the caller's role reads (``cxm.org.scope``): a manager sees
their own department's signals and drivers, and a customer's prediction only when the
customer is theirs to read.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from sqlalchemy.engine import Connection

from cxm.customer360 import service as c360
from cxm.errors import NotFound, responses
from cxm.insights import facts, service
from cxm.insights.analytics import WINDOW_DAYS
from cxm.insights.schemas import AttributionOut, DriversOut, PredictionOut, RevenueOut
from cxm.org.auth import Principal
from cxm.org.scope import (
    TeamReach,
    customer_not_found,
    readable_customer,
    readable_departments,
    scope_for,
)
from cxm.org.security import db, get_engine, require

router = APIRouter(tags=["insights"])


@router.get(
    "/insights/attribution",
    response_model=AttributionOut,
    responses=responses(422),
)
def attribution(
    request: Request,
    outcome: str = Query(
        "nps", description="nps | churn | a metric of survey answers (csat, csat_mean, ces, ...)"
    ),
    window: int = Query(WINDOW_DAYS, ge=1, le=3650, description="days a signal counts before"),
    survey: str | None = Query(None, description="one survey's answers (nps only)"),
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db, scope="function"),
) -> AttributionOut:
    """What each signal, and each department through its signals, costs in NPS or churn
    (a manager: their department's signals only)."""
    result = service.attribution(
        get_engine(request), request.app.state.settings.data_dir, outcome, window, survey
    )
    mine = service.scope_attribution(result, readable_departments(conn, scope_for(who)))
    return AttributionOut.model_validate(mine.to_dict())


@router.get("/insights/drivers", response_model=DriversOut, responses=responses(422))
def drivers(
    request: Request,
    outcome: Literal["nps", "csat", "churn"] = Query("nps", description="nps | csat | churn"),
    window: int = Query(WINDOW_DAYS, ge=1, le=3650, description="days a signal counts before"),
    bootstrap: int = Query(200, ge=0, le=2000, description="resamples for the intervals"),
    seed: int = Query(7, description="seed of the bootstrap"),
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db, scope="function"),
) -> DriversOut:
    """Key drivers: importance (Johnson's relative weights, bootstrap intervals) and
    performance of every signal, theme and survey attribute, with their quadrant; and the
    importance summed per department (a manager: their department's drivers only)."""
    result = service.drivers(get_engine(request), request.app.state.settings.data_dir,
                             outcome, window, bootstrap, seed)  # fmt: skip
    mine = service.scope_drivers(result, readable_departments(conn, scope_for(who)))
    return DriversOut.model_validate(mine.to_dict())


@router.get("/insights/revenue", response_model=RevenueOut, responses=responses(422))
def revenue(
    request: Request,
    reduce: float = Query(50.0, ge=0, le=100, description="percent a signal's reach falls by"),
    window: int = Query(WINDOW_DAYS, ge=1, le=3650, description="days a signal counts before"),
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db, scope="function"),
) -> RevenueOut:
    """Revenue at risk by NPS category and by signal, and the customers and annual revenue
    kept if a signal's reach fell by ``reduce`` percent (a manager: their signals only)."""
    result = service.revenue(get_engine(request), request.app.state.settings.data_dir,
                             reduce / 100, window)  # fmt: skip
    mine = service.scope_revenue(result, readable_departments(conn, scope_for(who)))
    return RevenueOut.model_validate(mine.to_dict())


@router.get(
    "/insights/predictions/{customer_id}",
    response_model=PredictionOut,
    responses=responses(404),
)
def prediction(
    customer_id: str,
    request: Request,
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db, scope="function"),
) -> Any:
    """One customer's churn risk and predicted NPS with their top three reasons, from the
    latest ``cxm insights predict``; 404 for an unknown customer, one outside the caller's
    scope, or one without a prediction."""
    try:
        found = c360.profile(conn, customer_id)
    except NotFound:
        raise customer_not_found() from None
    reach: TeamReach | None = getattr(request.app.state, "team_reach", None)
    profile = readable_customer(conn, scope_for(who), found, reach)
    row = facts.prediction_for(conn, profile["id"])
    if row is None:
        raise NotFound(
            f"customer {profile['id']} has no prediction: run 'cxm insights predict' "
            "(customers who have churned are not scored)"
        )
    return jsonable_encoder(row)

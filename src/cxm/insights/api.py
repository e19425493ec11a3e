"""REST endpoints for insights: department attribution (HTTP only)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from cxm.errors import responses
from cxm.insights import service
from cxm.insights.analytics import WINDOW_DAYS
from cxm.insights.schemas import AttributionOut
from cxm.org.security import get_engine, require

router = APIRouter(tags=["insights"])
read = Depends(require("read"))


@router.get(
    "/insights/attribution",
    dependencies=[read],
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
) -> AttributionOut:
    """What each signal, and each department through its signals, costs in NPS or churn."""
    result = service.attribution(
        get_engine(request), request.app.state.settings.data_dir, outcome, window, survey
    )
    return AttributionOut.model_validate(result.to_dict())

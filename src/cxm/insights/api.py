"""REST endpoints for insights: attribution, key drivers, predictions (HTTP only).

Every figure is narrowed to what the caller's role reads (``cxm.org.scope``): a manager sees
their own department's signals and drivers, and a customer's prediction only when the
customer is theirs to read.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from sqlalchemy.engine import Connection

from cxm.customer360 import service as c360
from cxm.errors import Forbidden, NotFound, responses
from cxm.insights import facts, jobs, service
from cxm.insights.analytics import WINDOW_DAYS
from cxm.insights.schemas import (
    AttributionOut,
    DriversOut,
    JobProgressOut,
    ModelJobOut,
    ModelRunIn,
    PredictionOut,
    RevenueOut,
    ScoringResultOut,
    TrainingResultOut,
)
from cxm.org.auth import Principal
from cxm.org.scope import (
    TeamReach,
    customer_not_found,
    readable_customer,
    readable_departments,
    scope_for,
)
from cxm.org.security import db, get_engine, require
from cxm.store import jobs as job_store

router = APIRouter(tags=["insights"])
# Running the models reads every customer and (scoring) replaces every stored prediction:
# for the roles that see the whole company.
MODEL_ROLES = ("admin", "cx_lead")


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


@router.get("/insights/drivers", response_model=DriversOut, responses=responses(404, 422))
def drivers(
    request: Request,
    outcome: Literal["nps", "csat", "churn"] = Query("nps", description="nps | csat | churn"),
    window: int = Query(WINDOW_DAYS, ge=1, le=3650, description="days a signal counts before"),
    bootstrap: int = Query(200, ge=0, le=2000, description="resamples for the intervals"),
    seed: int = Query(7, description="seed of the bootstrap"),
    survey: str | None = Query(
        None, description="one survey's answers, its rated questions as drivers (nps, csat)"
    ),
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db, scope="function"),
) -> DriversOut:
    """Key drivers: importance (Johnson's relative weights, bootstrap intervals) and
    performance of every signal, theme and survey attribute, with their quadrant; and the
    importance summed per department (a manager: their department's drivers only)."""
    result = service.drivers(get_engine(request), request.app.state.settings.data_dir,
                             outcome, window, bootstrap, seed, survey)  # fmt: skip
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


def _requester(who: Principal) -> dict[str, str | None]:
    return {"scope": who.scope, "role": who.role, "user_id": who.user_id,
            "department_key": who.department_key, "team_key": who.team_key}  # fmt: skip


def _job_out(request: Request, found: job_store.JobState) -> ModelJobOut:
    progress = None
    if found.stage is not None:
        progress = JobProgressOut(stage=found.stage, done=found.done or 0, total=found.total or 0)
    error = (found.last_error or "").split(": ", 1)[-1] or None
    result: ScoringResultOut | TrainingResultOut | None = None
    if found.result is not None:
        model = ScoringResultOut if found.kind == jobs.PREDICT else TrainingResultOut
        result = model.model_validate(found.result)
    return ModelJobOut(
        id=found.id,
        kind=found.kind.rsplit(".", 1)[-1],
        url=str(request.url_for("insights_job", job_id=found.id)),
        state=found.status,
        progress=progress,
        error=error if found.status == "failed" else None,
        result=result,
    )


def _start(
    kind: str, request: Request, response: Response, body: ModelRunIn | None, who: Principal,
    conn: Connection,
) -> ModelJobOut:  # fmt: skip
    if who.role not in MODEL_ROLES:
        raise Forbidden(
            f"training and scoring the models is for admins and CX leads (role 'cx_lead'); "
            f"your role is '{who.role}'"
        )
    body = body or ModelRunIn.model_validate({})
    jobs.check_trainable(get_engine(request), request.app.state.settings.data_dir,
                         body.lead_hours)  # fmt: skip
    job_id = jobs.start(
        conn, kind, seed=body.seed, window_days=body.window, lead_hours=body.lead_hours,
        traits=body.traits, requested_by=_requester(who), top=body.top,
    )  # fmt: skip
    found = job_store.state(conn, job_id)
    assert found is not None  # enqueued in this transaction
    out = _job_out(request, found)
    response.headers["Location"] = out.url
    return out


@router.post(
    "/insights/predict",
    status_code=202,
    response_model=ModelJobOut,
    responses=responses(403, 409),
)
def start_predict(
    request: Request,
    response: Response,
    body: ModelRunIn | None = None,
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db, scope="function"),
) -> ModelJobOut:
    """Score every customer who has not churned (churn risk, predicted NPS, three reasons) and
    store the scores, replacing the previous ones, as ``cxm insights predict`` does. Answers
    202 at once with the job to poll (``GET`` its ``url``); admins and CX leads only (403);
    409 when no model can be trained (no lifecycle, too few customers, no churner)."""
    return _start(jobs.PREDICT, request, response, body, who, conn)


@router.post(
    "/insights/train",
    status_code=202,
    response_model=ModelJobOut,
    responses=responses(403, 409),
)
def start_train(
    request: Request,
    response: Response,
    body: ModelRunIn | None = None,
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db, scope="function"),
) -> ModelJobOut:
    """Train on 70% of the customers and report the holdout ROC AUC, Brier score and
    calibration table, as ``cxm insights train`` does (nothing is stored but the report).
    Answers 202 with the job to poll; admins and CX leads only (403); 409 when no model can
    be trained."""
    return _start(jobs.TRAIN, request, response, body, who, conn)


@router.get(
    "/insights/jobs/{job_id}",
    name="insights_job",
    response_model=ModelJobOut,
    responses=responses(404),
)
def model_job(
    job_id: str,
    request: Request,
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db, scope="function"),
) -> ModelJobOut:
    """A training or scoring job's state and progress and, once done, its result. Only the
    caller who started it (same key or user, same role) may read it; others get 404."""
    found = job_store.state(conn, job_id)
    if (
        found is None
        or found.kind not in jobs.KINDS
        or found.payload.get("requested_by") != _requester(who)
    ):
        raise NotFound(f"insights job '{job_id}' does not exist")
    return _job_out(request, found)

"""REST endpoints for text analytics: annotations, themes with impact, taxonomies, discovery."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection

from cxm.apitypes import Page, paging
from cxm.errors import NotFound, responses
from cxm.metrics.api import definitions
from cxm.org.auth import Principal
from cxm.org.scope import readable_comment_touchpoints, scope_for
from cxm.org.security import db, get_engine, require
from cxm.store import jobs as job_store
from cxm.text import analytics, jobs, schemas, service, taxonomy, themes
from cxm.yamldoc import YamlDoc

router = APIRouter(prefix="/text", tags=["text"])
read = Depends(require("read"))
admin = Depends(require("admin"))
Paging = Annotated[Page, Depends(paging(100))]


class DiscoverRequest(BaseModel):
    """Which comments to cluster: a survey and period (all when left out), and how."""

    survey: str | None = None
    period: str | None = Field(default=None, description="YYYY, YYYY-MM, YYYY-Qn or Nd")
    k: int | None = Field(default=None, ge=2, le=50, description="number of themes (None: chosen)")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    vectors: themes.Vectors = "auto"
    stop_names: list[str] = Field(
        default_factory=list, max_length=200,
        description="names to strip before clustering, beside the company's name (brands)",
    )  # fmt: skip


class JobProgress(BaseModel):
    stage: str
    done: int
    total: int


class DiscoveryJob(BaseModel):
    """A theme discovery job: poll ``url`` until ``state`` is done (``result``) or failed."""

    id: str
    url: str
    state: Literal["pending", "running", "done", "failed"]
    progress: JobProgress | None = None
    error: str | None = Field(None, description="why it failed, when state is failed")
    result: schemas.DiscoveryOut | None = None


def _requester(who: Principal) -> dict[str, str | None]:
    return {"scope": who.scope, "role": who.role, "user_id": who.user_id,
            "department_key": who.department_key, "team_key": who.team_key}  # fmt: skip


def _job_out(request: Request, found: job_store.JobState, who: Principal) -> DiscoveryJob:
    progress = None
    if found.stage is not None:
        progress = JobProgress(stage=found.stage, done=found.done or 0, total=found.total or 0)
    error = (found.last_error or "").split(": ", 1)[-1] or None
    return DiscoveryJob(
        id=found.id,
        url=str(request.url_for("discovery_job", job_id=found.id)),
        state=found.status,  # type: ignore[arg-type]
        progress=progress,
        error=error if found.status == "failed" else None,
        result=_readable_result(found.result, who) if found.result else None,
    )


def _readable_result(result: dict[str, object], who: Principal) -> schemas.DiscoveryOut:
    """A discovery's themes as the caller may read them: no verbatim examples for roles
    without personal-data access (viewers)."""
    found = schemas.DiscoveryOut.model_validate(result)
    if not scope_for(who).personal_data:
        found.themes = [t.model_copy(update={"examples": []}) for t in found.themes]
    return found


def _slice(conn: Connection, survey: str | None, period: str | None) -> analytics.Slice:
    since, until = service.period_bounds(period) if period else (None, None)
    return analytics.Slice(survey=survey, since=since, until=until)


@router.get("/annotations")
def list_annotations(
    page: Paging,
    source: str = Query("survey_response", description="text source, e.g. survey_response"),
    model: str | None = Query(None, description="e.g. lexicon:vader-3.3.2"),
    label: str | None = Query(None, description="negative | neutral | positive | unscored"),
    theme: str | None = Query(None, description="theme key"),
    taxonomy_key: str | None = Query(None, alias="taxonomy"),
    department: str | None = Query(None, description="themes owned by this department"),
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db, scope="function"),
) -> list[schemas.AnnotationOut]:
    found = service.list_annotations(
        conn, source, model=model, label=label, theme=theme, taxonomy=taxonomy_key,
        department=department, limit=page.limit, offset=page.offset,
    )  # fmt: skip
    if scope_for(who).everything:
        return found
    # Sentences quote the comment itself: free text from any department, so only roles that
    # see everything get them; the labels, scores and themes stay.
    return [a.model_copy(update={"sentences": None}) for a in found]


@router.get("/languages")
def languages(
    request: Request,
    survey: str | None = None,
    period: str | None = Query(None, description="YYYY, YYYY-MM, YYYY-Qn or Nd"),
    model: str | None = Query(None, description="default: the newest lexicon-tier model"),
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db, scope="function"),
) -> schemas.LanguagesReport:
    """Comments per language: how many got a sentiment score and, for the others, why not
    ("not scored: language xx"). Counts only the comments the caller may read."""
    where = _slice(conn, survey, period)
    readable = readable_comment_touchpoints(conn, scope_for(who))
    if readable is not None:
        where = analytics.Slice(survey=where.survey, since=where.since, until=where.until,
                                touchpoints=frozenset(readable))  # fmt: skip
    return service.languages(get_engine(request), where, model)


@router.get("/themes", dependencies=[read], responses=responses(404))
def theme_impact(
    request: Request,
    taxonomy_key: str = Query("starter", alias="taxonomy"),
    survey: str | None = None,
    period: str | None = Query(None, description="YYYY, YYYY-MM, YYYY-Qn or Nd"),
    department: str | None = Query(None, description="only themes this department owns"),
    metric: str | None = Query(
        None,
        description="a metric of survey answers (nps, csat, csat_mean, ces, a custom rating) "
        "or churn; default: the NPS of the answers in the slice",
    ),
    conn: Connection = Depends(db, scope="function"),
) -> schemas.ImpactReport:
    """Themes of a taxonomy with volume, share of unfavourable answers and their impact on a
    metric with intervals; ``note`` says in words when there is nothing to compute."""
    outcome = analytics.SLICE_NPS
    if metric:
        outcome = analytics.outcome(definitions(request), metric)
    found = taxonomy.list_themes(conn, taxonomy_key)
    if department:
        found = [t for t in found if t.department_key == department]
    where = _slice(conn, survey, period)
    return analytics.theme_impact(get_engine(request), found, where, outcome=outcome)


@router.post("/themes/discover", status_code=202, response_model=DiscoveryJob)
def start_discovery(
    request: Request,
    response: Response,
    body: DiscoverRequest | None = None,
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db, scope="function"),
) -> DiscoveryJob:
    """Start clustering the comments of a survey and period into themes (deterministic for a
    seed); answers 202 at once with the job to poll (``GET`` its ``url``)."""
    body = body or DiscoverRequest()
    # Only the comments the caller may read are clustered: a manager's or agent's
    # department's, every one for admin and cx_lead; a viewer's themes come without verbatim
    # examples (removed when the result is read).
    scope = scope_for(who)
    readable = readable_comment_touchpoints(conn, scope)
    touchpoints = sorted(readable) if readable is not None and scope.personal_data else None
    job_id = jobs.start_discovery(
        conn, survey=body.survey, period=body.period, k=body.k, seed=body.seed,
        vectors=body.vectors, requested_by=_requester(who), touchpoints=touchpoints,
        stop_names=body.stop_names,
    )  # fmt: skip
    found = job_store.state(conn, job_id)
    assert found is not None  # enqueued in this transaction
    out = _job_out(request, found, who)
    response.headers["Location"] = out.url
    return out


@router.get("/themes/discover/{job_id}", name="discovery_job", response_model=DiscoveryJob,
            responses=responses(404))  # fmt: skip
def discovery_job(
    job_id: str,
    request: Request,
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db, scope="function"),
) -> DiscoveryJob:
    """A discovery job's state and progress and, once done, its themes. Only the caller who
    started it (same key or user, same role) may read it; others get 404."""
    found = job_store.state(conn, job_id)
    if (
        found is None
        or found.kind != jobs.DISCOVER
        or (found.payload.get("requested_by") != _requester(who))
    ):
        raise NotFound(f"discovery job '{job_id}' does not exist")
    return _job_out(request, found, who)


@router.get("/taxonomies/{key}", dependencies=[read], responses=responses(404))
def get_taxonomy(key: str, conn: Connection = Depends(db, scope="function")) -> list[schemas.Theme]:
    return taxonomy.list_themes(conn, key)


@router.put("/taxonomies", dependencies=[admin], responses=responses(404))
def put_taxonomy(
    body: dict[str, object] = Body(..., description="a taxonomy document (the YAML as JSON)"),
    conn: Connection = Depends(db, scope="function"),
) -> schemas.ApplySummary:
    """Create or replace a taxonomy; texts are tagged with it on their next annotation."""
    return taxonomy.apply(conn, YamlDoc(body, "request body"))

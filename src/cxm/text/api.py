"""REST endpoints for text analytics: annotations, themes with impact, taxonomies, discovery."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Body, Depends, Query, Request
from sqlalchemy.engine import Connection

from cxm.org.auth import Principal
from cxm.org.scope import readable_comment_touchpoints, scope_for
from cxm.org.security import db, get_engine, require
from cxm.text import analytics, schemas, service, taxonomy, themes
from cxm.yamldoc import YamlDoc

router = APIRouter(prefix="/text", tags=["text"])
read = Depends(require("read"))
admin = Depends(require("admin"))


def _slice(conn: Connection, survey: str | None, period: str | None) -> analytics.Slice:
    since, until = service.period_bounds(period) if period else (None, None)
    return analytics.Slice(survey=survey, since=since, until=until)


@router.get("/annotations")
def list_annotations(
    source: str = Query("survey_response", description="text source, e.g. survey_response"),
    model: str | None = Query(None, description="e.g. lexicon:vader-3.3.2"),
    label: str | None = Query(None, description="negative | neutral | positive | unscored"),
    theme: str | None = Query(None, description="theme key"),
    taxonomy_key: str | None = Query(None, alias="taxonomy"),
    department: str | None = Query(None, description="themes owned by this department"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    who: Principal = Depends(require("read")),
    conn: Connection = Depends(db),
) -> list[schemas.AnnotationOut]:
    found = service.list_annotations(
        conn, source, model=model, label=label, theme=theme, taxonomy=taxonomy_key,
        department=department, limit=limit, offset=offset,
    )  # fmt: skip
    if scope_for(who).everything:
        return found
    # Sentences quote the comment itself: free text from any department, so only roles that
    # see everything get them; the labels, scores and themes stay.
    return [a.model_copy(update={"sentences": None}) for a in found]


@router.get("/themes", dependencies=[read])
def theme_impact(
    request: Request,
    taxonomy_key: str = Query("starter", alias="taxonomy"),
    survey: str | None = None,
    period: str | None = Query(None, description="YYYY, YYYY-MM, YYYY-Qn or Nd"),
    department: str | None = Query(None, description="only themes this department owns"),
    conn: Connection = Depends(db),
) -> schemas.ImpactReport:
    """Themes of a taxonomy with volume, share of detractors and NPS impact with intervals."""
    found = taxonomy.list_themes(conn, taxonomy_key)
    if department:
        found = [t for t in found if t.department_key == department]
    where = _slice(conn, survey, period)
    return analytics.theme_impact(get_engine(request), found, where)


@router.get("/themes/discover")
def discover(
    request: Request,
    who: Principal = Depends(require("read")),
    survey: str | None = None,
    period: str | None = None,
    k: int | None = Query(None, ge=2, le=50),
    seed: int = 0,
    vectors: themes.Vectors = "auto",
    conn: Connection = Depends(db),
) -> schemas.DiscoveryOut:
    """Cluster the comments of a survey and period into themes (deterministic for a seed).

    Only the comments the caller may read are clustered (a manager's or agent's department's;
    every one for admin and cx_lead); a viewer's themes come without verbatim examples.
    """
    scope = scope_for(who)
    readable = readable_comment_touchpoints(conn, scope)
    where = _slice(conn, survey, period)
    if readable is not None and scope.personal_data:
        where = dataclasses.replace(where, touchpoints=readable)
    found = service.discover_themes(get_engine(request), where, k=k, seed=seed, vectors=vectors)
    if readable is not None and not scope.personal_data:
        found.themes = [t.model_copy(update={"examples": []}) for t in found.themes]
    return found


@router.get("/taxonomies/{key}", dependencies=[read])
def get_taxonomy(key: str, conn: Connection = Depends(db)) -> list[schemas.Theme]:
    return taxonomy.list_themes(conn, key)


@router.put("/taxonomies", dependencies=[admin])
def put_taxonomy(
    body: dict[str, object] = Body(..., description="a taxonomy document (the YAML as JSON)"),
    conn: Connection = Depends(db),
) -> schemas.ApplySummary:
    """Create or replace a taxonomy; texts are tagged with it on their next annotation."""
    return taxonomy.apply(conn, YamlDoc(body, "request body"))

"""Finding responses: filters on date, department, touchpoint, survey, score band, segment,
text, sentiment and theme, scoped to what the caller may see."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cxm.customers.facts import customer_traits
from cxm.errors import Invalid
from cxm.org.facts import touchpoints
from cxm.org.scope import Scope, mask, visible_touchpoints
from cxm.surveys.facts import responses_table as responses
from cxm.text.facts import text_annotations, text_themes

BANDS = {
    "promoter": responses.c.nps_category == "promoter",
    "passive": responses.c.nps_category == "passive",
    "detractor": responses.c.nps_category == "detractor",
    "low_csat": responses.c.csat <= 2,
    "high_csat": responses.c.csat >= 4,
    "low_ces": responses.c.ces <= 3,
}
SENTIMENTS = ("negative", "neutral", "positive", "unscored")
SOURCE = "survey_response"
# Columns the explorer sorts by (ties keep the newest first).
SORTS = ("submitted_at", "nps", "csat", "ces", "touchpoint", "sentiment")


@dataclass(frozen=True)
class Query:
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    department: str | None = None
    touchpoint: str | None = None
    survey: str | None = None
    band: str | None = None
    segment: str | None = None
    text: str | None = None
    sentiment: str | None = None
    theme: str | None = None
    limit: int = 50
    offset: int = 0
    sort: str | None = None  # one of SORTS; None: newest first
    descending: bool = False


@dataclass
class Page:
    rows: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    # Matching responses whose comment has no sentiment score, by detected language.
    not_scored: dict[str, int] = field(default_factory=dict)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _lexicon_model(conn: Connection) -> str | None:
    """The newest lexicon-tier model that annotated responses (the explorer's sentiment)."""
    return conn.execute(
        sa.select(sa.func.max(text_annotations.c.model)).where(
            text_annotations.c.source == SOURCE, text_annotations.c.tier == "lexicon"
        )
    ).scalar()


def explore(conn: Connection, scope: Scope, q: Query) -> Page:
    """One page of completed responses matching ``q``, newest first, within ``scope``."""
    if q.band is not None and q.band not in BANDS:
        raise Invalid(f"band: use one of {', '.join(BANDS)}, not '{q.band}'")
    if q.sentiment is not None and q.sentiment not in SENTIMENTS:
        raise Invalid(f"sentiment: use one of {', '.join(SENTIMENTS)}, not '{q.sentiment}'")
    if not 1 <= q.limit <= 500 or q.offset < 0:
        raise Invalid("limit must be 1 to 500 and offset not negative")
    model = _lexicon_model(conn)
    sentiment = (
        sa.select(
            text_annotations.c.source_id, text_annotations.c.label, text_annotations.c.language
        )
        .where(text_annotations.c.source == SOURCE, text_annotations.c.model == (model or ""))
        .subquery("sentiment")
    )
    when = responses.c.submitted_at
    columns = [
        responses.c.id, responses.c.survey_key, responses.c.touchpoint_key,
        responses.c.customer_id, responses.c.language, when.label("submitted_at"),
        responses.c.nps, responses.c.nps_category, responses.c.csat, responses.c.ces,
        responses.c.comment, touchpoints.c.name.label("touchpoint_name"),
        touchpoints.c.department_key, sentiment.c.label.label("sentiment"),
        sentiment.c.language.label("sentiment_language"),
    ]  # fmt: skip
    query = (
        sa.select(*columns)
        .select_from(responses)
        .outerjoin(touchpoints, touchpoints.c.key == responses.c.touchpoint_key)
        .outerjoin(sentiment, sentiment.c.source_id == responses.c.id)
        .where(responses.c.completed.is_(True), responses.c.respondent_kind == "customer")
    )
    visible = visible_touchpoints(conn, scope)
    if visible is not None:
        query = query.where(responses.c.touchpoint_key.in_(sorted(visible)))
    if q.start:
        query = query.where(when >= q.start)
    if q.end:
        query = query.where(when < q.end)
    if q.department:
        query = query.where(touchpoints.c.department_key == q.department)
    if q.touchpoint:
        query = query.where(responses.c.touchpoint_key == q.touchpoint)
    if q.survey:
        query = query.where(responses.c.survey_key == q.survey)
    if q.band:
        query = query.where(BANDS[q.band])
    if q.segment:
        query = query.where(
            responses.c.customer_id.in_(
                sa.select(customer_traits.c.customer_id).where(
                    customer_traits.c.name == "segment", customer_traits.c.value == q.segment
                )
            )
        )
    if q.text:
        if not scope.personal_data:
            raise Invalid("text search reads comments, which this role may not see")
        query = query.where(responses.c.comment.ilike(f"%{_escape_like(q.text)}%", escape="\\"))
    if q.sentiment:
        query = query.where(sentiment.c.label == q.sentiment)
    if q.theme:
        query = query.where(
            responses.c.id.in_(
                sa.select(text_themes.c.source_id).where(
                    text_themes.c.source == SOURCE, text_themes.c.theme_key == q.theme
                )
            )
        )
    total = conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    matched = query.subquery()
    not_scored = {
        str(lang): int(n)
        for lang, n in conn.execute(
            sa.select(matched.c.sentiment_language, sa.func.count())
            .where(matched.c.sentiment == "unscored")
            .group_by(matched.c.sentiment_language)
            .order_by(sa.func.count().desc(), matched.c.sentiment_language)
        )
    }
    rows = [
        dict(r)
        for r in conn.execute(
            query.order_by(*_order(q, when, sentiment.c.label)).limit(q.limit).offset(q.offset)
        ).mappings()
    ]
    themes: dict[str, list[str]] = {}
    if rows:
        tagged = conn.execute(
            sa.select(text_themes.c.source_id, text_themes.c.theme_key)
            .where(
                text_themes.c.source == SOURCE,
                text_themes.c.source_id.in_([r["id"] for r in rows]),
            )
            .order_by(text_themes.c.theme_key)
        )
        for source_id, theme in tagged:
            themes.setdefault(source_id, []).append(theme)
    for row in rows:
        row["themes"] = themes.get(row["id"], [])
        row["comment"] = mask(row["comment"], scope)
        if not scope.personal_data:
            row["customer_id"] = None
    return Page(rows, int(total), not_scored)


def _order(q: Query, when: Any, sentiment: Any) -> list[Any]:
    if q.sort is None:
        return [when.desc(), responses.c.id]
    if q.sort not in SORTS:
        raise Invalid(f"sort: use one of {', '.join(SORTS)}, not '{q.sort}'")
    column = {
        "submitted_at": when, "nps": responses.c.nps, "csat": responses.c.csat,
        "ces": responses.c.ces, "touchpoint": touchpoints.c.name, "sentiment": sentiment,
    }[q.sort]  # fmt: skip
    first = column.desc().nulls_last() if q.descending else column.asc().nulls_last()
    return [first, when.desc(), responses.c.id]


def theme_keys(conn: Connection) -> list[str]:
    """Every theme that tags at least one response (for the explorer's filter)."""
    return list(
        conn.execute(
            sa.select(text_themes.c.theme_key)
            .where(text_themes.c.source == SOURCE)
            .distinct()
            .order_by(text_themes.c.theme_key)
        ).scalars()
    )

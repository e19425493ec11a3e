"""Text analytics logic: annotate texts (sentiment, language, theme tags) and read them back.

Functions take a connection and never commit; the CLI, API handler or job runner does.
Writes are batched: on DuckDB through an Arrow table registered on the connection (one
INSERT ... SELECT per batch), elsewhere as one multi-row insert.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cxm.errors import Invalid, NotFound
from cxm.org import service as org
from cxm.store import is_duckdb, utcnow
from cxm.store.bulk import insert_table
from cxm.text import analytics, embeddings, nlp, schemas, themes
from cxm.text.language import detect
from cxm.text.sentiment import (
    Annotation,
    LexiconTier,
    LinearClassifier,
    Tier,
    TrainingReport,
    unscored_reason,
    weak_label,
)
from cxm.text.tables import sentiment_models, taxonomy_themes, text_annotations, text_themes
from cxm.text.taxonomy import Tag, Tagger, list_themes

SOURCES = ("survey_response",)


def model_key(tier: Tier) -> str:
    return f"{tier.name}:{tier.version}"


@dataclass
class AnnotateReport:
    """What a run did: which tier and model, how many texts, by language and label."""

    tier: str
    model: str
    note: str | None = None
    annotated: int = 0
    tagged: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    languages: dict[str, int] = field(default_factory=dict)
    unscored: dict[str, int] = field(default_factory=dict)  # reason -> texts

    def add(self, results: Sequence[Annotation], tags: Sequence[Sequence[Tag]]) -> None:
        self.annotated += len(results)
        for r in results:
            if r.score is None:
                reason = unscored_reason(r.language)
                self.unscored[reason] = self.unscored.get(reason, 0) + 1
        self.tagged += sum(1 for t in tags if t)
        for key, n in Counter(r.label for r in results).items():
            self.labels[key] = self.labels.get(key, 0) + n
        for key, n in Counter(r.language for r in results).items():
            self.languages[key] = self.languages.get(key, 0) + n


def _naive(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _write(conn: Connection, table: sa.Table, data: dict[str, list[Any]],
           json_columns: Sequence[str] = ()) -> None:  # fmt: skip
    """Insert the rows given as columns ``data`` (name -> values) with the store's bulk insert.

    Rows of repeated texts share one object in a JSON column: each object is serialised once.
    """
    columns = list(data)
    if not columns or not data[columns[0]]:
        return
    arrays: dict[str, Any] = {}
    for c in columns:
        values = data[c]
        if c in json_columns:
            dumped: dict[int, str | None] = {}
            out = []
            for v in values:
                key = id(v)
                if key not in dumped:
                    dumped[key] = None if v is None else json.dumps(v)
                out.append(dumped[key])
            values = out
        elif isinstance(table.c[c].type, sa.DateTime) or c.endswith("_at"):
            values = [None if v is None else _naive(v) for v in values]
        arrays[c] = values
    insert_table(conn, table, pa.table(arrays))


@contextmanager
def _staged_ids(conn: Connection, ids: list[str]) -> Iterator[Any]:
    """What ``source_id IN (...)`` should test against: on DuckDB a registered Arrow column
    (a literal list of thousands of ids costs more to bind than to delete), else the list.
    """
    if not is_duckdb(conn):
        yield ids
        return
    name = f"_cxm_text_ids_{secrets.token_hex(4)}"
    raw = conn.connection.driver_connection
    raw.register(name, pa.table({"id": pa.array(ids, pa.string())}))  # type: ignore[union-attr]
    try:
        yield sa.select(sa.table(name, sa.column("id")).c.id)
    finally:
        raw.unregister(name)  # type: ignore[union-attr]


def store(
    conn: Connection,
    source: str,
    ids: Sequence[str],
    model: str,
    tier_name: str,
    version: str,
    results: Sequence[Annotation],
    tags: Sequence[Sequence[Tag]] | None,
    taxonomies: Sequence[str] = (),
) -> None:
    """Replace the annotations of ``ids`` under ``model`` (and their theme tags, when given)."""
    now = utcnow()
    ids = list(ids)
    n = len(ids)
    with _staged_ids(conn, ids) as targets:
        conn.execute(
            text_annotations.delete().where(
                text_annotations.c.source == source,
                text_annotations.c.model == model,
                text_annotations.c.source_id.in_(targets),
            )
        )
        _write(
            conn,
            text_annotations,
            {
                "source": [source] * n,
                "source_id": ids,
                "model": [model] * n,
                "tier": [tier_name] * n,
                "model_version": [version] * n,
                "language": [r.language for r in results],
                "label": [r.label for r in results],
                "score": [r.score for r in results],
                "sentences": [r.sentences for r in results],
                "annotated_at": [now] * n,
            },
            ["sentences"],
        )
        if tags is None:
            return
        if taxonomies:
            conn.execute(
                text_themes.delete().where(
                    text_themes.c.source == source,
                    text_themes.c.taxonomy.in_(list(taxonomies)),
                    text_themes.c.source_id.in_(targets),
                )
            )
    flat = [(i, t) for i, text_tags in zip(ids, tags, strict=True) for t in text_tags]
    _write(
        conn,
        text_themes,
        {
            "source": [source] * len(flat),
            "source_id": [i for i, _ in flat],
            "taxonomy": [t.taxonomy for _, t in flat],
            "theme_key": [t.theme_key for _, t in flat],
            "method": [t.method for _, t in flat],
            "similarity": [t.similarity for _, t in flat],
            "tagged_at": [now] * len(flat),
        },
    )


def tagger(
    conn: Connection, *, semantic: bool | None = None, indexed: bool = True
) -> Tagger | None:
    """A tagger over every stored taxonomy, or None when none is stored."""
    themes = list_themes(conn)
    return Tagger(themes, semantic=semantic, indexed=indexed) if themes else None


def annotate_texts(
    conn: Connection,
    tier: Tier,
    source: str,
    items: Sequence[tuple[str, str]],
    *,
    tag_with: Tagger | None = None,
    report: AnnotateReport | None = None,
) -> AnnotateReport:
    """Annotate ``(source_id, text)`` pairs with ``tier`` and tag them with ``tag_with``."""
    if source not in SOURCES:
        raise Invalid(f"source '{source}' is unknown; known: {', '.join(SOURCES)}")
    report = report or AnnotateReport(tier.name, model_key(tier))
    if not items:
        return report
    ids = [i for i, _ in items]
    texts = [t for _, t in items]
    results = tier.annotate(texts)
    tags = tag_with.tag(texts) if tag_with else None
    taxonomies = sorted({t.taxonomy for t in tag_with.themes}) if tag_with else []
    store(conn, source, ids, model_key(tier), tier.name, tier.version, results, tags, taxonomies)
    report.add(results, tags or [])
    return report


def list_annotations(
    conn: Connection,
    source: str,
    *,
    model: str | None = None,
    label: str | None = None,
    theme: str | None = None,
    taxonomy: str | None = None,
    department: str | None = None,
    source_ids: Sequence[str] | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[schemas.AnnotationOut]:
    """Stored annotations, newest first, filtered by sentiment, theme or owning department."""
    if source not in SOURCES:
        raise Invalid(f"source '{source}' is unknown; known: {', '.join(SOURCES)}")
    a = text_annotations
    query = sa.select(a).where(a.c.source == source)
    if model:
        query = query.where(a.c.model == model)
    if label:
        if label not in ("negative", "neutral", "positive", "unscored"):
            raise Invalid(
                f"label '{label}' is unknown: use negative, neutral, positive or unscored"
            )
        query = query.where(a.c.label == label)
    if source_ids is not None:
        query = query.where(a.c.source_id.in_(list(source_ids)))
    if theme or department:
        tagged = sa.select(text_themes.c.source_id).where(text_themes.c.source == source)
        if theme:
            tagged = tagged.where(text_themes.c.theme_key == theme)
        if taxonomy:
            tagged = tagged.where(text_themes.c.taxonomy == taxonomy)
        if department:
            owned = sa.select(taxonomy_themes.c.key).where(
                taxonomy_themes.c.department_key == department
            )
            tagged = tagged.where(text_themes.c.theme_key.in_(owned))
        query = query.where(a.c.source_id.in_(tagged))
    query = query.order_by(a.c.annotated_at.desc(), a.c.source_id, a.c.model)
    rows = conn.execute(query.limit(limit).offset(offset)).mappings().all()
    found: dict[str, list[str]] = {}
    if rows:
        tag_rows = conn.execute(
            sa.select(text_themes.c.source_id, text_themes.c.taxonomy, text_themes.c.theme_key)
            .where(text_themes.c.source == source)
            .where(text_themes.c.source_id.in_([r["source_id"] for r in rows]))
            .order_by(text_themes.c.taxonomy, text_themes.c.theme_key)
        )
        for sid, tax, key in tag_rows:
            found.setdefault(sid, []).append(f"{tax}/{key}")
    return [
        schemas.AnnotationOut(**{**dict(r), "themes": found.get(r["source_id"], [])}) for r in rows
    ]


_PERIOD = re.compile(r"^(\d{4})(?:-(?:(\d{2})|Q([1-4])))?$|^(\d+)d$")


def period_bounds(
    period: str, *, now: dt.datetime | None = None
) -> tuple[dt.datetime, dt.datetime]:
    """``2026``, ``2026-03``, ``2026-Q1`` or ``30d`` (last 30 days) as a [since, until) window."""
    match = _PERIOD.match(period.strip())
    if not match:
        raise Invalid(
            f"period '{period}' is not understood: use YYYY, YYYY-MM, YYYY-Qn or Nd (last N days)"
        )
    year, month, quarter, days = match.groups()
    if days:
        until = now or utcnow()
        return until - dt.timedelta(days=int(days)), until
    y = int(year)
    if month:
        m = int(month)
        if not 1 <= m <= 12:
            raise Invalid(f"period '{period}': month must be 01..12")
        start = dt.datetime(y, m, 1, tzinfo=dt.UTC)
        end = dt.datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=dt.UTC)
    elif quarter:
        q = int(quarter)
        start = dt.datetime(y, 3 * q - 2, 1, tzinfo=dt.UTC)
        end = dt.datetime(y + (q == 4), (3 * q) % 12 + 1, 1, tzinfo=dt.UTC)
    else:
        start, end = dt.datetime(y, 1, 1, tzinfo=dt.UTC), dt.datetime(y + 1, 1, 1, tzinfo=dt.UTC)
    return start, end


def save_model(conn: Connection, classifier: LinearClassifier, report: TrainingReport) -> None:
    """Store a trained sentiment classifier; the newest one is what the embedding tier uses."""
    conn.execute(sentiment_models.delete().where(sentiment_models.c.version == classifier.version))
    conn.execute(
        sentiment_models.insert().values(
            version=classifier.version,
            encoder=nlp.ENCODER,
            labels=list(classifier.labels),
            coef=classifier.coef.round(6).tolist(),
            intercept=classifier.intercept.round(6).tolist(),
            trained_on=report.trained_on,
            held_out=report.held_out,
            accuracy=report.accuracy,
            macro_f1=report.macro_f1,
            trained_at=utcnow(),
        )
    )


def latest_model(conn: Connection) -> LinearClassifier | None:
    """The newest trained classifier, or None (the embedding tier then uses its anchors)."""
    row = conn.execute(
        sa.select(sentiment_models).order_by(sentiment_models.c.trained_at.desc()).limit(1)
    ).first()
    if row is None:
        return None
    return LinearClassifier(
        row.version, tuple(row.labels), np.array(row.coef), np.array(row.intercept)
    )


def list_models(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(sentiment_models).order_by(sentiment_models.c.trained_at.desc())
    ).mappings()
    keys = ("version", "encoder", "trained_on", "held_out", "accuracy", "macro_f1", "trained_at")
    return [{k: r[k] for k in keys} for r in rows]


def get_annotation(conn: Connection, source: str, source_id: str) -> list[schemas.AnnotationOut]:
    found = list_annotations(conn, source, source_ids=[source_id], limit=50)
    if not found:
        raise NotFound(f"no annotation for {source} '{source_id}': run 'cxm text annotate'")
    return found


def languages(
    engine: Engine, where: analytics.Slice = analytics.EVERYONE, model: str | None = None
) -> schemas.LanguagesReport:
    """Comments per language, scored and not, with the reason the others were not scored."""
    chosen, rows = analytics.language_counts(engine, model, where)
    return schemas.LanguagesReport(
        model=chosen,
        languages=[
            schemas.LanguageCount(
                **row, reason=unscored_reason(row["language"]) if row["unscored"] else None
            )
            for row in rows
        ],
    )


def company_names(conn: Connection) -> list[str]:
    """The company's own names from the org model (its name), the seed of the stop list."""
    name = org.export_org(conn).get("company", {}).get("name")
    return [str(name)] if name else []


def discover_themes(
    engine: Engine,
    where: analytics.Slice,
    *,
    k: int | None = None,
    seed: int = 0,
    vectors: themes.Vectors = "auto",
    on_progress: Callable[[str, int, int], None] | None = None,
    stop_names: Sequence[str] = (),
) -> schemas.DiscoveryOut:
    """Discover themes in the comments of ``where``, with the mean sentiment of each.

    The company's own names never become theme words: the org model's company name and
    ``stop_names`` are stripped before clustering, with @handles and URLs (``themes.clean``).
    ``on_progress(stage, done, total)`` is told of each of the 3 stages as it starts, and of
    each 1,000 comments embedded. Embeddings are stored per comment (``embeddings``): a re-run
    encodes only comments not embedded before, also after a restart.
    """
    report = on_progress or (lambda stage, done, total: None)
    report("reading comments", 0, 3)
    rows = analytics.response_texts(engine, where).to_pylist()
    texts = [r["comment"] for r in rows]
    with engine.connect() as conn:
        names = [*company_names(conn), *stop_names]
    report(f"clustering {len(texts)} comments", 1, 3)
    resolved = vectors if vectors != "auto" else "embedding" if nlp.available() else "tfidf"

    def embedding(done: int, total: int) -> None:
        report(f"embedding {done} of {total} comments not embedded before", 1, 3)

    encode = embeddings.cached_encoder(engine, resolved, embedding) if resolved != "tfidf" else None
    found = themes.discover(texts, k=k, seed=seed, vectors=vectors, stop_names=names, encode=encode)
    report(f"scoring the sentiment of {len(found.themes)} themes", 2, 3)
    lexicon = LexiconTier()
    out = []
    for t in found.themes:
        scored = [a.score for a in lexicon.annotate([texts[i] for i in t.members])]
        values = [v for v in scored if v is not None]
        out.append(
            schemas.DiscoveredThemeOut(
                id=t.id,
                label=t.label,
                keywords=t.keywords,
                size=t.size,
                share=t.share,
                sentiment=round(float(np.mean(values)), 3) if values else None,
                examples=t.examples,
            )
        )
    return schemas.DiscoveryOut(
        vectors=found.vectors,
        texts=found.texts,
        excluded_other_language=found.excluded,
        seed=found.seed,
        note=found.note,
        themes=out,
    )


def training_data(engine: Engine, where: analytics.Slice) -> tuple[list[str], list[str]]:
    """English comments with their score as a weak sentiment label (NPS category, else CSAT)."""
    texts, labels = [], []
    for row in analytics.response_texts(engine, where).to_pylist():
        label = weak_label(row["nps"], row["csat"])
        if label is not None and detect(row["comment"]) == "en":
            texts.append(row["comment"])
            labels.append(label)
    return texts, labels


def forget(conn: Connection, source: str, source_ids: Sequence[str]) -> int:
    """Drop the stored sentence texts of these sources (privacy erasure); labels and scores
    stay so aggregates stay right. Returns how many annotations were cleared. The stored
    embeddings (a cache keyed by text hash, with no id to pick by) are cleared whole."""
    cleared = 0
    ids = list(source_ids)
    if ids:
        embeddings.clear(conn)
    for i in range(0, len(ids), 1000):
        chunk = ids[i : i + 1000]
        cleared += len(
            conn.execute(
                text_annotations.update()
                .where(text_annotations.c.source == source, text_annotations.c.source_id.in_(chunk))
                .values(sentences=sa.null())
                .returning(text_annotations.c.source_id)
            ).all()
        )
    return cleared

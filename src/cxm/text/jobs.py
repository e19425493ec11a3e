"""Running annotation: in bulk (CLI, batches of one transaction each) and in the background.

New responses are picked up by a periodic scan that enqueues a durable ``text.annotate`` job
per batch of unannotated comments; the job annotates them with the lexicon tier and tags them
with every stored taxonomy. The job is idempotent: it skips texts already annotated.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection, Engine

from cxm.store import jobs
from cxm.text import analytics, service
from cxm.text.sentiment import LexiconTier, Tier, tier

KIND = "text.annotate"
DISCOVER = "text.discover"
SCAN_EVERY_SECONDS = 15.0
BATCH = 5000


def lexicon_model() -> str:
    """The lexicon tier's model key (VADER, with the multilingual classifier's version)."""
    return service.model_key(LexiconTier())


def annotate_bulk(
    engine: Engine,
    *,
    tier_name: str = "lexicon",
    where: analytics.Slice = analytics.EVERYONE,
    only_pending: bool = True,
    batch: int = BATCH,
    semantic: bool | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    fast: bool = True,
) -> service.AnnotateReport:
    """Annotate the comments in ``where``, one transaction per batch; returns what it did.

    With ``only_pending`` it skips comments the chosen model already annotated, so a rerun
    after an interruption picks up where it stopped. ``fast=False`` takes the reference
    paths of the lexicon tier and keyword tagging (``LexiconTier(fast=False)``,
    ``Tagger(indexed=False)``): the same annotations, slower; tests and benchmarks compare.
    """
    with engine.connect() as conn:
        chosen, note = _tier(conn, tier_name)
        if not fast and isinstance(chosen, LexiconTier):
            chosen = LexiconTier(fast=False)
        if semantic is None:  # example phrases need embeddings: not on the lexicon tier
            semantic = not isinstance(chosen, LexiconTier)
        tag_with = service.tagger(conn, semantic=semantic, indexed=fast)
    model = service.model_key(chosen)
    found = analytics.response_texts(engine, where, pending_model=model if only_pending else None)
    ids = [str(i) for i in found.column("id").to_pylist()]
    comments = [str(c) for c in found.column("comment").to_pylist()]
    report = service.AnnotateReport(chosen.name, model, note)
    total = len(ids)
    if on_progress:
        on_progress(0, total)
    # Comments repeat: read every distinct one once, up front, in one (parallel) pass; the
    # batches below then only look results up and write them.
    distinct = list(dict.fromkeys(comments))
    if isinstance(chosen, LexiconTier):
        chosen.annotate(distinct)
    if tag_with is not None:  # keyword and semantic tags are cached per distinct text
        tag_with.tag(distinct)
    for start in range(0, total, batch):
        with engine.begin() as conn:
            service.annotate_texts(
                conn,
                chosen,
                analytics.SOURCE,
                list(zip(ids[start : start + batch], comments[start : start + batch], strict=True)),
                tag_with=tag_with,
                report=report,
            )
        if on_progress:
            on_progress(min(start + batch, total), total)
    return report


def _tier(conn: Connection, name: str) -> tuple[Tier, str | None]:
    classifier = service.latest_model(conn) if name in ("embedding", "auto") else None
    return tier(name, classifier)


_lexicon: list[LexiconTier] = []


def handle_annotate(conn: Connection, payload: dict[str, Any]) -> None:
    """Job handler: annotate the response ids in ``payload`` that are still unannotated."""
    if not _lexicon:  # the lexicon and its cache live as long as the worker
        _lexicon.append(LexiconTier())
    chosen = _lexicon[0]
    ids = [str(i) for i in payload.get("ids", [])]
    rows = analytics.response_texts(
        conn.engine, ids=ids, pending_model=service.model_key(chosen)
    ).to_pylist()
    service.annotate_texts(
        conn,
        chosen,
        analytics.SOURCE,
        [(r["id"], r["comment"]) for r in rows],
        tag_with=service.tagger(conn, semantic=False),
    )


def start_discovery(
    conn: Connection,
    *,
    survey: str | None,
    period: str | None,
    k: int | None,
    seed: int,
    vectors: str,
    requested_by: dict[str, str | None],
    touchpoints: list[str] | None = None,
    stop_names: list[str] | None = None,
) -> str:
    """Enqueue a theme discovery (minutes on a large company); returns the job id to poll.

    ``requested_by`` (role, scope, user, department, team) is kept with the job so that only
    the same caller reads its result; ``touchpoints`` limits the comments to those given at
    these touchpoints (a manager's or agent's department), None for all. Invalid input (an
    unknown period) is refused here, before anything is queued.
    """
    if period:
        service.period_bounds(period)
    job_id = secrets.token_hex(16)
    payload = {"job_id": job_id, "survey": survey, "period": period, "k": k, "seed": seed,
               "vectors": vectors, "requested_by": requested_by,
               "touchpoints": touchpoints, "stop_names": stop_names or []}  # fmt: skip
    # Discovery is deterministic: a failure (too few comments) fails again, so no retries.
    jobs.enqueue(conn, DISCOVER, payload, job_id=job_id, max_attempts=1)
    return job_id


def handle_discover(conn: Connection, payload: dict[str, Any]) -> None:
    """Job handler: discover themes in the payload's slice; progress as it goes, then result."""
    job_id = str(payload["job_id"])
    engine = conn.engine
    since, until = (
        service.period_bounds(payload["period"]) if payload.get("period") else (None, None)
    )
    only = payload.get("touchpoints")
    where = analytics.Slice(survey=payload.get("survey"), since=since, until=until,
                            touchpoints=frozenset(only) if only is not None else None)  # fmt: skip

    def progress(stage: str, done: int, total: int) -> None:
        jobs.report_progress(engine, job_id, stage, done, total)

    found = service.discover_themes(
        engine, where, k=payload.get("k"), seed=int(payload.get("seed") or 0),
        vectors=payload.get("vectors") or "auto", on_progress=progress,
        stop_names=[str(n) for n in payload.get("stop_names") or []],
    )  # fmt: skip
    progress("done", 3, 3)
    jobs.keep_result(conn, job_id, found.model_dump(mode="json"))


def schedule_pending(engine: Engine, *, limit: int = 2000) -> str | None:
    """Periodic task: enqueue one job for the oldest unannotated comments, if there are any."""
    rows = analytics.response_texts(engine, pending_model=lexicon_model(), limit=limit)
    ids = [str(i) for i in rows.column("id").to_pylist()]
    if not ids:
        return None
    digest = hashlib.sha1("\n".join(ids).encode()).hexdigest()
    with engine.begin() as conn:
        return jobs.enqueue(
            conn,
            KIND,
            {"source": analytics.SOURCE, "ids": ids},
            dedupe_key=f"{KIND}:{digest}",
            run_at=dt.datetime.now(dt.UTC),
        )


handlers: dict[str, jobs.Handler] = {KIND: handle_annotate, DISCOVER: handle_discover}
periodic: list[tuple[float, Callable[[Engine], object]]] = [(SCAN_EVERY_SECONDS, schedule_pending)]

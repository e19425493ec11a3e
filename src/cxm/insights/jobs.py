"""Training and scoring as durable jobs, so the API answers at once and the server's worker
runs the models (and ``cxm insights predict`` works while ``cxm serve`` owns the store)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection, Engine

from cxm.config import Settings, load_settings
from cxm.errors import Conflict, Invalid
from cxm.insights import analytics, predict, service
from cxm.store import jobs
from cxm.store.analytics import reading

TRAIN = "insights.train"
PREDICT = "insights.predict"
KINDS = (TRAIN, PREDICT)
TOP = 10  # customers at most risk kept in a scoring job's result


def check_trainable(source: Engine, data_dir: Path, lead_hours: int = predict.LEAD_HOURS) -> None:
    """Refuse, before anything is queued, a run that cannot fit a model.

    Errors: ``Invalid`` for a lead outside 0-8760 hours; ``Conflict`` when no lifecycle says
    which events churn a customer, when the log is empty, or when fewer than
    ``predict.MIN_ROWS`` customers, or no churner or no stayer, are there to learn from (one
    small aggregate on the engine).
    """
    if not 0 <= lead_hours <= 8760:
        raise Invalid(f"lead: {lead_hours} hours; give a number of hours from 0 to 8760")
    life = service.lifecycle(data_dir)
    if life is None:
        raise Conflict(
            "no model can be trained: no customer lifecycle says which events acquire and "
            "churn a customer; add one to a metrics file (docs/metrics.md)"
        )
    with reading(source) as con:
        try:
            end = analytics.log_end(con)
        except Invalid as exc:  # an empty log: nothing to learn from
            raise Conflict(f"no model can be trained: {exc}") from None
        points = analytics.churn_points(con, life, end, lead_hours)
        counts = con.execute(
            points.aggregate(customers=points.count(), churned=points.churned.sum())
        )
    customers = int(counts["customers"].iloc[0])
    churned = int(counts["churned"].fillna(0).iloc[0])
    if customers < predict.MIN_ROWS or not 0 < churned < customers:
        raise Conflict(
            f"no model can be trained: {customers} customers with a lifecycle, {churned} "
            f"churned; a model needs at least {predict.MIN_ROWS} customers, some of them "
            "churned and some not (import customers and their cancellation events first)"
        )


def start(
    conn: Connection,
    kind: str,
    *,
    seed: int,
    window_days: int,
    lead_hours: int,
    traits: Sequence[str],
    requested_by: dict[str, str | None],
    top: int = TOP,
) -> str:
    """Enqueue a training (``TRAIN``) or scoring (``PREDICT``) run; returns the job id to poll.

    ``requested_by`` is kept with the job so that only the same caller reads its result.
    Training and scoring are deterministic for a seed, so a failure is not retried.
    """
    if kind not in KINDS:
        raise Invalid(f"kind: {kind!r}; use {' or '.join(KINDS)}")
    job_id = secrets.token_hex(16)
    payload = {"job_id": job_id, "seed": seed, "window_days": window_days,
               "lead_hours": lead_hours, "traits": list(traits), "top": top,
               "requested_by": requested_by}  # fmt: skip
    jobs.enqueue(conn, kind, payload, job_id=job_id, max_attempts=1)
    return job_id


def scores_summary(scores: predict.Scores, written: int, top: int = TOP) -> dict[str, Any]:
    """What a scoring run reports: customers written, the model and feature set, and the
    ``top`` customers at most risk with their reasons (JSON-ready)."""
    f = scores.frame.sort_values("churn_risk", ascending=False).head(top)
    nps = f["predicted_nps"].astype(float)
    why = [json.loads(text) for text in f["reasons"]]
    return {
        "written": written,
        "as_of": scores.as_of.isoformat(),
        "model_version": scores.model_version,
        "feature_set": scores.feature_set,
        "seed": scores.seed,
        "top": [
            {"customer_id": str(c), "churn_risk": float(r),
             "predicted_nps": None if n != n else float(n),
             "reasons": [x["label"] for x in w]}
            for c, r, n, w in zip(f["customer_id"], f["churn_risk"], nps, why, strict=True)
        ],
    }  # fmt: skip


def handlers(settings: Settings | None = None) -> dict[str, jobs.Handler]:
    """The insights job handlers; ``settings`` (the data dir with the signals and the
    lifecycle) read from the environment when not given."""

    def _args(payload: dict[str, Any]) -> tuple[Path, int, int, int, tuple[str, ...]]:
        data_dir = (settings or load_settings()).data_dir
        return (data_dir, int(payload["seed"]), int(payload["window_days"]),
                int(payload["lead_hours"]), tuple(payload["traits"]))  # fmt: skip

    def run_train(conn: Connection, payload: dict[str, Any]) -> None:
        data_dir, seed, window, lead, traits = _args(payload)
        job_id = str(payload["job_id"])
        jobs.report_progress(conn.engine, job_id, "training", 0, 1)
        ev = service.train(conn.engine, data_dir, seed, window, lead, traits)
        jobs.report_progress(conn.engine, job_id, "done", 1, 1)
        jobs.keep_result(conn, job_id, ev.to_dict())

    def run_predict(conn: Connection, payload: dict[str, Any]) -> None:
        data_dir, seed, window, lead, traits = _args(payload)
        job_id = str(payload["job_id"])
        jobs.report_progress(conn.engine, job_id, "scoring", 0, 2)
        scores = service.score(conn.engine, data_dir, seed, window, lead, None, traits)
        jobs.report_progress(conn.engine, job_id, "storing", 1, 2)
        written = service.store_scores(conn, scores)
        jobs.report_progress(conn.engine, job_id, "done", 2, 2)
        jobs.keep_result(conn, job_id, scores_summary(scores, written, int(payload["top"])))

    return {TRAIN: run_train, PREDICT: run_predict}

"""The FastAPI app factory: engine, routers, error mapping, pages, static files, job worker."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import plotly
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from cxm import __version__
from cxm.actions import api as actions_api
from cxm.actions import service as actions_service
from cxm.config import Settings, load_settings
from cxm.customer360 import api as customer360_api
from cxm.employees import api as employees_api
from cxm.employees import pulse as employee_pulse
from cxm.errors import CxmError, ErrorBody, FieldError, responses
from cxm.insights import api as insights_api
from cxm.insights import jobs as insights_jobs
from cxm.integrations import crm
from cxm.interactions import api as interactions_api
from cxm.journeys.analytics import journey_map
from cxm.metrics import api as metrics_api
from cxm.org import api as org_api
from cxm.privacy import api as privacy_api
from cxm.store import create_engine, is_duckdb, jobs
from cxm.surveys import api as surveys_api
from cxm.surveys import distribution as survey_distribution
from cxm.surveys import inproduct
from cxm.surveys import pages as survey_public
from cxm.surveys import triggers as survey_triggers
from cxm.surveys import waves as survey_waves
from cxm.text import api as text_api
from cxm.text import jobs as text_jobs
from cxm.web import (
    board,
    cases,
    commands,
    dashboards,
    explore,
    export,
    headers,
    journey_pages,
    pages,
    people,
    sessions,
    status,
    survey_pages,
)
from cxm.web.headers import SecurityHeaders

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _wants_page(request: Request) -> bool:
    """A person's browser on a page (not an API or SDK call) gets an HTML error page."""
    path = request.url.path
    return not path.startswith(("/api/", "/v1/")) and "text/html" in request.headers.get(
        "accept", ""
    )


def error_response(status: int, detail: str, problems: list[FieldError] | None = None,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:  # fmt: skip
    """An ``ErrorBody`` answer: the one shape of every 4xx the API gives."""
    body = ErrorBody(detail=detail, errors=problems or [])
    return JSONResponse(body.model_dump(), status_code=status, headers=dict(headers or {}))


def validation_problems(errors: Sequence[Any]) -> tuple[str, list[FieldError]]:
    """Pydantic's errors as (one sentence, per-field problems); the field drops ``body``."""
    problems = []
    for err in errors:
        field = ".".join(str(p) for p in err["loc"] if p != "body") or "body"
        problems.append(FieldError(field=field, message=str(err["msg"])))
    return "; ".join(f"{p.field}: {p.message}" for p in problems), problems


@functools.cache
def api_router() -> APIRouter:
    """``/api/v1``, assembled from each domain's router.

    Assembled once per process: it prepares every route's validation (most of a second), and
    each app built afterwards includes the same router at almost no cost.
    """
    # Every /api/v1 route needs a key (401/403) and checks its input (422).
    api = APIRouter(prefix="/api/v1", responses=responses(401, 403, 422))
    for router in (
        org_api.router, interactions_api.router, customer360_api.router, surveys_api.router,
        metrics_api.router, text_api.router, actions_api.router, privacy_api.router,
        insights_api.router, employees_api.router, export.router, commands.router,
    ):  # fmt: skip
        for route in router.routes:
            # A JSON body that is not JSON (or not UTF-8) is refused before the handler: 400.
            if isinstance(route, APIRoute) and route.body_field is not None:
                route.responses = {**responses(400), **route.responses}
        api.include_router(router)
    return api


def job_handlers(settings: Settings) -> dict[str, jobs.Handler]:
    """Every kind of durable job the worker knows, from each domain."""
    return (
        survey_distribution.handlers(settings)
        | dict(text_jobs.handlers)
        | actions_service.handlers(settings)
        | insights_jobs.handlers(settings)
    )


def periodic_tasks(
    settings: Settings | None = None,
) -> list[tuple[float, Callable[[Engine], object]]]:
    """Work the server does every N seconds: trigger scans, annotation, rule evaluation,
    scheduled employee pulse rounds and their reminders."""
    settings = settings or load_settings()
    return [
        (5.0, survey_triggers.scan_triggers),
        *text_jobs.periodic,
        (30.0, actions_service.scan),
        (60.0, survey_distribution.schedule_bounce_reads),
        (300.0, functools.partial(employee_pulse.run_scheduled, settings=settings)),
        (600.0, actions_service.send_digests),
        (600.0, functools.partial(export.send_due_exports, settings=settings)),
        (300.0, functools.partial(survey_waves.scan, settings=settings)),
        (60.0, functools.partial(crm.sync_folder, settings=settings)),
    ]


async def _worker(app: FastAPI, interval: float) -> None:
    handlers = job_handlers(app.state.settings)
    tasks = periodic_tasks(app.state.settings)
    last_run = [0.0] * len(tasks)
    loop = asyncio.get_running_loop()
    while True:
        for i, (every, task) in enumerate(tasks):
            if loop.time() - last_run[i] >= every:
                last_run[i] = loop.time()
                try:
                    await asyncio.to_thread(task, app.state.engine)
                except Exception:  # keep the worker alive; the next pass retries
                    log.exception("periodic task %s failed", getattr(task, "__name__", task))
        try:
            ran = await asyncio.to_thread(jobs.run_due, app.state.engine, handlers)
        except Exception:  # keep the worker alive; the job table keeps the work
            log.exception("job worker pass failed")
            ran = 0
        if not ran:
            await asyncio.sleep(interval)


def work(engine: Engine, settings: Settings, interval: float, stop: Callable[[], bool]) -> None:
    """``cxm worker``: the server's job loop without the server, until ``stop()`` is true.

    Job workers on other hosts share the jobs table: ``jobs.claim`` takes due jobs with
    ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so no two workers run the same job, and a
    worker that dies leaves its jobs to be claimed again when their lease expires.
    """
    import time

    handlers = job_handlers(settings)
    tasks = periodic_tasks()
    last_run = [0.0] * len(tasks)
    while not stop():
        for i, (every, task) in enumerate(tasks):
            if time.monotonic() - last_run[i] >= every:
                last_run[i] = time.monotonic()
                try:
                    task(engine)
                except Exception:  # keep the worker alive; the next pass retries
                    log.exception("periodic task %s failed", getattr(task, "__name__", task))
        try:
            ran = jobs.run_due(engine, handlers)
        except Exception:  # keep the worker alive; the job table keeps the work
            log.exception("job worker pass failed")
            ran = 0
        if not ran:
            time.sleep(interval)


def app_from_environment() -> FastAPI:
    """The app factory ``cxm serve --workers N`` hands to uvicorn (one app per process).

    ``CXM_SERVE_JOBS=0`` leaves jobs and periodic scans to ``cxm worker`` processes.
    """
    import os

    app = create_app(run_worker=os.environ.get("CXM_SERVE_JOBS", "1") != "0", preload=True)
    freeze_start_up()
    return app


def freeze_start_up() -> None:
    """Collect garbage once, then leave every object alive now out of later collections
    (``gc.freeze``): a serving process's modules, app and caches made at start-up.

    Python's full (generation 2) collection scans every tracked object and holds the GIL while
    it does: with the ~360,000 objects of a started server that is 130-190 ms, every few
    seconds under load, and every request in flight waits for it (p99 of survey submissions at
    200/s for 20 s: 159 ms with it, 54 ms without; ``benchmarks/bench_responses.py``, figures in
    docs/scale.md). Frozen objects
    are never freed, so only a process that serves until it exits calls this (``cxm serve``),
    once its app is built; never in tests, which build many apps in one process.
    See https://docs.python.org/3/library/gc.html#gc.freeze.
    """
    gc.collect()
    gc.freeze()


async def _keep_warm(app: FastAPI, interval: float) -> None:
    """Recompute the dashboards' results in use before they expire (see ``web.board``)."""
    if is_duckdb(app.state.engine):
        try:  # build the journeys' month rollup before the first scorecard needs it
            await asyncio.to_thread(journey_map, app.state.engine)
        except Exception:
            log.exception("journey rollup failed; scorecards will build it")
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(board.refresh, app)
        except Exception:  # a failed pass leaves the results to expire; pages compute them
            log.exception("dashboard refresh failed")


def create_app(settings: Settings | None = None, *, engine: Engine | None = None,
               run_worker: bool = True, preload: bool = False) -> FastAPI:  # fmt: skip
    """Build the app for ``settings``; tests pass their own engine.

    ``run_worker``: run jobs and periodic scans in this process. ``preload``: load what the
    first requests would otherwise wait for (identity resolution's compiled walk) before
    serving, as ``cxm serve`` does."""
    settings = settings or load_settings()
    engine = engine or create_engine(settings.database_url)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if preload:  # the compiled walk before the first ingest call, not during it
            from cxm.customers import replay

            await asyncio.to_thread(replay.warm)
        tasks = [asyncio.create_task(_worker(app, 1.0)),
                 asyncio.create_task(_keep_warm(app, 5.0))] if run_worker else []  # fmt: skip
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for name in ("readers", "refresher"):  # the dashboards' analytics connections
            pool = getattr(app.state, name, None)
            if pool is not None:
                pool.close()
        writer = getattr(app.state, "answer_writer", None)
        if writer is not None:  # respondents' steps already queued are committed first
            writer.close()

    app = FastAPI(
        title="cxm",
        version=__version__,
        description="Customer Experience Management API",
        openapi_url="/api/openapi.json",
        docs_url=None,  # served below with a CSP nonce
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.settings = settings
    app.state.session_principal = sessions.session_principal
    app.state.session_csrf = sessions.session_csrf
    # Agents reach the customers in their team's cases (the customer API asks the cases).
    app.state.team_reach = actions_service.team_has_customer
    app.add_exception_handler(sessions.LoginRequired, sessions.login_redirect)  # type: ignore[arg-type]

    @app.exception_handler(CxmError)
    async def domain_error(request: Request, exc: CxmError) -> Response:
        if _wants_page(request):
            return await asyncio.to_thread(pages.error_page, request, str(exc), exc.status_code)
        return error_response(exc.status_code, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _wants_page(request) and exc.status_code in (404, 405):
            message = "There is no page at this address." if exc.status_code == 404 else str(
                exc.detail)  # fmt: skip
            return await asyncio.to_thread(pages.error_page, request, message, exc.status_code)
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, *validation_problems(exc.errors()))

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return {"status": "ok", "version": __version__}

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(PLOTLY_JS, media_type="application/javascript")

    app.add_api_route("/api/docs", headers.api_docs, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # The public survey pages first: routes are tried in order, and respondents' requests are
    # the busiest (no other route matches /s/...).
    app.include_router(survey_public.router)
    app.include_router(api_router())
    # Outside /api/v1: Segment-compatible ingest, in-product surveys, and the staff pages.
    for router in (
        interactions_api.segment_router, inproduct.router, sessions.router,
        pages.router, dashboards.router, explore.router, survey_pages.router, cases.router,
        people.router, journey_pages.router, status.router,
    ):  # fmt: skip
        app.include_router(router)
    app.add_middleware(SecurityHeaders, frame_ancestors=settings.frame_ancestors)
    if settings.trusted_proxies:
        # X-Forwarded-For names the client only when a configured proxy sent it; from anyone
        # else it is ignored, so rate limits cannot be dodged by inventing addresses.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
    return app

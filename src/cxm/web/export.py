"""Any dashboard or page as a PDF or PNG, rendered by chromium exactly as its reader sees it.

Rendering signs the reader in with a short-lived server-side session of their own (so the
export holds only what their role may see, by the same queries as the page), opens the page in
headless chromium (Debian's ``/usr/bin/chromium`` or ``CXM_CHROMIUM``, driven by Playwright;
no browser is ever downloaded), waits until the network is idle, prints it (A4 landscape, with
backgrounds) or screenshots the whole page, and ends the session.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from itsdangerous import Signer
from sqlalchemy.engine import Engine

from cxm.config import Settings
from cxm.errors import ErrorBody, Forbidden, Invalid, NotFound, responses
from cxm.org import auth
from cxm.org.auth import Principal
from cxm.org.security import get_engine, require
from cxm.web.sessions import SESSION_COOKIE, secret_key

Format = Literal["pdf", "png"]
MEDIA = {"pdf": "application/pdf", "png": "image/png"}
# Every staff page can be exported; the API, ingest, public survey pages, assets and
# sign-in cannot.
NOT_PAGES = ("/api", "/v1", "/s/", "/inproduct", "/static", "/login", "/logout")
SESSION_AGE = dt.timedelta(minutes=5)
router = APIRouter(tags=["reports"])


class ChromiumMissing(RuntimeError):
    pass


def chromium_path() -> str:
    return os.environ.get("CXM_CHROMIUM", "/usr/bin/chromium")


def check_path(path: str) -> str:
    """``path`` if it names an exportable staff page (with its query); Invalid otherwise."""
    if not path.startswith("/") or path.startswith("//") or "://" in path:
        raise Invalid(f"path {path!r} must be a page of cxm, like /dashboards")
    bare = path.split("?", 1)[0]
    if any(bare == p.rstrip("/") or bare.startswith(p) for p in NOT_PAGES):
        raise Invalid(f"path {bare!r} is not a page that can be exported; export a staff page "
                      "such as /, /departments/KEY, /cases or /feedback")  # fmt: skip
    return path


def render(
    engine: Engine, settings: Settings, base_url: str, user_id: str, path: str, fmt: Format
) -> bytes:
    """The page at ``base_url + path`` as ``user_id`` sees it, as PDF or PNG bytes.

    Raises Invalid (a path that is not an exportable page), ChromiumMissing (no browser).
    """
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    check_path(path)
    if not Path(chromium_path()).exists():
        raise ChromiumMissing(
            f"no chromium at {chromium_path()}: install Debian's chromium (make system-deps) "
            "or set CXM_CHROMIUM"
        )
    with engine.begin() as conn:
        token, _ = auth.start_session(conn, user_id, SESSION_AGE)
    cookie = Signer(secret_key(settings), salt="session").sign(token).decode()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium_path(),
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            try:
                context = browser.new_context(viewport={"width": 1440, "height": 900})
                context.add_cookies(
                    [{"name": SESSION_COOKIE, "value": cookie, "url": base_url.rstrip("/")}]
                )
                page = context.new_page()
                answer = page.goto(
                    base_url.rstrip("/") + path, wait_until="networkidle", timeout=60_000
                )
                if answer is not None and answer.status >= 400:
                    # Out of the reader's scope or missing: the export says so, like the page.
                    raise NotFound(f"{path} answered {answer.status} for this reader")
                if fmt == "pdf":
                    page.emulate_media(media="screen")
                    return page.pdf(format="A4", landscape=True, print_background=True)
                return page.screenshot(full_page=True)
            finally:
                browser.close()
    except PlaywrightError as exc:
        raise ChromiumMissing(f"chromium could not render {path}: {exc}") from exc
    finally:
        with engine.begin() as conn:
            auth.end_session(conn, token)


_BINARY = {"schema": {"type": "string", "format": "binary"}}


@router.get(
    "/reports/export",
    response_class=Response,
    responses={
        200: {"description": "The page", "content": {"application/pdf": _BINARY,
                                                     "image/png": _BINARY}},
        **responses(403, 404, 422, 503),
    },
)  # fmt: skip
async def export_page(
    request: Request,
    path: str = Query(..., description="the page, e.g. /dashboards?from=2026-10-01"),
    format: Format = Query("pdf"),
    as_user: str | None = Query(None, alias="as", description="admin only: render as this user"),
    who: Principal = Depends(require("read")),
) -> Response:
    """The page as the caller sees it (a user's key or session), as PDF or PNG."""
    engine = get_engine(request)
    check_path(path)
    user_id = who.user_id
    if as_user is not None:
        if who.scope != "admin":
            raise Forbidden("only an admin key may render a page as another user")
        with engine.connect() as conn:
            found = next((u for u in auth.list_users(conn) if u["email"] == as_user.lower()), None)
        if found is None:
            raise NotFound(f"no user with email {as_user}")
        user_id = str(found["id"])
    if user_id is None:
        raise Invalid("this key belongs to no user: name one with 'as' (admin keys only)")
    settings: Settings = request.app.state.settings
    base = str(request.base_url)

    def work() -> bytes:
        return render(engine, settings, base, user_id, path, format)

    try:
        body = await run_in_threadpool(work)
    except ChromiumMissing as exc:
        return JSONResponse(ErrorBody(detail=str(exc), errors=[]).model_dump(), status_code=503)
    name = path.strip("/").split("?")[0].replace("/", "-") or "home"
    return Response(
        body,
        media_type=MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="cxm-{name}.{format}"'},
    )


# ---- pages that come to people every week ----


def send_due_exports(
    engine: Engine, settings: Settings | None = None, now: dt.datetime | None = None
) -> dict[str, int]:
    """Email each page export due today (once per week per subscription), rendered as its
    subscriber sees the page at the server's address (``CXM_BASE_URL``); a failure is
    recorded with its reason and retried on the next run."""
    import smtplib

    from cxm.actions import digest
    from cxm.config import load_settings
    from cxm.mail import classify_failure, send_mail
    from cxm.store import utcnow

    settings = settings or load_settings()
    now = now or utcnow()
    counts = {"sent": 0, "failed": 0}
    with engine.connect() as conn:
        users = {str(u["id"]): u for u in auth.list_users(conn)}
        week, subs = digest.due(conn, digest.PAGE_EXPORT, now)
    for sub in subs:
        user = users.get(sub["user_id"])
        if user is None or not user["is_active"]:
            continue
        fmt: Format = "png" if sub["format"] == "png" else "pdf"
        status, error = "sent", None
        try:
            data = render(engine, settings, settings.base_url, sub["user_id"], sub["path"], fmt)
        except (ChromiumMissing, Invalid, NotFound, OSError) as exc:
            status, error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
        else:
            name = sub["path"].strip("/").split("?")[0].replace("/", "-") or "home"
            try:
                send_mail(
                    settings, str(user["email"]), f"cxm: {sub['path']} for the week of {week}",
                    f"The page {sub['path']} as of {now:%Y-%m-%d %H:%M} UTC is attached.\n\n"
                    f"Open it: {settings.base_url.rstrip('/')}{sub['path']}\n",
                    attachments=[(f"cxm-{name}-{week}.{fmt}", data, MEDIA[fmt])],
                )  # fmt: skip
            except (smtplib.SMTPException, OSError, ValueError) as exc:
                status, error = "failed", classify_failure(exc, str(user["email"])).text
        counts[status] += 1
        with engine.begin() as conn:
            digest.record_send(conn, sub["id"], week, status, error)
    return counts


@router.post("/reports/export/subscriptions", status_code=201, responses=responses(404, 422))
def subscribe_export(
    request: Request,
    path: str = Query(..., description="the page, e.g. /departments/service"),
    format: Format = Query("pdf"),
    weekday: int = Query(0, ge=0, le=6, description="0 Monday .. 6 Sunday"),
    who: Principal = Depends(require("read")),
) -> dict[str, object]:
    """Receive a page every week by email, as PDF or PNG, as you see it."""
    from cxm.actions import digest

    check_path(path)
    if who.email is None:
        raise Invalid("this key belongs to no user: subscribe with a user's key or session")
    with get_engine(request).begin() as conn:
        return digest.subscribe_export(conn, who.email, path, format, weekday)

"""The admins' status page: store, mail, jobs, webhooks, and the last errors, so that a failure
the worker meets in the background (no mail server, a receiver down) shows somewhere."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.engine import Connection

from cxm.actions import service as actions
from cxm.org.auth import Principal
from cxm.org.security import db, get_engine
from cxm.store import jobs
from cxm.surveys import distribution
from cxm.web import health
from cxm.web.names import job_kind
from cxm.web.pages import admin_only, render

router = APIRouter(include_in_schema=False)


def last_errors(
    job_rows: list[dict[str, Any]], mail: dict[str, Any], cases: dict[str, Any]
) -> list[dict[str, Any]]:
    """The newest error of each kind of background work, newest first."""
    found = []
    if mail["last_error"]:
        found.append({"what": "survey invitation email", "error": mail["last_error"],
                      "at": mail["last_error_at"]})  # fmt: skip
    for what, key in (("case notification email", "last_mail_error"),
                      ("case webhook", "last_hook_error")):  # fmt: skip
        if cases[key]:
            found.append({"what": what, "error": cases[key][0], "at": cases[key][1]})
    for row in job_rows:
        if row["last_error"]:
            found.append({"what": job_kind(row["kind"]), "error": row["last_error"], "at": None})
    return found


@router.get("/status", response_class=HTMLResponse)
def status_page(
    request: Request,
    who: Principal = Depends(admin_only),
    conn: Connection = Depends(db, scope="function"),
) -> HTMLResponse:
    """Is the installation well? Store, mail, jobs and webhooks, with the last errors."""
    settings = request.app.state.settings
    checks = [
        *health.store_checks(get_engine(request), settings.database_url),
        health.mail_check(settings, timeout=1.0),
        health.data_dir_check(settings),
    ]
    queue = [{**q, "name": job_kind(q["kind"])} for q in jobs.queue_summary(conn)]
    mail = distribution.email_health(conn)
    cases = actions.delivery_health(conn)
    return render(
        request, who, "status.html", checks=checks, queue=queue, mail=mail, cases=cases,
        errors=last_errors(queue, mail, cases),
    )  # fmt: skip

"""Server-rendered pages: organization and ownership matrix, settings."""

from __future__ import annotations

from typing import Any

import yaml
from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from sqlalchemy.engine import Connection

from cxm.employees import partners
from cxm.errors import CxmError, Invalid, NotFound
from cxm.metrics import Metric, set_target
from cxm.metrics import load as load_metrics
from cxm.metrics import service as metric_service
from cxm.metrics.definitions import installation_dir as metrics_dir
from cxm.org import auth, schemas
from cxm.org import service as org
from cxm.org.auth import Principal
from cxm.org.scope import scope_for
from cxm.org.security import db
from cxm.web.names import names_for
from cxm.web.sessions import check_csrf, csrf_token, signed_in
from cxm.web.templating import templates
from cxm.yamldoc import parse

router = APIRouter(include_in_schema=False)

EVERYONE = ("admin", "cx_lead", "manager", "agent", "viewer")
NAV = [
    ("/", "Overview", EVERYONE),
    ("/departments", "Departments", EVERYONE),
    ("/feedback", "Feedback", ("admin", "cx_lead", "manager", "viewer")),
    ("/journeys", "Journeys", ("admin", "cx_lead", "manager", "viewer")),
    ("/customers", "Customers", ("admin", "cx_lead", "manager")),
    ("/surveys", "Surveys", ("admin", "cx_lead", "manager")),
    ("/cases", "Cases", ("admin", "cx_lead", "manager", "agent")),
    ("/initiatives", "Initiatives", ("admin", "cx_lead", "manager")),
    ("/people", "People", ("admin", "cx_lead")),
    ("/rules", "Rules", ("admin", "cx_lead")),
    ("/org", "Organization", EVERYONE),
    ("/settings", "Settings", ("admin",)),
    ("/status", "Status", ("admin",)),
]


def render(
    request: Request, who: Principal, template: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Render a page with what every page needs: the user, the menu for their role, CSRF."""
    nav = [(href, label) for href, label, roles in NAV if who.role in roles]
    names = names_for(request.app.state.engine, scope_for(who))
    return templates.TemplateResponse(
        request,
        template,
        {"who": who, "nav": nav, "csrf_token": csrf_token(request), "names": names, **context},
        status_code=status_code,
    )


def error_page(request: Request, message: str, status_code: int) -> HTMLResponse:
    """An error as a page that keeps the navigation of whoever is signed in."""
    who = None
    try:
        who = request.app.state.session_principal(request)
    except Exception:  # an error page must render even when the store does not answer
        who = None
    context: dict[str, Any] = {"message": message, "status": status_code}
    if who is not None:
        nav = [(href, label) for href, label, roles in NAV if who.role in roles]
        context |= {"who": who, "csrf_token": csrf_token(request), "nav": nav}
    return templates.TemplateResponse(request, "error.html", context, status_code=status_code)


def admin_only(who: Principal = Depends(signed_in)) -> Principal:
    """Pages outside a role's scope answer 404, as if they did not exist."""
    if who.role != "admin":
        raise NotFound("page not found")
    return who


def _org_context(conn: Connection) -> dict[str, Any]:
    departments = org.list_departments(conn)
    teams = org.list_teams(conn)
    touchpoints = org.list_touchpoints(conn)
    return {
        "company": org.company_name(conn),
        "departments": departments,
        "teams": teams,
        "touchpoints": touchpoints,
        "department_names": {d.key: d.name for d in departments},
        "team_names": {t.key: t.name for t in teams},
        "unowned": [t for t in touchpoints if not t.owned],
    }


@router.get("/org", response_class=HTMLResponse)
def organization(
    request: Request,
    who: Principal = Depends(signed_in),
    conn: Connection = Depends(db, scope="function"),
) -> HTMLResponse:
    """The organization: the ownership matrix of touchpoints by departments, and the teams."""
    return render(request, who, "home.html", **_org_context(conn))


@router.get("/partners/{key}", response_class=HTMLResponse)
def partner_scorecard(
    key: str,
    request: Request,
    who: Principal = Depends(signed_in),
    conn: Connection = Depends(db, scope="function"),
) -> HTMLResponse:
    """A partner's scorecard: CSAT, NPS and CES of the touchpoints it runs, and what the
    signals there cost; the one page a partner user has."""
    scope = scope_for(who)
    partners.readable_partner(conn, scope, key)
    settings = request.app.state.settings
    card = partners.scorecard(
        request.app.state.engine, conn, settings.data_dir, key,
        metrics=load_metrics(metrics_dir(settings.data_dir)),
        min_slice=0 if scope.everything else settings.min_slice_size,
        minimum=settings.employee_min_group,
    )  # fmt: skip
    return render(request, who, "partner.html", card=card)


@router.post("/org/touchpoints/{key}", response_model=None)
def assign_touchpoint(
    request: Request,
    key: str,
    department_key: str = Form(...),
    team_key: str = Form(""),
    contributors: list[str] = Form(default=[]),
    csrf_token_: str = Form("", alias="csrf_token"),
    who: Principal = Depends(admin_only),
    conn: Connection = Depends(db, scope="function"),
) -> Response:
    """An admin assigns a touchpoint's owner and contributors from the matrix."""
    check_csrf(request, csrf_token_)
    try:
        body = schemas.TouchpointUpdate(
            department_key=department_key,
            team_key=team_key or None,
            contributors=[c for c in contributors if c != department_key],
        )
        org.update_touchpoint(conn, key, body)
    except (CxmError, ValueError) as exc:
        return render(request, who, "home.html", 422, error=str(exc), **_org_context(conn))
    return RedirectResponse(f"/org#tp-{key}", status_code=303)


@router.get("/settings", response_class=HTMLResponse)
def settings_page(
    request: Request,
    who: Principal = Depends(admin_only),
    conn: Connection = Depends(db, scope="function"),
) -> HTMLResponse:
    return _settings(request, who, conn)


def _settings(
    request: Request, who: Principal, conn: Connection, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    return render(
        request, who, "settings.html", status_code,
        users=auth.list_users(conn), keys=auth.list_api_keys(conn),
        departments=org.list_departments(conn), teams=org.list_teams(conn),
        roles=schemas.ROLES, scopes=auth.SCOPES, **_targets_context(request, conn), **extra,
    )  # fmt: skip


# Slices a target can be set for (any dimension the metrics layer knows works through the API).
TARGET_DIMENSIONS = ("department", "touchpoint", "team", "channel", "stage", "survey", "segment",
                     "region")  # fmt: skip


def catalog(request: Request) -> dict[str, Metric]:
    """The metric definitions, read once per app (shared with the dashboards)."""
    metrics: dict[str, Metric] | None = getattr(request.app.state, "metrics", None)
    if metrics is None:
        metrics = load_metrics()
        request.app.state.metrics = metrics
    return metrics


def _targets_context(request: Request, conn: Connection) -> dict[str, Any]:
    """Every metric with its shipped target and the installation's targets for it."""
    metrics = catalog(request)
    overrides: dict[str, list[dict[str, Any]]] = {}
    for row in metric_service.list_targets(conn):
        overrides.setdefault(row["metric"], []).append(row)
    return {
        "metric_targets": [
            {"metric": m, "overrides": overrides.get(name, [])}
            for name, m in sorted(metrics.items())
        ],
        "target_dimensions": TARGET_DIMENSIONS,
    }


@router.post("/settings/users", response_class=HTMLResponse)
def create_user(
    request: Request,
    email: str = Form(""),
    role: str = Form(""),
    password: str = Form(""),
    department_key: str = Form(""),
    team_key: str = Form(""),
    csrf_token_: str = Form("", alias="csrf_token"),
    who: Principal = Depends(admin_only),
    conn: Connection = Depends(db, scope="function"),
) -> HTMLResponse:
    check_csrf(request, csrf_token_)
    try:
        if len(password) < 10:
            raise Invalid("the password needs at least 10 characters")
        auth.create_user(
            conn, email, role, password=password,
            department_key=department_key or None, team_key=team_key or None,
        )  # fmt: skip
    except CxmError as exc:
        return _settings(request, who, conn, 422, error=str(exc))
    return _settings(request, who, conn, notice=f"created {role} {email.strip().lower()}")


@router.post("/settings/keys", response_class=HTMLResponse)
def create_key(
    request: Request,
    scope: str = Form(""),
    name: str = Form(""),
    csrf_token_: str = Form("", alias="csrf_token"),
    who: Principal = Depends(admin_only),
    conn: Connection = Depends(db, scope="function"),
) -> HTMLResponse:
    check_csrf(request, csrf_token_)
    try:
        token = auth.create_api_key(conn, scope, user_id=who.user_id, name=name or None)
    except CxmError as exc:
        return _settings(request, who, conn, 422, error=str(exc))
    return _settings(request, who, conn, new_key=token)


@router.post("/settings/keys/{key_id}/revoke", response_class=HTMLResponse)
def revoke_key(
    request: Request,
    key_id: str,
    csrf_token_: str = Form("", alias="csrf_token"),
    who: Principal = Depends(admin_only),
    conn: Connection = Depends(db, scope="function"),
) -> HTMLResponse:
    check_csrf(request, csrf_token_)
    auth.revoke_api_key(conn, key_id)
    return _settings(request, who, conn, notice="key revoked")


@router.post("/settings/targets", response_class=HTMLResponse)
def set_metric_target(
    request: Request,
    metric: str = Form(""),
    target: str = Form(""),
    dimension: str = Form(""),
    value: str = Form(""),
    csrf_token_: str = Form("", alias="csrf_token"),
    who: Principal = Depends(admin_only),
    conn: Connection = Depends(db, scope="function"),
) -> HTMLResponse:
    """Set a metric's target for the installation, or for one slice (department=billing)."""
    check_csrf(request, csrf_token_)
    dimension, value = dimension.strip(), value.strip()
    try:
        number = _number("target", target)
        set_target(conn, catalog(request), metric, number, dimension=dimension, value=value)
    except CxmError as exc:
        return _settings(request, who, conn, 422, error=str(exc), target_form=_target_form(
            metric, target, dimension, value))  # fmt: skip
    # Dashboards keep a minute of results; a new target must show on the next page view.
    request.app.state.frame_cache = None
    where = f" for {dimension}={value}" if dimension else ""
    return _settings(request, who, conn, notice=f"target for {metric}{where} set to {number:g}")


def _target_form(metric: str, target: str, dimension: str, value: str) -> dict[str, str]:
    """What the admin typed, to fill the form again after a mistake."""
    return {"metric": metric, "target": target, "dimension": dimension, "value": value}


def _number(field: str, raw: str) -> float:
    try:
        return float(raw.strip().replace(",", "."))
    except ValueError as exc:
        raise Invalid(f"{field}: '{raw}' is not a number; write it like 40 or 4.2") from exc


@router.get("/settings/org.yaml")
def export_org_file(
    who: Principal = Depends(admin_only), conn: Connection = Depends(db, scope="function")
) -> PlainTextResponse:
    text = yaml.safe_dump(org.export_org(conn), sort_keys=False, allow_unicode=True)
    return PlainTextResponse(
        text, headers={"Content-Disposition": 'attachment; filename="org.yaml"'}
    )


@router.post("/settings/org", response_class=HTMLResponse)
async def apply_org_file(
    request: Request,
    file: UploadFile,
    csrf_token_: str = Form("", alias="csrf_token"),
    who: Principal = Depends(admin_only),
    conn: Connection = Depends(db, scope="function"),
) -> HTMLResponse:
    check_csrf(request, csrf_token_)
    raw = await file.read()
    try:
        summary = org.apply_org(conn, parse(raw.decode("utf-8"), file.filename or "org.yaml"))
    except (CxmError, UnicodeDecodeError) as exc:
        return _settings(request, who, conn, 422, error=str(exc))
    created = ", ".join(f"{n} {k}" for k, n in summary.created.items()) or "nothing new"
    updated = ", ".join(f"{n} {k}" for k, n in summary.updated.items()) or "nothing"
    return _settings(
        request, who, conn, notice=f"org applied: created {created}; updated {updated}"
    )


@router.get("/inproduct/sample/help/account", response_class=HTMLResponse)
def inproduct_sample(
    request: Request,
    user: str | None = None,
    who: Principal = Depends(admin_only),
    conn: Connection = Depends(db, scope="function"),
) -> HTMLResponse:
    """A sample help page with the in-product snippet, as one customer (``?user=USER_ID``;
    default: the first customer with a user id), so admins see the snippet at work."""
    from cxm.customers import service as customers

    user_id = user or customers.first_identifier(conn, "user_id")
    customer = customers.find(conn, f"user_id:{user_id}") if user_id else None
    name = customers.display_name(conn, customer) if customer else "(none)"
    return templates.TemplateResponse(
        request,
        "inproduct_sample.html",
        {"user_id": user_id, "customer_name": name, "company": org.company_name(conn)},
    )

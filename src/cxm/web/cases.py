"""Pages of the closed loop: case inbox, case page, root-cause analytics, initiatives (list,
create, before/after), and the rules list and YAML editor."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import Connection

from cxm.actions import analytics, service
from cxm.actions.routing import team_agents
from cxm.actions.rules import describe
from cxm.actions.schemas import (
    STATUSES,
    AssignBody,
    InitiativeIn,
    NoteBody,
    RootCauseBody,
    RuleIn,
    StatusBody,
)
from cxm.errors import CxmError, Invalid, NotFound
from cxm.insights import impact
from cxm.names import CASE_STATUSES
from cxm.org import service as org
from cxm.org.auth import Principal
from cxm.org.scope import Scope, may_read_initiatives, readable_user_id, scope_for
from cxm.org.security import db, get_engine
from cxm.store.analytics import reading
from cxm.web.board import Board, frame_cache, readers
from cxm.web.filters import Filters
from cxm.web.listing import CSV_MAX, Listing, csv_response
from cxm.web.names import Names, names_for
from cxm.web.pages import catalog, render
from cxm.web.sessions import check_csrf, signed_in
from cxm.yamldoc import parse

router = APIRouter(include_in_schema=False)
M = TypeVar("M", bound=BaseModel)
LABELS = CASE_STATUSES


def _agents(conn: Connection, who: Principal) -> list[dict[str, object]]:
    """The agents the caller may assign to (staff emails are personal data: none for viewers)."""
    if not scope_for(who).personal_data:
        return []
    if who.role == "agent" and who.team_key:
        return team_agents(conn, who.team_key)
    teams = [
        t.key for t in org.list_teams(conn, who.department_key if who.role == "manager" else None)
    ]
    return [a for t in teams for a in team_agents(conn, t)]


@router.get("/cases", response_class=HTMLResponse, response_model=None)
def inbox(
    request: Request,
    status: str = Query("open"),
    assignee: str = Query(""),
    team: str = Query(""),
    who: Principal = Depends(signed_in),
    conn: Connection = Depends(db, scope="function"),
) -> Response:
    """The inbox: the agent's team (or the caller's scope), riskiest SLA first, a page at a
    time with its total; any column sorts, and ``format=csv`` downloads the whole list."""
    scope = scope_for(who)
    listing = Listing.from_request(request, service.CASE_SORTS)
    statuses = (
        ["new", "in_progress", "waiting_on_customer"]
        if status == "open"
        else None
        if status == "all"
        else [status]
    )
    chosen = "none" if assignee == "none" else (who.email if assignee == "me" else assignee)
    if chosen and chosen != "none":
        # Someone outside the caller's scope filters like an unknown user: no cases.
        chosen = readable_user_id(conn, scope, chosen) or "-"
    error = None
    rows: list[dict[str, Any]] = []
    where: dict[str, Any] = {"status": statuses, "assignee": chosen or None, "team": team or None}
    order: dict[str, Any] = {"sort": listing.sort or None, "descending": listing.descending}
    try:
        if chosen != "-":
            listing = listing.counted(service.count_cases(conn, scope, **where))
            if listing.wants_csv:
                return _cases_csv(_every_case(conn, scope, where, order), names_for(conn, scope))
            rows = service.list_cases(
                conn, scope, **where, **order, limit=listing.size, offset=listing.offset
            )
    except CxmError as exc:
        rows, error = [], str(exc)
    return render(
        request,
        who,
        "cases/inbox.html",
        cases=rows,
        listing=listing,
        labels=LABELS,
        status=status,
        assignee=assignee,
        team=team,
        statuses=STATUSES,
        agents=_agents(conn, who),
        teams=org.list_teams(conn),
        error=error,
    )


def _every_case(
    conn: Connection, scope: Scope, where: dict[str, Any], order: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every case the filters match, in the list's order (read 1,000 at a time, the most one
    read takes), up to ``CSV_MAX`` rows: the download is the whole list, not its first page."""
    rows: list[dict[str, Any]] = []
    while len(rows) < CSV_MAX:
        batch = service.list_cases(conn, scope, **where, **order, limit=1000, offset=len(rows))
        rows += batch
        if len(batch) < 1000:
            break
    return rows


def _cases_csv(rows: list[dict[str, Any]], names: Names) -> Response:
    return csv_response(
        rows,
        [
            ("id", "id"), ("title", "title"), ("priority", "priority"),
            ("status", lambda r: LABELS.get(r["status"], r["status"])),
            ("sla", "sla_state"), ("opened_at", "opened_at"),
            ("first_response_due", "first_response_due"), ("resolution_due", "resolution_due"),
            ("touchpoint", lambda r: names.touchpoint(r["touchpoint_key"], "")),
            ("team", lambda r: names.team(r["team_key"], "CX lead queue")),
            ("assignee", "assignee"),
            ("customer", lambda r: names.customer(r["customer_id"], "")),
            ("customer_id", "customer_id"),
        ],
        "cases.csv",
    )  # fmt: skip


@router.post("/cases/bulk-assign", response_model=None)
def bulk_assign(
    request: Request,
    case_ids: list[str] = Form(default=[]),
    assignee: str = Form(""),
    csrf_token_: str = Form("", alias="csrf_token"),
    who: Principal = Depends(signed_in),
    conn: Connection = Depends(db, scope="function"),
) -> Response:
    check_csrf(request, csrf_token_)
    if case_ids and assignee:
        service.bulk_assign(conn, scope_for(who), who.email, case_ids, assignee, "bulk assign")
    return RedirectResponse("/cases", status_code=303)


def _case_page(
    request: Request,
    who: Principal,
    conn: Connection,
    case_id: str,
    status_code: int = 200,
    error: str | None = None,
) -> HTMLResponse:
    scope = scope_for(who)
    case = service.get_case(conn, scope, case_id)
    timeline: list[dict[str, Any]] = []
    trigger = None
    if case["customer_id"] and scope.personal_data:
        from cxm.customer360 import service as c360

        try:
            timeline = c360.timeline(conn, case["customer_id"], limit=25)["items"]
        except NotFound:
            timeline = []
        trigger = next(
            (i for i in timeline if i["kind"] == "response" and i["id"] == case["source_id"]), None
        )
    return render(
        request,
        who,
        "cases/case.html",
        status_code,
        case=case,
        labels=LABELS,
        statuses=STATUSES,
        timeline=timeline,
        trigger=trigger,
        root_causes=service.list_root_causes(conn),
        agents=_agents(conn, who),
        error=error,
        rule_name=next(
            (r["name"] for r in service.list_rules(conn) if r["key"] == case["rule_key"]), None
        ),
        followup=service.followup_state(conn, case),
        delivery=service.notification_state(conn, case["id"]),
    )


@router.get("/cases/root-causes", response_class=HTMLResponse)
def root_cause_page(
    request: Request,
    who: Principal = Depends(signed_in),
    conn: Connection = Depends(db, scope="function"),
) -> HTMLResponse:
    """Cases and detractors by root cause over time, and what each root cause costs."""
    scope = scope_for(who)
    # Three reads side by side, shared and kept fresh like the dashboards' (see web.board).
    reads = {
        ("root_causes", scope): lambda con: analytics.root_causes(con, scope),
        ("root_cause_cost", scope): lambda con: analytics.root_cause_cost(con, scope),
        ("closed_loop", scope): lambda con: analytics.closed_loop(con, scope),
    }
    board = Board(readers(request), catalog(request), Filters(), frame_cache(request))
    board.run([], reads)
    rows, cost, loop = (board.result(key) for key in reads)
    return render(request, who, "cases/root_causes.html", rows=rows, cost=cost, loop=loop,
                  as_of=board.as_of)  # fmt: skip


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(
    request: Request,
    case_id: str,
    who: Principal = Depends(signed_in),
    conn: Connection = Depends(db, scope="function"),
) -> HTMLResponse:
    return _case_page(request, who, conn, case_id)


@router.post("/cases/{case_id}", response_model=None)
def act(
    request: Request,
    case_id: str,
    action: str = Form(...),
    status: str = Form(""),
    note: str = Form(""),
    assignee: str = Form(""),
    reason: str = Form(""),
    root_causes: list[str] = Form(default=[]),
    followup: str = Form(""),
    csrf_token_: str = Form("", alias="csrf_token"),
    who: Principal = Depends(signed_in),
    conn: Connection = Depends(db, scope="function"),
) -> Response:
    """One form per action on the case page: status, note, assign, root causes."""
    check_csrf(request, csrf_token_)
    scope = scope_for(who)
    try:
        # The form is checked by the API's own bodies, so both accept and refuse alike.
        if action == "status":
            st = _checked(StatusBody, status=status, reason=reason or None,
                          followup=followup == "yes")  # fmt: skip
            service.set_status(conn, scope, who.email, case_id, st.status, reason=st.reason,
                               followup=st.followup)  # fmt: skip
        elif action == "note":
            service.add_note(conn, scope, who.email, case_id, _checked(NoteBody, body=note).body)
        elif action == "assign":
            body = _checked(AssignBody, assignee=assignee or None, reason=reason or None)
            service.assign(conn, scope, who.email, case_id, body.assignee, reason=body.reason)
        elif action == "root_causes":
            checked = _checked(RootCauseBody, root_causes=root_causes)
            service.set_root_causes(conn, scope, who.email, case_id, checked.root_causes)
        else:
            raise Invalid(f"action: '{action}' is not one of status, note, assign, root_causes")
    except NotFound:
        raise
    except CxmError as exc:
        return _case_page(request, who, conn, case_id, 422, str(exc))
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


def _checked(model: type[M], **values: Any) -> M:
    """``values`` as the API's body ``model``, or Invalid naming each field and the fix."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise Invalid(_field_errors(exc)) from None


def _initiatives(
    request: Request,
    who: Principal,
    conn: Connection,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    departments = org.list_departments(conn)
    if who.role == "manager":
        departments = [d for d in departments if d.key == who.department_key]
    return render(
        request, who, "cases/initiatives.html", status_code,
        initiatives=service.list_initiatives(conn),
        root_cause_names={rc["key"]: rc["name"] for rc in service.list_root_causes(conn)},
        can_create=who.role in service.INITIATORS, departments=departments,
        touchpoints=org.list_touchpoints(conn), root_causes=service.list_root_causes(conn),
        form=extra.pop("form", {}), **extra,
    )  # fmt: skip


def _initiatives_reader(who: Principal = Depends(signed_in)) -> Principal:
    if not may_read_initiatives(scope_for(who)):
        raise NotFound("page not found")
    return who


@router.get("/initiatives", response_class=HTMLResponse)
def initiatives_page(
    request: Request,
    who: Principal = Depends(_initiatives_reader),
    conn: Connection = Depends(db, scope="function"),
) -> HTMLResponse:
    return _initiatives(request, who, conn)


def _field_errors(exc: ValidationError) -> str:
    labels = {"start_date": "start date", "owner_department": "owner department"}
    return "; ".join(
        f"{labels.get(str(e['loc'][0]), e['loc'][0]) if e['loc'] else 'form'}: {e['msg']}"
        for e in exc.errors()
    )


@router.post("/initiatives", response_model=None)
def create_initiative(
    request: Request,
    name: str = Form(""),
    description: str = Form(""),
    owner_department: str = Form(""),
    root_causes: list[str] = Form(default=[]),
    touchpoints: list[str] = Form(default=[]),
    metric: str = Form("nps"),
    start_date: str = Form(""),
    expected_effect: str = Form(""),
    csrf_token_: str = Form("", alias="csrf_token"),
    who: Principal = Depends(signed_in),
    conn: Connection = Depends(db, scope="function"),
) -> Response:
    """Create an initiative from the form (admin, CX lead, or a manager for their department)."""
    check_csrf(request, csrf_token_)
    if who.role not in service.INITIATORS:
        raise NotFound("page not found")
    form = {
        "name": name, "description": description, "owner_department": owner_department,
        "root_causes": root_causes, "touchpoints": touchpoints, "metric": metric,
        "start_date": start_date, "expected_effect": expected_effect,
    }  # fmt: skip
    try:
        try:
            effect = float(expected_effect) if expected_effect.strip() else None
        except ValueError:
            raise Invalid(
                f"expected effect: '{expected_effect}' is not a number; e.g. 0.3 or -5"
            ) from None
        try:
            body = InitiativeIn(
                name=name.strip(), description=description.strip() or None,
                owner_department=owner_department, root_causes=root_causes,
                touchpoints=touchpoints, metric=metric,  # type: ignore[arg-type]
                start_date=start_date or None,  # type: ignore[arg-type]
                expected_effect=effect,
            )  # fmt: skip
        except ValidationError as exc:
            raise Invalid(_field_errors(exc)) from exc
        created = service.create_initiative(conn, body, scope_for(who))
    except CxmError as exc:
        return _initiatives(request, who, conn, 422, error=str(exc), form=form)
    return RedirectResponse(f"/initiatives/{created['id']}", status_code=303)


@router.get("/initiatives/{initiative_id}", response_class=HTMLResponse)
def initiative_page(
    request: Request,
    initiative_id: str,
    who: Principal = Depends(_initiatives_reader),
    conn: Connection = Depends(db, scope="function"),
) -> HTMLResponse:
    """An initiative's targeted metric before and after its start, with a significance test,
    and its difference in differences against a control group (the API's figures)."""
    init = service.get_initiative(conn, initiative_id)
    effect = analytics.before_after(get_engine(request), init)
    with reading(get_engine(request)) as con:
        did = impact.initiative_impact(con, init["touchpoints"], init["metric"],
                                       init["start_date"])  # fmt: skip
    return render(request, who, "cases/initiative.html", initiative=init, effect=effect,
                  did=did)  # fmt: skip


# ---- rules ----

RULE_EDITORS = ("admin", "cx_lead")


def _rule_editor(who: Principal = Depends(signed_in)) -> Principal:
    if who.role not in RULE_EDITORS:
        raise NotFound("page not found")
    return who


RULE_SORTS: dict[str, Any] = {
    "name": lambda r: r["rule"].name.lower(), "priority": lambda r: r["rule"].priority,
    "opened": lambda r: r["opened"], "enabled": lambda r: r["enabled"],
}  # fmt: skip


@router.get("/rules", response_class=HTMLResponse, response_model=None)
def rules_page(
    request: Request,
    who: Principal = Depends(_rule_editor),
    conn: Connection = Depends(db, scope="function"),
) -> Response:
    """The rules with their condition, priority, SLA, routing, state and cases opened."""
    listing = Listing.from_request(request, tuple(RULE_SORTS))
    opened = analytics.cases_per_rule(get_engine(request))
    rows = []
    for row in service.list_rules(conn):
        rule = RuleIn.model_validate(row["definition"])
        rows.append(
            {"rule": rule, "enabled": row["enabled"], "opened": opened.get(rule.key, 0)}
            | describe(rule)
        )
    if listing.wants_csv:
        return csv_response(
            rows,
            [("key", lambda r: r["rule"].key), ("name", lambda r: r["rule"].name),
             ("condition", "condition"), ("priority", lambda r: r["rule"].priority),
             ("sla", "sla"), ("routing", "routing"), ("cases_opened", "opened"),
             ("enabled", "enabled")],
            "rules.csv",
        )  # fmt: skip
    shown, listing = listing.in_memory(rows, RULE_SORTS)
    return render(request, who, "cases/rules.html", rules=shown, listing=listing)


@router.post("/rules/{key}/enabled", response_model=None)
def rule_enabled(
    request: Request,
    key: str,
    enabled: str = Form(...),
    csrf_token_: str = Form("", alias="csrf_token"),
    who: Principal = Depends(_rule_editor),
    conn: Connection = Depends(db, scope="function"),
) -> Response:
    check_csrf(request, csrf_token_)
    service.set_rule_enabled(conn, key, enabled == "yes")
    return RedirectResponse(f"/rules#rule-{key}", status_code=303)


def _editor(
    request: Request, who: Principal, text: str, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    return render(request, who, "cases/rules_edit.html", status_code, text=text, **extra)


@router.get("/rules/edit", response_class=HTMLResponse)
def rules_editor(
    request: Request,
    who: Principal = Depends(_rule_editor),
    conn: Connection = Depends(db, scope="function"),
) -> HTMLResponse:
    return _editor(request, who, service.export_rules(conn))


@router.post("/rules/edit", response_class=HTMLResponse)
def rules_save(
    request: Request,
    rules_yaml: str = Form("", alias="rules"),
    action: str = Form("check"),
    csrf_token_: str = Form("", alias="csrf_token"),
    who: Principal = Depends(_rule_editor),
    conn: Connection = Depends(db, scope="function"),
) -> HTMLResponse:
    """Check the rules (change nothing) or save them (the text becomes the whole rule set)."""
    check_csrf(request, csrf_token_)
    try:
        doc = parse(rules_yaml, "rules")
        checked = service.check_rules(conn, doc)
    except CxmError as exc:
        return _editor(request, who, rules_yaml, 422, problems=str(exc).split("; "))
    if action != "save":
        stored = {r["key"] for r in service.list_rules(conn)}
        dropped = sorted(stored - {r.key for r in checked})
        notice = f"{len(checked)} rule(s) valid; nothing saved yet."
        if dropped:
            notice += f" Saving removes: {', '.join(dropped)}."
        return _editor(request, who, rules_yaml, notice=notice)
    outcome = service.sync_rules(conn, doc)
    said = [f"{k} {', '.join(v)}" for k, v in outcome.items() if v and k != "unchanged"]
    notice = "Saved: " + "; ".join(said) + "." if said else "Saved: no change."
    return _editor(request, who, service.export_rules(conn), notice=notice)

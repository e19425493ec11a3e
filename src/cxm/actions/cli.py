"""``cxm cases list|show|assign|resolve`` and ``cxm rules apply|run|list``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import typer

from cxm.console import (
    bad_input,
    call_server,
    check_format,
    check_page,
    engine,
    errors,
    fail,
    page,
    print_json,
    print_list,
    print_table,
    server_owning_store,
)

if TYPE_CHECKING:
    from cxm.names import Names
    from cxm.org.scope import Scope

cases_app = typer.Typer(
    help="Closed-loop cases: list, show, assign, resolve.", no_args_is_help=True
)
rules_app = typer.Typer(
    help="Rules that open cases: apply a file, run them now.", no_args_is_help=True
)
ACTOR = "cli"
# The case inbox's headings (the id column, which the inbox links instead, is the one to paste).
CASE_HEADINGS = {"id": "ID", "title": "Case", "priority": "Priority", "status": "Status",
                 "sla_state": "SLA", "due": "Due (UTC)", "touchpoint": "Touchpoint",
                 "team": "Team", "assignee": "Assignee"}  # fmt: skip
# The columns a narrow terminal leaves out, first named first (the id, title and status stay).
NARROW = ("assignee", "team", "touchpoint", "due", "priority", "sla_state")


def _operator() -> Scope:
    """The CLI runs as the operator of the installation: everything is in scope."""
    from cxm.org.scope import Scope

    return Scope("admin")


def _format(fmt: str, allowed: tuple[str, ...] = ("table", "json")) -> None:
    check_format(fmt, allowed)


@cases_app.command("list")
def list_(
    fmt: str = typer.Option("table", "--format", help="table | csv | json"),
    status: list[str] = typer.Option([], "--status", help="new, in_progress, ... (repeatable)"),
    team: str | None = typer.Option(None, help="only this team's cases"),
    assignee: str | None = typer.Option(None, help="user email, or 'none' for unassigned"),
    limit: int = typer.Option(200, help="at most this many (1 to 1000)"),
    offset: int = typer.Option(0, help="skip this many (the next page)"),
) -> None:
    """Cases sorted by SLA risk; each names its touchpoint and team. Ids print whole, so
    'cxm cases show ID' takes any of them."""
    from cxm.actions import service
    from cxm.actions.schemas import STATUSES
    from cxm.org import service as org

    check_format(fmt)
    check_page(limit, offset)
    unknown = sorted(set(status) - set(STATUSES))
    if unknown:
        bad_input(f"--status {unknown[0]!r} is not a case status; known: {', '.join(STATUSES)}")
    with errors(), engine().connect() as conn:
        where: dict[str, Any] = {"status": status or None, "team": team, "assignee": assignee}
        rows = service.list_cases(conn, _operator(), **where, limit=limit, offset=offset)
        total = service.count_cases(conn, _operator(), **where)
        # Names, not keys (the JSON keeps both).
        touchpoints = {t.key: t.name for t in org.list_touchpoints(conn)}
        teams = {t.key: t.name for t in org.list_teams(conn)}
        for r in rows:
            r["touchpoint"] = touchpoints.get(r["touchpoint_key"] or "", r["touchpoint_key"]) or "—"
            r["team"] = teams.get(r["team_key"] or "", r["team_key"]) or "CX lead queue"
    if fmt == "json":
        print_json(rows)
        return
    for r in rows:
        r["due"] = (
            r["first_response_due"] if r["first_response_at"] is None else r["resolution_due"]
        ).strftime("%Y-%m-%d %H:%M")
    if fmt == "csv":  # statuses as keys, as the JSON and the --status option take them
        columns = ["id", "priority", "status", "sla_state", "due", "touchpoint", "team",
                   "assignee", "title"]  # fmt: skip
        print_list(rows, columns, "Cases", fmt=fmt, total=total, offset=offset)
        return
    from cxm.names import case_status, sla_state

    columns = ["id", "title", "priority", "status", "sla_state", "due", "touchpoint", "team",
               "assignee"]  # fmt: skip
    shown = [r | {"status": case_status(r["status"]), "sla_state": sla_state(r["sla_state"]),
                  "assignee": r["assignee"] or "—"} for r in rows]  # fmt: skip
    print_list(shown, columns, "Cases", fmt=fmt, total=total, offset=offset,
               headings=CASE_HEADINGS, wrap=("title",), optional=NARROW)  # fmt: skip


@cases_app.command("show")
def show(case_id: str, fmt: str = typer.Option("json", "--format", help="table | json")) -> None:
    """One case with its history, notes and root causes."""
    from cxm.actions import service
    from cxm.names import Names, humanize

    _format(fmt)
    with errors(), engine().connect() as conn:
        case = service.get_case(conn, _operator(), case_id)
        if fmt == "json":
            print_json(case)
            return
        causes = {r["key"]: r["name"] for r in service.list_root_causes(conn)}
        case["root_causes"] = [causes.get(k, k) for k in case["root_causes"]]
        rule = next((r["name"] for r in service.list_rules(conn) if r["key"] == case["rule_key"]),
                    case["rule_key"])  # fmt: skip
        followup = service.followup_state(conn, case)
        names = Names(conn)
        facts = _case_facts(case | {"rule": rule, "followup": followup}, names)
        history = [{"when": _when_text(e["occurred_at"]), "actor": e["actor"] or "—",
                    "change": humanize(e["kind"]), "field": humanize(e["field"] or ""),
                    "from": names.history_value(e["field"], e["old_value"], "—"),
                    "to": names.history_value(e["field"], e["new_value"], "—"),
                    "reason": f"rule: {rule}" if e["reason"] == f"rule {case['rule_key']}"
                    else humanize(e["reason"] or "")} for e in case["history"]]  # fmt: skip
    print_table(facts, ["field", "value"], f"Case {case_id}",
                headings={"field": "Field", "value": "Value"}, whole=("value",))  # fmt: skip
    print_table(history, ["when", "actor", "change", "field", "from", "to", "reason"], "History",
                headings=HISTORY_HEADINGS)  # fmt: skip
    if case["notes"]:
        notes = [{"when": _when_text(n["created_at"]), "note": n["body"]} for n in case["notes"]]
        print_table(notes, ["when", "note"], "Notes", headings={"when": "When (UTC)",
                    "note": "Note"}, wrap=("note",))  # fmt: skip


HISTORY_HEADINGS = {"when": "When (UTC)", "actor": "By", "change": "Change", "field": "Field",
                    "from": "From", "to": "To", "reason": "Reason"}  # fmt: skip


def _when_text(value: Any) -> str:
    """A stored time as the case pages show it: 2026-09-07 14:05 (UTC), or "—"."""
    if value is None:
        return "—"
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return text[:16].replace("T", " ")


def _case_facts(case: dict[str, Any], names: Names) -> list[dict[str, Any]]:
    """One case's facts as rows of (field, value), named as the case page names them."""
    from cxm.names import case_status, sla_state

    customer = case.get("customer_id")
    rows = [
        ("ID", case["id"]),
        ("Case", case["title"]),
        ("Status", case_status(case["status"])),
        ("Priority", case["priority"]),
        ("SLA", sla_state(case["sla_state"])),
        ("Opened (UTC)", _when_text(case["opened_at"])),
        ("First response due (UTC)", _when_text(case["first_response_due"])),
        ("First response (UTC)", _when_text(case.get("first_response_at"))),
        ("Resolution due (UTC)", _when_text(case["resolution_due"])),
        ("Resolved (UTC)", _when_text(case.get("resolved_at"))),
        (
            "Customer",
            f"{names.customer(customer, '—', unnamed='')} {customer}".strip() if customer else "—",
        ),
        ("Touchpoint", names.touchpoint(case.get("touchpoint_key"))),
        ("Department", names.department(case.get("department_key"))),
        ("Team", names.team(case.get("team_key"), "CX lead queue")),
        ("Assignee", case.get("assignee") or "—"),
        ("Follow-up", case["followup"] or "—"),
        ("Rule", case["rule"]),
        ("Source", f"{case['source_kind']} {case['source_id']}"),
    ]
    if case["root_causes"]:
        rows.append(("Root causes", ", ".join(case["root_causes"])))
    return [{"field": f, "value": v} for f, v in rows]


@cases_app.command("assign")
def assign(
    case_id: str,
    assignee: str = typer.Argument(..., help="user email"),
    reason: str | None = typer.Option(None, help="why (kept in the case history)"),
    team: str | None = typer.Option(None, help="move the case to this team's key first"),
) -> None:
    """Reassign a case to a user, moving it to --team first if given (through the server's
    API while 'cxm serve' runs)."""
    from cxm.actions import service

    server = server_owning_store()
    if server is not None:
        body = {"assignee": assignee, "team": team, "reason": reason}
        case = call_server(server, "POST", f"/cases/{quote(case_id, safe='')}/assign", body)
    else:
        with errors(), engine().begin() as conn:
            case = service.assign(
                conn, _operator(), ACTOR, case_id, assignee, team=team, reason=reason
            )
    typer.echo(f"case {case_id} assigned to {case['assignee']}")


@cases_app.command("resolve")
def resolve(case_id: str, reason: str | None = typer.Option(None, help="what was done")) -> None:
    """Mark a case resolved (through the server's API while 'cxm serve' runs)."""
    from cxm.actions import service

    server = server_owning_store()
    if server is not None:
        body = {"status": "resolved", "reason": reason}
        call_server(server, "POST", f"/cases/{quote(case_id, safe='')}/status", body)
    else:
        with errors(), engine().begin() as conn:
            service.resolve(conn, _operator(), ACTOR, case_id, reason)
    typer.echo(f"case {case_id} resolved")


@rules_app.command("apply")
def apply(file: Path = typer.Argument(..., help="rules YAML file")) -> None:
    """Create or replace the rules in FILE (errors name the line); through the server's API
    while 'cxm serve' runs."""
    from cxm.actions import service
    from cxm.yamldoc import read

    server = server_owning_store()
    if server is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            bad_input(f"cannot read {file}: {exc}")
        keys = call_server(server, "PUT", "/rules", yaml_text=text)["applied"]
    else:
        with errors(), engine().begin() as conn:
            keys = service.apply_rules(conn, read(file))
    typer.echo(f"applied {len(keys)} rule(s): {', '.join(keys)}")


@rules_app.command("run")
def run() -> None:
    """Evaluate every enabled rule now; running it twice opens nothing new (through the
    server's API while 'cxm serve' runs)."""
    from cxm.actions import service

    server = server_owning_store()
    if server is not None:
        opened = call_server(server, "POST", "/rules/run")["opened"]
    else:
        with errors(), engine().begin() as conn:
            opened = service.run_rules(conn)
    total = sum(opened.values())
    detail = ", ".join(f"{k} {n}" for k, n in opened.items()) or "no rules"
    typer.echo(f"opened {total} case(s): {detail}")


@rules_app.command("list")
def list_rules(
    fmt: str = typer.Option("table", "--format", help="table | csv | json"),
    limit: int = typer.Option(100, help="at most this many"),
    offset: int = typer.Option(0, help="skip this many (the next page)"),
) -> None:
    """The rules with their trigger and whether they are enabled."""
    from cxm.actions import service

    check_format(fmt)
    check_page(limit, offset)
    with engine().connect() as conn:
        rows = service.list_rules(conn)
    print_list(page(rows, limit, offset), ["key", "name", "trigger", "enabled"], "Rules",
               fmt=fmt, total=len(rows), offset=offset, whole=("key",))  # fmt: skip


@rules_app.command("webhook-add")
def webhook_add(
    url: str = typer.Option(..., help="the receiver's URL (a Slack or Teams incoming webhook)"),
    secret: str = typer.Option(..., help="signs each body (X-Cxm-Signature); 16+ characters"),
    event: list[str] = typer.Option(
        [], "--event", help="case_opened, detractor_response, metric_alert, ... (repeatable)"
    ),
    fmt: str = typer.Option("cxm", "--format", help="cxm (signed JSON) | slack | teams"),
    name: str | None = typer.Option(None, help="a name to tell hooks apart"),
) -> None:
    """Add an outgoing webhook (through the server's API while 'cxm serve' runs)."""
    from pydantic import ValidationError

    from cxm.actions import service
    from cxm.actions.schemas import WebhookIn

    fields: dict[str, Any] = {"url": url, "secret": secret, "format": fmt, "name": name}
    if event:
        fields["events"] = event
    try:
        body = WebhookIn.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        bad_input(f"--{where.split('.')[0]}: {first['msg']}")
    server = server_owning_store()
    if server is not None:
        hook = call_server(server, "POST", "/rules/webhooks", body.model_dump())
    else:
        with errors(), engine().begin() as conn:
            hook = service.add_webhook(conn, body)
    typer.echo(f"added webhook {hook['id']} ({hook['format']}): {', '.join(hook['events'])}")


@rules_app.command("webhooks")
def webhooks_(fmt: str = typer.Option("table", "--format", help="table | csv | json")) -> None:
    """The outgoing webhooks with their format and events, and their last delivery."""
    from cxm.actions import service

    check_format(fmt)
    with errors(), engine().connect() as conn:
        hooks = service.list_webhooks(conn)
        last: dict[str, dict[str, Any]] = {}
        for d in service.deliveries(conn):
            last[d["webhook_id"]] = d
    rows = [
        h
        | {
            "events": ", ".join(h["events"]),
            "last_delivery": (
                f"{last[h['id']]['status']} {last[h['id']]['attempted_at']:%Y-%m-%d %H:%M}"
                if h["id"] in last
                else "none yet"
            ),
        }
        for h in hooks
    ]
    cols = ["id", "name", "format", "events", "url", "active", "last_delivery"]
    print_list(rows, cols, "Webhooks", fmt=fmt, total=len(rows), offset=0, whole=("id",))


reports_app = typer.Typer(
    help="Reports that come to people: weekly department digests.", no_args_is_help=True
)


@reports_app.command("digest")
def digest_(
    department: str = typer.Argument(..., help="department key, e.g. supply_chain"),
    week: str | None = typer.Option(None, help="the Monday the week starts (default: last week)"),
    send_to: str | None = typer.Option(None, help="email it to this address now"),
) -> None:
    """Print a department's weekly digest (or send it): scores, movers, themes, overdue cases."""
    import datetime as dt

    from cxm.actions import digest
    from cxm.config import load_settings
    from cxm.mail import send_mail

    try:
        start = dt.date.fromisoformat(week) if week else digest.week_of(dt.date.today())
    except ValueError:
        bad_input(f"--week {week!r} is not a date like 2026-11-23")
    settings = load_settings()
    with errors():
        built = digest.build(engine(), department, start)
        subject, text, html = digest.render(built, settings.base_url)
        if send_to:
            try:
                send_mail(settings, send_to, subject, text, html=html)
            except OSError as exc:
                fail(f"could not send to {send_to}: {exc} (check the CXM_SMTP_* settings)", 1)
            typer.echo(f"sent '{subject}' to {send_to}")
            return
    typer.echo(text)


@reports_app.command("subscribe")
def subscribe(
    email: str = typer.Argument(..., help="the user who receives it"),
    department: str = typer.Argument(..., help="department key"),
    weekday: int = typer.Option(0, help="0 Monday .. 6 Sunday"),
) -> None:
    """Email a department's digest to a user every week on WEEKDAY."""
    from cxm.actions import digest

    with errors(), engine().begin() as conn:
        sub = digest.subscribe(conn, _operator(), email, department, weekday)
    day = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")[weekday]
    typer.echo(f"{sub['email']} receives the {department} digest every {day} ({sub['id']})")

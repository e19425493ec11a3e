"""``cxm cases list|show|assign|resolve`` and ``cxm rules apply|run|list``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cxm.console import (
    bad_input,
    call_server,
    check_format,
    check_page,
    engine,
    errors,
    page,
    print_json,
    print_list,
    print_table,
    server_owning_store,
)

if TYPE_CHECKING:
    from cxm.org.scope import Scope

cases_app = typer.Typer(
    help="Closed-loop cases: list, show, assign, resolve.", no_args_is_help=True
)
rules_app = typer.Typer(
    help="Rules that open cases: apply a file, run them now.", no_args_is_help=True
)
ACTOR = "cli"


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
    columns = ["id", "priority", "status", "sla_state", "due", "touchpoint", "team",
               "assignee", "title"]  # fmt: skip
    print_list(rows, columns, "Cases", fmt=fmt, total=total, offset=offset)


@cases_app.command("show")
def show(case_id: str, fmt: str = typer.Option("json", "--format", help="table | json")) -> None:
    """One case with its history, notes and root causes."""
    from cxm.actions import service

    _format(fmt)
    with errors(), engine().connect() as conn:
        case = service.get_case(conn, _operator(), case_id)
    if fmt == "json":
        print_json(case)
        return
    print_table(
        [{"field": k, "value": v} for k, v in case.items() if k not in ("history", "notes")],
        ["field", "value"],
        f"Case {case_id}",
    )
    print_table(
        case["history"],
        ["occurred_at", "actor", "kind", "field", "old_value", "new_value", "reason"],
        "History",
    )


@cases_app.command("assign")
def assign(
    case_id: str,
    assignee: str = typer.Argument(..., help="user email"),
    reason: str | None = typer.Option(None, help="why (kept in the case history)"),
) -> None:
    """Reassign a case to a user."""
    from cxm.actions import service

    with errors(), engine().begin() as conn:
        case = service.assign(conn, _operator(), ACTOR, case_id, assignee, reason=reason)
    typer.echo(f"case {case_id} assigned to {case['assignee']}")


@cases_app.command("resolve")
def resolve(case_id: str, reason: str | None = typer.Option(None, help="what was done")) -> None:
    """Mark a case resolved."""
    from cxm.actions import service

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

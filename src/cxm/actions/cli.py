"""``cxm cases list|show|assign|resolve`` and ``cxm rules apply|run|list``."""

from __future__ import annotations

from pathlib import Path

import typer

from cxm.actions import service
from cxm.console import engine, errors, fail, print_json, print_table
from cxm.org.scope import Scope
from cxm.yamldoc import read

cases_app = typer.Typer(
    help="Closed-loop cases: list, show, assign, resolve.", no_args_is_help=True
)
rules_app = typer.Typer(
    help="Rules that open cases: apply a file, run them now.", no_args_is_help=True
)
# The CLI runs as the operator of the installation: everything is in scope.
OPERATOR = Scope("admin")
ACTOR = "cli"


def _format(fmt: str) -> None:
    if fmt not in ("table", "json"):
        fail("--format must be table or json", 2)


@cases_app.command("list")
def list_(
    fmt: str = typer.Option("table", "--format", help="table | json"),
    status: list[str] = typer.Option([], "--status", help="new, in_progress, ... (repeatable)"),
    team: str | None = typer.Option(None, help="only this team's cases"),
    assignee: str | None = typer.Option(None, help="user email, or 'none' for unassigned"),
    limit: int = typer.Option(200, help="at most this many"),
) -> None:
    """Cases sorted by SLA risk; each names its touchpoint and team."""
    _format(fmt)
    with errors(), engine().connect() as conn:
        rows = service.list_cases(
            conn, OPERATOR, status=status or None, team=team, assignee=assignee, limit=limit
        )
    if fmt == "json":
        print_json(rows)
        return
    for r in rows:
        r["team"] = r["team_key"] or "CX lead queue"
        r["due"] = (
            r["first_response_due"] if r["first_response_at"] is None else r["resolution_due"]
        ).strftime("%Y-%m-%d %H:%M")
    print_table(
        rows,
        [
            "id",
            "priority",
            "status",
            "sla_state",
            "due",
            "touchpoint_key",
            "team",
            "assignee",
            "title",
        ],
        "Cases",
    )


@cases_app.command("show")
def show(case_id: str, fmt: str = typer.Option("json", "--format", help="table | json")) -> None:
    """One case with its history, notes and root causes."""
    _format(fmt)
    with errors(), engine().connect() as conn:
        case = service.get_case(conn, OPERATOR, case_id)
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
    with errors(), engine().begin() as conn:
        case = service.assign(conn, OPERATOR, ACTOR, case_id, assignee, reason=reason)
    typer.echo(f"case {case_id} assigned to {case['assignee']}")


@cases_app.command("resolve")
def resolve(case_id: str, reason: str | None = typer.Option(None, help="what was done")) -> None:
    """Mark a case resolved."""
    with errors(), engine().begin() as conn:
        service.resolve(conn, OPERATOR, ACTOR, case_id, reason)
    typer.echo(f"case {case_id} resolved")


@rules_app.command("apply")
def apply(file: Path = typer.Argument(..., help="rules YAML file")) -> None:
    """Create or replace the rules in FILE (errors name the line)."""
    with errors(), engine().begin() as conn:
        keys = service.apply_rules(conn, read(file))
    typer.echo(f"applied {len(keys)} rule(s): {', '.join(keys)}")


@rules_app.command("run")
def run() -> None:
    """Evaluate every enabled rule now; running it twice opens nothing new."""
    with errors(), engine().begin() as conn:
        opened = service.run_rules(conn)
    total = sum(opened.values())
    detail = ", ".join(f"{k} {n}" for k, n in opened.items()) or "no rules"
    typer.echo(f"opened {total} case(s): {detail}")


@rules_app.command("list")
def list_rules(fmt: str = typer.Option("table", "--format", help="table | json")) -> None:
    """The rules with their trigger and whether they are enabled."""
    _format(fmt)
    with engine().connect() as conn:
        rows = service.list_rules(conn)
    if fmt == "json":
        print_json(rows)
        return
    print_table(rows, ["key", "name", "trigger", "enabled"], "Rules")

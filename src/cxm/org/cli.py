"""``cxm org`` and ``cxm keys`` / ``cxm users`` commands."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

from cxm.console import console, engine, errors, print_json, print_table
from cxm.org import auth, service
from cxm.yamldoc import read

app = typer.Typer(help="Departments, teams, touchpoints and who owns them.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (shown once, stored hashed).", no_args_is_help=True)
users_app = typer.Typer(help="Users who sign in to the web app.", no_args_is_help=True)


@app.command("apply")
def apply(file: Path = typer.Argument(..., help="org.yaml to apply")) -> None:
    """Create or update departments, teams and touchpoints from an org file (idempotent)."""
    with errors():
        doc = read(file)
        with engine().begin() as conn:
            summary = service.apply_org(conn, doc)
    for outcome in ("created", "updated", "unchanged"):
        counts = getattr(summary, outcome)
        if counts:
            console.print(f"{outcome}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))


@app.command("export")
def export(
    output: Path | None = typer.Option(None, "--output", "-o", help="write here, not stdout"),
) -> None:
    """Write the org as an org file (the format 'cxm org apply' reads)."""
    with engine().connect() as conn:
        text = yaml.safe_dump(service.export_org(conn), sort_keys=False, allow_unicode=True)
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        typer.echo(text, nl=False)


@app.command("departments")
def departments(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """List departments."""
    with engine().connect() as conn:
        rows = [d.model_dump() for d in service.list_departments(conn)]
    print_json(rows) if as_json else print_table(rows, ["key", "name"], "Departments")


@app.command("touchpoints")
def touchpoints(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """List touchpoints with their owners; unowned ones are flagged."""
    with engine().connect() as conn:
        rows = [t.model_dump() for t in service.list_touchpoints(conn)]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        row["owner"] = f"{row['department_key']}/{row['team_key']}" if row["owned"] else "UNOWNED"
        row["contributors"] = ", ".join(row["contributors"])
    print_table(rows, ["key", "name", "channel", "stage", "owner", "contributors"], "Touchpoints")


@keys_app.command("create")
def create_key(
    scope: str = typer.Option(..., help="ingest | read | admin"),
    user: str | None = typer.Option(None, help="email of the user the key belongs to"),
    name: str | None = typer.Option(None, help="a label to recognise the key by"),
) -> None:
    """Create an API key and print it once."""
    with errors(), engine().begin() as conn:
        user_id = auth.user_id_for(conn, user) if user else None
        token = auth.create_api_key(conn, scope, user_id=user_id, name=name)
    console.print("[bold]Store this key now; it is not shown again:[/]")
    typer.echo(token)


@keys_app.command("list")
def list_keys(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """List API keys (prefix and scope only)."""
    with engine().connect() as conn:
        rows = auth.list_api_keys(conn)
    print_json(rows) if as_json else print_table(
        rows, ["id", "prefix", "scope", "name", "user_id", "created_at", "revoked_at"], "API keys"
    )


@keys_app.command("revoke")
def revoke_key(key_id: str) -> None:
    """Revoke an API key by its id."""
    with errors(), engine().begin() as conn:
        auth.revoke_api_key(conn, key_id)
    console.print(f"revoked {key_id}")


@users_app.command("create")
def create_user(
    email: str,
    role: str = typer.Option(..., help="admin | cx_lead | manager | agent | viewer"),
    department: str | None = typer.Option(None, help="department key (managers)"),
    team: str | None = typer.Option(None, help="team key (agents)"),
    password: str | None = typer.Option(None, help="prompted when omitted"),
    name: str | None = typer.Option(None),
) -> None:
    """Create a user who can sign in to the web app."""
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with errors(), engine().begin() as conn:
        auth.create_user(
            conn,
            email,
            role,
            password=password,
            name=name,
            department_key=department,
            team_key=team,
        )
    console.print(f"created {role} {email}")

"""``cxm org`` and ``cxm keys`` / ``cxm users`` commands."""

from __future__ import annotations

from pathlib import Path

import typer

from cxm.console import (
    call_server,
    check_format,
    check_page,
    console,
    engine,
    errors,
    page,
    print_list,
    server_owning_store,
)

app = typer.Typer(help="Departments, teams, touchpoints and who owns them.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (shown once, stored hashed).", no_args_is_help=True)
users_app = typer.Typer(help="Users who sign in to the web app.", no_args_is_help=True)


@app.command("apply")
def apply(file: Path = typer.Argument(..., help="org.yaml to apply")) -> None:
    """Create or update departments, teams and touchpoints from an org file (idempotent)."""
    from cxm.org import service
    from cxm.yamldoc import read

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
    import yaml

    from cxm.org import service

    with engine().connect() as conn:
        text = yaml.safe_dump(service.export_org(conn), sort_keys=False, allow_unicode=True)
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        typer.echo(text, nl=False)


FORMAT = typer.Option("table", "--format", help="table | csv | json")
AS_JSON = typer.Option(False, "--json", help="print JSON (same as --format json)")
LIMIT = typer.Option(100, "--limit", help="at most this many rows")
OFFSET = typer.Option(0, "--offset", help="skip this many rows (the next page)")


def _fmt(fmt: str, as_json: bool) -> str:
    return "json" if as_json else check_format(fmt)


@app.command("departments")
def departments(
    fmt: str = FORMAT, as_json: bool = AS_JSON, limit: int = LIMIT, offset: int = OFFSET
) -> None:
    """List departments."""
    from cxm.org import service

    fmt = _fmt(fmt, as_json)
    check_page(limit, offset)
    with engine().connect() as conn:
        rows = [d.model_dump() for d in service.list_departments(conn)]
    shown = page(rows, limit, offset)
    print_list(shown, ["key", "name"], "Departments", fmt=fmt, total=len(rows), offset=offset,
               whole=("key",))  # fmt: skip


@app.command("touchpoints")
def touchpoints(
    fmt: str = FORMAT, as_json: bool = AS_JSON, limit: int = LIMIT, offset: int = OFFSET
) -> None:
    """List touchpoints with their owners; unowned ones are flagged."""
    from cxm.org import service

    fmt = _fmt(fmt, as_json)
    check_page(limit, offset)
    with engine().connect() as conn:
        rows = [t.model_dump() for t in service.list_touchpoints(conn)]
        departments = {d.key: d.name for d in service.list_departments(conn)}
        teams = {t.key: t.name for t in service.list_teams(conn)}
    shown = page(rows, limit, offset)
    if fmt == "json":
        print_list(shown, [], "Touchpoints", fmt=fmt, total=len(rows))
        return
    for row in shown:
        # Names, as the department and team lists show them (the JSON keeps the keys).
        dept, team = row["department_key"], row["team_key"]
        owner = f"{departments.get(dept, dept)} / {teams.get(team, team)}"
        row["owner"] = owner if row["owned"] else "UNOWNED"
        row["contributors"] = ", ".join(row["contributors"])
        row["partner"] = row["partner_key"] or ""
    print_list(shown, ["key", "name", "channel", "stage", "owner", "partner", "contributors"],
               "Touchpoints",
               fmt=fmt, total=len(rows), offset=offset, whole=("key", "partner"))  # fmt: skip


@app.command("partners")
def partners(
    fmt: str = FORMAT, as_json: bool = AS_JSON, limit: int = LIMIT, offset: int = OFFSET
) -> None:
    """List partners (couriers, resellers, installers) and the touchpoints each runs."""
    from cxm.org import service

    fmt = _fmt(fmt, as_json)
    check_page(limit, offset)
    with engine().connect() as conn:
        rows = [p.model_dump() for p in service.list_partners(conn)]
    shown = page(rows, limit, offset)
    if fmt != "json":
        for row in shown:
            row["touchpoints"] = ", ".join(row["touchpoints"])
    print_list(shown, ["key", "name", "kind", "touchpoints"], "Partners", fmt=fmt,
               total=len(rows), offset=offset, whole=("key",))  # fmt: skip


@keys_app.command("create")
def create_key(
    scope: str = typer.Option(..., help="ingest | read | admin"),
    user: str | None = typer.Option(None, help="email of the user the key belongs to"),
    name: str | None = typer.Option(None, help="a label to recognise the key by"),
) -> None:
    """Create an API key and print it once (through the server's API while 'cxm serve' runs)."""
    from cxm.org import auth

    server = server_owning_store()
    if server is not None:
        body = {"scope": scope, "user": user, "name": name}
        token = call_server(server, "POST", "/keys", body)["token"]
    else:
        with errors(), engine().begin() as conn:
            user_id = auth.user_id_for(conn, user) if user else None
            token = auth.create_api_key(conn, scope, user_id=user_id, name=name)
    console.print("[bold]Store this key now; it is not shown again:[/]")
    typer.echo(token)


@keys_app.command("list")
def list_keys(
    fmt: str = FORMAT, as_json: bool = AS_JSON, limit: int = LIMIT, offset: int = OFFSET
) -> None:
    """List API keys (prefix and scope only)."""
    from cxm.org import auth

    fmt = _fmt(fmt, as_json)
    check_page(limit, offset)
    with engine().connect() as conn:
        rows = auth.list_api_keys(conn)
    print_list(page(rows, limit, offset),
               ["id", "prefix", "scope", "name", "user_id", "created_at", "revoked_at"],
               "API keys", fmt=fmt, total=len(rows), offset=offset, noun="keys")  # fmt: skip


@keys_app.command("revoke")
def revoke_key(key_id: str) -> None:
    """Revoke an API key by its id."""
    from cxm.org import auth

    with errors(), engine().begin() as conn:
        auth.revoke_api_key(conn, key_id)
    console.print(f"revoked {key_id}")


@users_app.command("create")
def create_user(
    email: str,
    role: str = typer.Option(..., help="admin | cx_lead | manager | agent | viewer | partner"),
    department: str | None = typer.Option(None, help="department key (managers)"),
    team: str | None = typer.Option(None, help="team key (agents)"),
    partner: str | None = typer.Option(None, help="partner key (partner users)"),
    password: str | None = typer.Option(None, help="prompted when omitted"),
    name: str | None = typer.Option(None),
) -> None:
    """Create a user who can sign in to the web app."""
    from cxm.org import auth

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
            partner_key=partner,
        )
    console.print(f"created {role} {email}")

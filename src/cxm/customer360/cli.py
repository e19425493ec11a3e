"""``cxm customers show|list|rebuild`` and ``cxm privacy export|erase|requests``."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import typer
from fastapi.encoders import jsonable_encoder

from cxm.console import console, engine, errors, print_json, print_table
from cxm.customer360 import service
from cxm.customers import service as customers

customers_app = typer.Typer(
    help="Customer profiles (360) and identity resolution.", no_args_is_help=True
)
privacy_app = typer.Typer(
    help="Privacy requests: export or erase one person.", no_args_is_help=True
)


@customers_app.command("show")
def show(
    identifier: str = typer.Argument(..., help="customer id, email, phone or kind:value"),
    limit: int = typer.Option(20, help="timeline entries to show"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Print one customer's profile and latest timeline entries."""
    eng = engine()
    with errors(), eng.connect() as conn:
        customer_id = service.lookup(conn, identifier)
        data = service.profile(conn, customer_id)
        line = service.timeline(conn, customer_id, limit)
    if as_json:
        print_json(jsonable_encoder({"profile": data, "timeline": line["items"]}))
        return
    console.print(f"[bold]customer {data['id']}[/]")
    for key in ("first_seen", "last_seen", "interaction_count", "response_count"):
        console.print(f"  {key}: {data[key]}")
    for kind, values in data["identifiers"].items():
        console.print(f"  {kind}: {', '.join(values)}")
    for name, trait in data["traits"].items():
        console.print(f"  trait {name} = {trait['value']} (set {trait['set_at']})")
    counts = ", ".join(f"{d} {n}" for d, n in data["counts_by_department"].items())
    console.print(f"  by department: {counts or 'none'}")
    rows = [
        {
            "at": i["at"],
            "kind": i["kind"],
            "what": i.get("name") or i.get("survey_key"),
            "touchpoint": i.get("touchpoint_key"),
        }
        for i in line["items"]
    ]
    print_table(rows, ["at", "kind", "what", "touchpoint"], "Timeline (newest first)")


@customers_app.command("list")
def list_(
    limit: int = typer.Option(50, help="how many"),
    fmt: str = typer.Option("table", "--format", help="table or json"),
) -> None:
    """List current profiles, most recently seen first."""
    if fmt not in ("table", "json"):
        raise typer.BadParameter("use table or json", param_hint="--format")
    with engine().connect() as conn:
        rows = customers.list_customers(conn, limit)
    if fmt == "json":
        print_json(jsonable_encoder(rows))
    else:
        print_table(rows, ["id", "first_seen", "last_seen", "interaction_count"], "Customers")


@customers_app.command("rebuild")
def rebuild() -> None:
    """Recompute every profile from the interaction log (same result as incremental)."""
    with errors(), engine().begin() as conn:
        summary = customers.rebuild(conn)
    console.print(
        f"replayed {summary.events} events: {summary.customers} customers, "
        f"{summary.merges} merges, {summary.capped} links held back by caps"
    )


def requester(by: str | None) -> str:
    return by or getpass.getuser()


@privacy_app.command("export")
def export(
    identifier: str = typer.Argument(..., help="customer id, email, phone or kind:value"),
    output: Path | None = typer.Option(None, "--output", "-o", help="write here, not stdout"),
    by: str | None = typer.Option(None, help="who asked (recorded); default: your user name"),
) -> None:
    """Write everything cxm holds on one person as JSON."""
    with errors(), engine().begin() as conn:
        data = service.export(conn, identifier, requester(by))
    text = json.dumps(jsonable_encoder(data), indent=2)
    if output:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")
    else:
        typer.echo(text)


@privacy_app.command("requests")
def requests() -> None:
    """The privacy request log."""
    with engine().connect() as conn:
        rows = service.requests(conn)
    print_table(rows, ["requested_at", "kind", "customer_id", "requested_by"], "Privacy requests")

"""``cxm customers show|list|rebuild`` and ``cxm privacy export|erase|requests``."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import typer

from cxm.console import (
    check_format,
    check_page,
    console,
    engine,
    errors,
    page,
    print_json,
    print_list,
    print_table,
)

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
    """Print one customer's profile and latest timeline entries, with names (the JSON keeps
    the keys)."""
    from cxm.customer360 import service
    from cxm.names import Names

    eng = engine()
    with errors(), eng.connect() as conn:
        customer_id = service.lookup(conn, identifier)
        data = service.profile(conn, customer_id)
        line = service.timeline(conn, customer_id, limit)
    if as_json:
        print_json(_plain({"profile": data, "timeline": line["items"]}))
        return
    names = Names(eng)
    console.print(f"[bold]{names.customer(data['id'], unnamed='customer')}[/] {data['id']}")
    for key in ("first_seen", "last_seen", "interaction_count", "response_count"):
        console.print(f"  {key}: {data[key]}")
    for kind, values in data["identifiers"].items():
        console.print(f"  {names.identity_kind(kind)}: {', '.join(values)}")
    for name, trait in data["traits"].items():
        console.print(f"  trait {name} = {trait['value']} (set {trait['set_at']})")
    counts = ", ".join(
        f"{names.department(d, 'unowned')} {n}" for d, n in data["counts_by_department"].items()
    )
    console.print(f"  by department: {counts or 'none'}")
    rows = [
        {
            "at": i["at"],
            "kind": names.words(i["kind"]),
            "what": names.words(i.get("name") or i.get("type"))
            if i["kind"] == "interaction"
            else names.survey(i.get("survey_key")),
            "touchpoint": names.touchpoint(i.get("touchpoint_key")),
        }
        for i in line["items"]
    ]
    print_table(rows, ["at", "kind", "what", "touchpoint"], "Timeline (newest first)")


def _plain(data: Any) -> Any:
    """JSON-ready values (times as ISO 8601), as the REST API gives them."""
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(data)


@customers_app.command("list")
def list_(
    limit: int = typer.Option(50, help="how many"),
    offset: int = typer.Option(0, help="skip this many (the next page)"),
    fmt: str = typer.Option("table", "--format", help="table | csv | json"),
) -> None:
    """Current profiles, most recently seen first, each with its name (trait ``name``, else
    email); ids print whole ('cxm customers show ID')."""
    from cxm.customers import facts
    from cxm.customers import service as customers
    from cxm.names import Names
    from cxm.store.analytics import reading

    check_format(fmt)
    check_page(limit, offset)
    eng = engine()
    with eng.connect() as conn:
        rows = customers.list_customers(conn, limit, offset)
        names = Names(conn)
        names.prefetch(r["id"] for r in rows)
        rows = [{**r, "name": names.customer(r["id"], unnamed="")} for r in rows]
    with reading(eng) as con:
        total = int(facts.profiles(con).count().execute())
    columns = ["id", "name", "first_seen", "last_seen", "interaction_count"]
    print_list(rows, columns, "Customers", fmt=fmt, total=total, offset=offset,
               json_rows=_plain(rows))  # fmt: skip


@customers_app.command("rebuild")
def rebuild() -> None:
    """Recompute every profile from the interaction log (same result as incremental)."""
    from cxm.customers import service as customers

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
    from cxm.customer360 import service

    with errors(), engine().begin() as conn:
        data = service.export(conn, identifier, requester(by))
    text = json.dumps(_plain(data), indent=2)
    if output:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")
    else:
        typer.echo(text)


@privacy_app.command("requests")
def requests(
    fmt: str = typer.Option("table", "--format", help="table | csv | json"),
    limit: int = typer.Option(100, help="at most this many"),
    offset: int = typer.Option(0, help="skip this many (the next page)"),
) -> None:
    """The privacy request log."""
    from cxm.customer360 import service

    check_format(fmt)
    check_page(limit, offset)
    with engine().connect() as conn:
        rows = service.requests(conn)
    print_list(page(rows, limit, offset), ["requested_at", "kind", "customer_id", "requested_by"],
               "Privacy requests", fmt=fmt, total=len(rows), offset=offset, noun="requests",
               json_rows=_plain(page(rows, limit, offset)), whole=("customer_id",))  # fmt: skip


@customers_app.command("traits")
def list_traits(
    fmt: str = typer.Option("table", "--format", help="table | csv | json"),
    limit: int = typer.Option(100, help="at most this many"),
    offset: int = typer.Option(0, help="skip this many (the next page)"),
) -> None:
    """Customer traits with their type (number, date, boolean, string) and how many have one."""
    from cxm.customers import traits

    check_format(fmt)
    check_page(limit, offset)
    with errors(), engine().connect() as conn:
        rows = traits.listing(conn)
    print_list(page(rows, limit, offset), ["name", "type", "declared", "customers"], "Traits",
               fmt=fmt, total=len(rows), offset=offset, noun="traits")  # fmt: skip


@customers_app.command("trait-type")
def trait_type(
    name: str = typer.Argument(..., help="trait name, e.g. tenure_months"),
    kind: str = typer.Argument(..., help="number | date | boolean | string"),
) -> None:
    """Declare the type of a trait; slices read its values as that type from now on."""
    from cxm.customers import traits

    with errors(), engine().begin() as conn:
        traits.declare(conn, name, kind)
    console.print(f"trait {name}: {kind}")

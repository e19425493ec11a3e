"""``cxm privacy erase``."""

from __future__ import annotations

import typer

from cxm.console import console, engine, errors
from cxm.customer360.cli import requester


def erase(
    identifier: str = typer.Argument(..., help="customer id, email, phone or kind:value"),
    by: str | None = typer.Option(None, help="who asked (recorded); default: your user name"),
    yes: bool = typer.Option(False, "--yes", help="do not ask for confirmation"),
) -> None:
    """Erase one person's personal data everywhere (aggregates stay right; recorded)."""
    from cxm.privacy import service

    if not yes:
        typer.confirm(f"erase everything personal held on '{identifier}'?", abort=True)
    with errors(), engine().begin() as conn:
        counts = service.erase(conn, identifier, requester(by))
    console.print("erased: " + ", ".join(f"{k} {v}" for k, v in counts.items()))

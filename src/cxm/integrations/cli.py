"""``cxm import tickets``: a helpdesk's history (Zendesk, Freshdesk, Intercom) in one command."""

from __future__ import annotations

from pathlib import Path

import typer

from cxm.console import bad_input, engine, errors


def import_tickets(
    file: Path = typer.Argument(..., help="the helpdesk's JSON or JSON Lines export (.gz too)"),
    system: str = typer.Option(..., "--from", help="zendesk | freshdesk | intercom"),
    ratings: Path | None = typer.Option(
        None, help="Freshdesk only: its Satisfaction Ratings export"
    ),
    touchpoint: str | None = typer.Option(
        None, help="put every ticket on this touchpoint (default: by channel, e.g. support_chat)"
    ),
) -> None:
    """Import helpdesk tickets as interactions (ticket_opened / ticket_closed) and their
    satisfaction ratings as support_csat answers; re-running a file adds nothing twice."""
    from cxm.integrations.helpdesk import SYSTEMS, import_helpdesk

    if system not in SYSTEMS:
        bad_input(f"--from '{system}' is unknown; use {', '.join(SYSTEMS)}")
    if not file.is_file():
        bad_input(f"{file} does not exist")
    with errors():
        summary = import_helpdesk(engine(), file, system, ratings=ratings, touchpoint=touchpoint)
    typer.echo(summary.line())
    if summary.channels:
        where = ", ".join(f"{k} {n}" for k, n in sorted(summary.channels.items()))
        typer.echo(f"touchpoints: {where}")
    if summary.tickets and summary.rejected == summary.tickets:
        raise typer.Exit(1)


def import_traits(
    file: Path = typer.Argument(..., help="CSV: identifier columns (email, crm_id, ...) + traits"),
    delimiter: str = typer.Option(",", help="the CSV separator"),
) -> None:
    """Set customer traits from a CRM export, as the drop folder does (CXM_CRM_DROP_DIR);
    the newest value of each trait wins; re-running a file changes nothing."""
    from cxm.integrations.crm import sync_file

    if not file.is_file():
        bad_input(f"{file} does not exist")
    with errors():
        result = sync_file(engine(), file, delimiter=delimiter)
    typer.echo(result.line())
    if result.rows and result.rejected == result.rows:
        raise typer.Exit(1)

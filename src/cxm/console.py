"""Shared by every command: settings, the engine, printing tables and clear errors."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from cxm.config import Settings, load_settings
from cxm.errors import CxmError
from cxm.store import create_engine, current_revision, head_revision

console = Console()


def settings() -> Settings:
    return load_settings()


def fail(message: str, code: int = 1) -> NoReturn:
    # Plain echo, not rich: an error message must never be cropped or re-wrapped.
    typer.secho(f"error: {message}", err=True, fg="red")
    raise typer.Exit(code)


@contextmanager
def errors() -> Iterator[None]:
    """Turn domain errors into a clear message and exit status 2, without a traceback."""
    try:
        yield
    except CxmError as exc:
        fail(str(exc), 2)


def engine(*, migrated: bool = True) -> Engine:
    """The store's engine; refuses to run against a store that ``cxm init`` has not prepared."""
    eng = create_engine(settings().database_url)
    try:
        revision = current_revision(eng)
    except OperationalError as exc:
        if "lock" in str(exc.orig).lower():
            # One process owns an embedded DuckDB file (see the architecture notes).
            fail(
                f"the store {eng.url.database} is in use by another process, usually a running "
                "'cxm serve': stop it first, or use the REST API while it runs"
            )
        raise
    if migrated and revision != head_revision():
        fail("the store is not initialised or is out of date: run 'cxm init' first")
    return eng


def print_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str | None = None
) -> None:
    table = Table(title=title, header_style="bold")
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    console.print(table)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))

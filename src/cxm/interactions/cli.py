"""``cxm import interactions`` and ``cxm interactions unowned``."""

from __future__ import annotations

from pathlib import Path

import typer

from cxm.console import console, engine, errors, settings

app = typer.Typer(help="The interaction log.", no_args_is_help=True)


def import_interactions(
    file: Path = typer.Argument(
        ...,
        help="a .csv, .jsonl, .parquet, or an event log: .xes, .xes.gz, or .csv with "
        "case:concept:name, concept:name and time:timestamp columns",
    ),
    mapping: Path | None = typer.Option(None, "--map", help="mapping.yaml: column → field"),
    delimiter: str = typer.Option(
        ",", "--delimiter", help="CSV separator: ',' (default), ';', '|' or 'tab'"
    ),
    encoding: str = typer.Option(
        "utf-8", "--encoding", help="text encoding of a CSV file (e.g. cp1252); default UTF-8"
    ),
) -> None:
    """Import interactions from a file; bad rows go to <file stem>.rejects.csv (every row, or
    more than the mapping's max_rejected_share, rejected: exit 2); re-running adds nothing."""
    from rich.progress import Progress

    from cxm.interactions import importer, textfile

    with errors():
        spec = importer.load_mapping(mapping)
        separator = textfile.delimiter_of(delimiter)
        eng = engine()
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"importing {file.name}", total=None)
            summary = importer.import_file(
                eng,
                file,
                spec,
                lambda stage, done, total: bar.update(
                    task, description=f"{stage} {file.name}", completed=done, total=total
                ),
                settings().default_phone_region,
                separator,
                encoding,
            )
    console.print(summary.line())


@app.command("unowned")
def unowned() -> None:
    """Touchpoints seen in interactions that no department owns yet."""
    from cxm.interactions.service import unowned_touchpoints

    with engine().connect() as conn:
        keys = unowned_touchpoints(conn)
    console.print("\n".join(keys) if keys else "every touchpoint has an owner")

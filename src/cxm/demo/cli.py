"""``cxm demo``: generate a realistic company and load it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

from cxm.console import console, engine, errors, print_table
from cxm.demo.load import demo_logins, is_empty, load

app = typer.Typer(
    help="A realistic demo company with known ground truth.", invoke_without_command=True
)


@app.callback()
def demo(
    ctx: typer.Context,
    customers: int = typer.Option(2000, help="number of customers"),
    months: int = typer.Option(6, help="months of history"),
    seed: int = typer.Option(7, help="random seed (same seed, same company)"),
    if_empty: bool = typer.Option(False, "--if-empty", help="do nothing if the store has data"),
) -> None:
    """Generate the demo company into a temporary folder and load it into the store."""
    if ctx.invoked_subcommand is not None:
        return
    from cxm.demo.generator import generate as generate_files  # numpy-heavy: load on use

    eng = engine()
    if if_empty and not is_empty(eng):
        console.print("the store already holds data; not loading the demo company")
        logins()
        return
    with tempfile.TemporaryDirectory(prefix="cxm-demo-") as tmp, errors():
        with console.status("generating the demo company") as status:
            generate_files(Path(tmp), customers=customers, months=months, seed=seed,
                           progress=lambda s: status.update(f"generating: {s}"))  # fmt: skip
        with console.status("loading") as status:
            summary = load(eng, Path(tmp), progress=lambda s: status.update(f"loading: {s}"))
    for step, outcome in summary.steps.items():
        console.print(f"[bold]{step}[/]: {outcome}")
    logins()


@app.command("logins")
def logins() -> None:
    """Print the demo users' sign-ins (one per role)."""
    with engine().connect() as conn:
        rows = [{"email": e, "role": r, "password": p} for e, r, p in demo_logins(conn)]
    if rows:
        print_table(rows, ["role", "email", "password"], "Demo sign-ins")


@app.command("generate")
def generate(
    folder: Path = typer.Argument(..., help="where to write the files"),
    customers: int = typer.Option(2000, help="number of customers"),
    months: int = typer.Option(6, help="months of history"),
    seed: int = typer.Option(7, help="random seed (same seed, same files)"),
    fmt: str = typer.Option("parquet", "--format", help="interactions as parquet or jsonl"),
) -> None:
    """Write the demo company's files (org, interactions, surveys, responses, employees)."""
    if fmt not in ("parquet", "jsonl"):
        raise typer.BadParameter("use parquet or jsonl", param_hint="--format")
    from cxm.demo.generator import generate as generate_files

    folder.mkdir(parents=True, exist_ok=True)
    with console.status("generating") as status:
        summary = generate_files(folder, customers=customers, months=months, seed=seed, fmt=fmt,
                                 progress=lambda s: status.update(f"generating: {s}"))  # fmt: skip
    console.print(f"wrote the demo company to {folder}")
    console.print(summary)


@app.command("load")
def load_folder(
    folder: Path = typer.Argument(..., help="a folder written by 'cxm demo generate'"),
) -> None:
    """Load a generated demo company folder into the store."""
    with errors():
        summary = load(engine(), folder)
    for step, outcome in summary.steps.items():
        console.print(f"[bold]{step}[/]: {outcome}")

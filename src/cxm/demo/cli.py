"""``cxm demo``: generate a realistic company and load it."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cxm.console import bad_input, console, engine, errors, print_table

if TYPE_CHECKING:
    from cxm.demo.generator import GenerationSummary

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
    from cxm.demo.load import is_empty, load

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
    from cxm.demo.load import demo_logins

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
        bad_input(f"--format '{fmt}' is unknown: use parquet or jsonl")
    from cxm.demo.generator import generate as generate_files

    with errors():
        folder.mkdir(parents=True, exist_ok=True)
        with console.status("generating") as status:
            summary = generate_files(
                folder, customers=customers, months=months, seed=seed, fmt=fmt,
                progress=lambda s: status.update(f"generating: {s}"),
            )  # fmt: skip
    for line in generation_report(summary):
        typer.echo(line)


# What each file holds, for the summary a person reads after 'cxm demo generate'.
_FILES = {
    "org": "departments, teams and touchpoints",
    "surveys": "survey definitions",
    "interactions": "interactions",
    "responses": "survey responses with comments",
    "employees": "employees",
    "pulse": "employee pulse answers",
    "partner_contacts": "people at the courier who answer the partner pulse",
    "partner_pulse": "partner pulse answers",
    "customers": "customers",
    "ground_truth": "the planted ground truth (what the analytics should find)",
}


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB" if size >= 100_000 else f"{size / 1e3:,.1f} kB"


def generation_report(summary: GenerationSummary) -> list[str]:
    """Lines for a person: what was generated, each file written with its rows and size, where,
    and what to run next."""
    where = summary.out_dir.resolve()
    n = summary.counts
    lines = [
        f"Generated the demo company Northwind Living (seed {summary.seed}) in {where}",
        f"  {summary.customers:,} customers over {summary.months} "
        f"month{'s' if summary.months != 1 else ''}: "
        f"{n.get('interactions', 0):,} interactions, {n.get('responses', 0):,} survey "
        f"responses, {n.get('employees', 0):,} employees",
        "Files written:",
    ]
    width = max(len(p.name) + (1 if p.is_dir() else 0) for p in summary.paths.values())
    total = 0
    for key, path in summary.paths.items():
        size = _size(path)
        total += size
        name = path.name + ("/" if path.is_dir() else "")
        rows = f"{n[key]:,} " if key in n else ""
        lines.append(f"  {name:<{width}}  {rows}{_FILES.get(key, key)} ({_mb(size)})")
    lines.append(f"  {len(summary.paths)} files, {_mb(total)} in all")
    lines.append(f"Load them into the store with: cxm init && cxm demo load {where}")
    return lines


@app.command("load")
def load_folder(
    folder: Path = typer.Argument(..., help="a folder written by 'cxm demo generate'"),
) -> None:
    """Load a generated demo company folder into the store."""
    from cxm.demo.load import load

    with errors():
        summary = load(engine(), folder)
    for step, outcome in summary.steps.items():
        console.print(f"[bold]{step}[/]: {outcome}")

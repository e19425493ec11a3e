"""``cxm text``: annotate comments, discover themes, apply taxonomies, train, show impact."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

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
    settings,
)
from cxm.errors import Invalid

if TYPE_CHECKING:
    from cxm.text import analytics, schemas

# Kept here so that 'cxm text --help' does not import the models; a test keeps them equal to
# cxm.text.sentiment.TIERS and cxm.text.jobs.BATCH.
TIERS = ("lexicon", "embedding", "auto")
BATCH = 5000

err_console = Console(stderr=True)
app = typer.Typer(help="Text analytics: sentiment, themes, taxonomies.", no_args_is_help=True)
taxonomy_app = typer.Typer(help="Themes you define (YAML): apply, list.", no_args_is_help=True)
app.add_typer(taxonomy_app, name="taxonomy")


def _slice(
    survey: str | None, period: str | None, since: str | None = None, people: str = "customer"
) -> analytics.Slice:
    from cxm.text import analytics, service

    start, end = service.period_bounds(period) if period else (None, None)
    if since:
        try:
            start = dt.datetime.fromisoformat(since)
        except ValueError as exc:
            raise Invalid(f"--since '{since}' is not a date: use YYYY-MM-DD") from exc
        if start.tzinfo is None:
            start = start.replace(tzinfo=dt.UTC)
    return analytics.Slice(
        survey=survey, since=start, until=end, population=analytics.population(people)
    )


@app.command("annotate")
def annotate(
    since: str | None = typer.Option(None, help="only comments submitted from this date"),
    tier: str = typer.Option("lexicon", help=f"sentiment tier: {' | '.join(TIERS)}"),
    survey: str | None = typer.Option(None, help="only this survey"),
    redo: bool = typer.Option(False, "--redo", help="re-annotate texts this model already did"),
    batch: int = typer.Option(BATCH, help="comments per transaction"),
) -> None:
    """Annotate survey comments in bulk: language, sentiment, and stored taxonomies' themes."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from cxm.text import jobs

    with errors():
        where = _slice(survey, None, since, "all")
        with Progress(
            TextColumn("annotating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=err_console, transient=True,
        ) as progress:  # fmt: skip
            task = progress.add_task("annotate", total=None)

            def update(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            started = dt.datetime.now(dt.UTC)
            report = jobs.annotate_bulk(
                engine(), tier_name=tier, where=where, only_pending=not redo, batch=batch,
                on_progress=update,
            )  # fmt: skip
            seconds = (dt.datetime.now(dt.UTC) - started).total_seconds()
    if report.note:
        err_console.print(f"[yellow]note:[/] {report.note}")
    rate = report.annotated / seconds if seconds > 0 else 0.0
    console.print(
        f"tier {report.tier} ({report.model}): annotated {report.annotated} comments "
        f"in {seconds:.1f} s ({rate:,.0f}/s); {report.tagged} tagged with themes"
    )
    if report.labels:
        console.print("labels: " + ", ".join(f"{k} {v}" for k, v in sorted(report.labels.items())))
        console.print(
            "languages: " + ", ".join(f"{k} {v}" for k, v in sorted(report.languages.items()))
        )
        for reason, n in sorted(report.unscored.items()):
            console.print(f"{n} comments {reason}")


@app.command("themes")
def discover(
    survey: str | None = typer.Option(None, help="survey key"),
    period: str | None = typer.Option(None, help="YYYY, YYYY-MM, YYYY-Qn or Nd"),
    k: int | None = typer.Option(None, help="number of themes (default: chosen by silhouette)"),
    seed: int = typer.Option(0, help="same seed, same themes"),
    vectors: str = typer.Option("auto", help="auto | embedding | multilingual | tfidf"),
    stop: list[str] = typer.Option(
        [], "--stop", help="a name to strip before clustering (brand, product); repeat"
    ),
    people: str = typer.Option(
        "customer", "--population", help="whose comments: customer | employee | all"
    ),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Discover themes in the comments of a survey and period."""
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from cxm.text import schemas, service

    with errors():
        if vectors not in ("auto", "embedding", "multilingual", "tfidf"):
            raise Invalid(
                f"--vectors '{vectors}' is unknown: use auto, embedding, multilingual or tfidf"
            )
        # Stages on stderr as they go ("embedding 3000 of 14500 comments not embedded before").
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err_console,
                      transient=True) as progress:  # fmt: skip
            task = progress.add_task("reading comments", total=None)

            def update(stage: str, done: int, total: int) -> None:
                progress.update(task, description=stage)

            found = service.discover_themes(
                engine(),
                _slice(survey, period, people=people),
                k=k,
                seed=seed,
                vectors=vectors,  # type: ignore[arg-type]
                stop_names=stop,
                on_progress=update,
            )
    if as_json:
        print_json(schemas.as_dict(found))
        return
    if found.note:
        err_console.print(f"[yellow]note:[/] {found.note}")
    rows = [
        {**t.model_dump(), "share": f"{t.share:.0%}", "example": (t.examples or [""])[0]}
        for t in found.themes
    ]
    print_table(
        rows, ["id", "label", "size", "share", "sentiment", "example"],
        f"Themes in {found.texts} comments ({found.vectors} vectors; "
        f"{found.excluded_other_language} in other languages left out)",
    )  # fmt: skip


@app.command("impact")
def impact(
    taxonomy_key: str = typer.Option("starter", "--taxonomy", help="taxonomy key"),
    survey: str | None = typer.Option(None, help="survey key"),
    period: str | None = typer.Option(None, help="YYYY, YYYY-MM, YYYY-Qn or Nd"),
    department: str | None = typer.Option(None, help="only themes this department owns"),
    people: str = typer.Option(
        "customer", "--population", help="whose comments: customer | employee | all"
    ),
    metric: str | None = typer.Option(
        None,
        "--metric",
        help="a metric of survey answers (nps, csat, csat_mean, ces, a custom rating) or "
        "churn; default: the NPS of the answers in the slice",
    ),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """What each theme costs in a metric (NPS by default), with 95% intervals."""
    from cxm.text import analytics, schemas, taxonomy

    with errors():
        outcome = analytics.SLICE_NPS
        if metric:
            from cxm.metrics.definitions import installation_dir, load

            outcome = analytics.outcome(load(installation_dir(settings().data_dir)), metric)
        eng = engine()
        with eng.connect() as conn:
            if department:
                from cxm.org import service as org

                known = [d.key for d in org.list_departments(conn)]
                if department not in known:
                    raise Invalid(
                        f"--department '{department}' does not exist; known: {', '.join(known)}"
                    )
            found = taxonomy.list_themes(conn, taxonomy_key)
        if department:
            found = [t for t in found if t.department_key == department]
        where = _slice(survey, period, people=people)
        report = analytics.theme_impact(eng, found, where, outcome=outcome)
    if as_json:
        print_json(schemas.as_dict(report))
        return
    from cxm.names import Names

    names = Names(eng)
    unit = "" if report.unit in ("points", "score") else report.unit
    rows = []
    for t in report.themes:
        row = t.model_dump()
        if t.impact is not None:
            low, high = t.impact_low or 0.0, t.impact_high or 0.0
            row["impact"] = f"{t.impact:+.2f} [{low:+.2f}, {high:+.2f}]"
        else:
            row["impact"] = t.note or ""
        row["unfavourable"] = f"{t.detractor_share:.0%}"
        row["theme"] = t.name or t.theme
        row["department"] = names.department(t.department_key)
        rows.append(row)
    value = "n/a" if report.value is None else f"{report.value:.2f}{unit}"
    print_table(
        rows, ["theme", "department", "volume", "unfavourable", "value_with",
               "value_without", "impact"],
        f"Theme impact on {report.metric} ({report.responses} answers, {report.metric} {value}; "
        f"positive impact = the theme makes it worse)",
    )  # fmt: skip
    if report.note:
        err_console.print(f"[yellow]note:[/] {report.note}")


@app.command("train")
def train(
    survey: str | None = typer.Option(None, help="only this survey's responses"),
    seed: int = typer.Option(0, help="seed of the held-out split"),
) -> None:
    """Train the embedding tier on your own responses (score as weak label); prints accuracy."""
    from cxm.text import nlp, service
    from cxm.text.sentiment import fit

    with errors():
        if not nlp.available():
            raise Invalid(nlp.missing_message().split(";")[0] + " to train a sentiment model")
        eng = engine()
        texts, labels = service.training_data(eng, _slice(survey, None))
        classifier, report = fit(texts, labels, seed=seed)
        with eng.begin() as conn:
            service.save_model(conn, classifier, report)
    console.print(
        f"trained {report.version} on {report.trained_on} comments; held-out "
        f"{report.held_out}: accuracy {report.accuracy:.1%}, macro-F1 {report.macro_f1:.3f} "
        f"(lexicon tier on the same texts: {report.lexicon_accuracy:.1%})"
    )
    console.print("use it with: cxm text annotate --tier embedding --redo")


@taxonomy_app.command("apply")
def apply(file: Path = typer.Argument(..., help="taxonomy YAML")) -> None:
    """Create or replace a taxonomy from a YAML file (re-annotate to tag existing texts)."""
    from cxm.text import taxonomy
    from cxm.yamldoc import read

    with errors():
        doc = read(file)
        with engine().begin() as conn:
            summary = taxonomy.apply(conn, doc)
    _print_summary(summary)


@taxonomy_app.command("starter")
def starter() -> None:
    """Apply the shipped starter taxonomy (delivery, billing, wait time, ...)."""
    from cxm.text import taxonomy

    with errors(), engine().begin() as conn:
        summary = taxonomy.apply(conn, taxonomy.starter_doc())
    _print_summary(summary)


@taxonomy_app.command("show")
def show(
    key: str = typer.Argument("starter"),
    fmt: str = typer.Option("table", "--format", help="table | csv | json"),
    limit: int = typer.Option(100, help="at most this many"),
    offset: int = typer.Option(0, help="skip this many (the next page)"),
) -> None:
    """List a taxonomy's themes with their owning departments."""
    from cxm.text import taxonomy

    check_format(fmt)
    check_page(limit, offset)
    with errors(), engine().connect() as conn:
        found = taxonomy.list_themes(conn, key)
    rows = [
        {**t.model_dump(), "keywords": len(t.keywords), "examples": len(t.examples)} for t in found
    ]
    columns = ["key", "name", "department_key", "keywords", "examples", "threshold"]
    print_list(page(rows, limit, offset), columns, key, fmt=fmt, total=len(rows), offset=offset,
               noun="themes", whole=("key",))  # fmt: skip


def _print_summary(summary: schemas.ApplySummary) -> None:
    console.print(
        f"taxonomy {summary.taxonomy}: {len(summary.created)} created, "
        f"{len(summary.updated)} updated, {len(summary.removed)} removed"
    )

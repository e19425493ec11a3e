"""``cxm metrics`` (list, compute a metric, targets, alerts) and ``cxm export --parquet``."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from cxm.console import (
    bad_input,
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


class _MetricGroup(TyperGroup):
    """``cxm metrics NAME ...`` is short for ``cxm metrics show NAME ...``."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["show", *args]
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=_MetricGroup,
    help="Company-wide CX metrics: 'cxm metrics list', 'cxm metrics NAME --by department'.",
    no_args_is_help=True,
)


def _definitions() -> dict[str, Any]:
    from cxm.metrics.definitions import installation_dir, load

    return load(installation_dir(settings().data_dir))


def _when(value: str | None, name: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        bad_input(f"--{name}: {value!r} is not a date (use YYYY-MM-DD or an ISO 8601 time)")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@app.command("list")
def list_metrics(
    as_json: bool = typer.Option(False, "--json", help="print JSON (same as --format json)"),
    fmt: str = typer.Option("table", "--format", help="table | csv | json"),
    limit: int = typer.Option(100, help="at most this many"),
    offset: int = typer.Option(0, help="skip this many (the next page)"),
) -> None:
    """List the metric definitions (shipped and this installation's)."""
    fmt = "json" if as_json else check_format(fmt)
    check_page(limit, offset)
    with errors():
        rows = [m.summary() for m in _definitions().values()]
    print_list(page(rows, limit, offset), ["name", "kind", "unit", "direction", "owner", "target",
                                          "min_sample", "description"],
               "Metrics", fmt=fmt, total=len(rows), offset=offset, whole=("name",))  # fmt: skip


def _fmt(value: Any) -> Any:
    """A table cell: a float to two decimals ("" when missing), a yes/no flag as a word."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.2f}"
    return value


@app.command("show")
def show(
    name: str = typer.Argument(..., help="metric name (see 'cxm metrics list')"),
    by: str = typer.Option("", "--by", help="comma-separated: department,team,touchpoint,..."),
    grain: str | None = typer.Option(None, "--grain", help="day | week | month | quarter | year"),
    start: str | None = typer.Option(None, "--start", help="inclusive date or time (UTC)"),
    end: str | None = typer.Option(None, "--end", help="exclusive date or time (UTC)"),
    filter_: list[str] = typer.Option([], "--filter", help="DIMENSION=VALUE, repeatable"),
    compare: str | None = typer.Option(None, "--compare", help="previous | rest"),
    bins: list[str] = typer.Option(
        [], "--bins", help="cut a number or date slice: EDGES (0,6,12,24) or DIMENSION=EDGES"
    ),
    fmt: str = typer.Option("table", "--format", help="table | csv | json"),
    engine_name: str = typer.Option("duckdb", "--engine", help="duckdb (the store) | spark"),
    lake: Path | None = typer.Option(None, "--lake", help="Parquet lake for --engine spark"),
    spark_master: str = typer.Option("local[*]", "--spark-master", help="Spark master URL"),
) -> None:
    """Compute a metric, sliced and with intervals (the store's engine, or Spark on a lake)."""
    from cxm.metrics import service
    from cxm.metrics.export import spark_backend
    from cxm.metrics.slices import parse_bins

    check_format(fmt)
    dims = [d.strip() for d in by.split(",") if d.strip()] + ([grain] if grain else [])
    filters: dict[str, list[str]] = {}
    for item in filter_:
        dim, sep, value = item.partition("=")
        if not sep:
            bad_input(f"--filter: {item!r} is not DIMENSION=VALUE (e.g. department=service)")
        filters.setdefault(dim, []).append(value)
    with errors():
        metrics = _definitions()
        if engine_name == "spark":
            if lake is None:
                bad_input(
                    "--engine spark needs --lake DIR (write one with 'cxm export --parquet DIR')"
                )
            source: Any = spark_backend(lake, master=spark_master)
        elif engine_name in ("duckdb", "store", "postgres"):
            source = engine()
        else:
            bad_input("--engine: use duckdb (the store) or spark")
        df = service.compute(source, name, dims, start=_when(start, "start"),
                             end=_when(end, "end"), filters=filters, compare=compare,
                             metrics=metrics, bins=parse_bins(bins, dims))  # fmt: skip
    if fmt == "csv":
        typer.echo(df.to_csv(index=False), nl=False)
    elif fmt == "json":
        print_json([{k: (None if isinstance(v, float) and math.isnan(v) else v)
                     for k, v in r.items()} for r in df.to_dict("records")])  # fmt: skip
    else:
        # The table names each slice and period, and heads each column as a CX lead reads it
        # (CSV and JSON keep the keys that --filter takes and the columns' keys).
        from cxm.names import period_label

        label = _labeller(source if engine_name != "spark" else None)
        grain = next((str(c) for c in df.columns if str(c) in GRAINS), None)

        def cell(column: str, value: Any) -> Any:
            if (
                grain
                and isinstance(value, str)
                and (column == grain or (column == "compared_with" and ISO_DATE.fullmatch(value)))
            ):
                return period_label(value, grain)
            return label(column, value) if isinstance(value, str) else _fmt(value)

        rows = [{str(k): cell(str(k), v) for k, v in r.items()} for r in df.to_dict("records")]
        m = metrics[name]
        columns = [str(c) for c in df.columns]
        print_table(rows, columns, f"{name} ({m.unit}, {m.direction} is better)", whole=(),
                    headings={c: heading(c) for c in columns}, wrap=("flags",),
                    optional=("metric", "weighted_n", "method", "on_target"))  # fmt: skip


GRAINS = {"day", "week", "month", "quarter", "year"}
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# The columns of ``cxm.metrics.service.compute`` as the dashboards word them.
HEADINGS = {
    "metric": "Metric",
    "value": "Value",
    "ci_low": "95% CI low",
    "ci_high": "95% CI high",
    "n": "n",
    "weighted_n": "Weighted n",
    "method": "Method",
    "target": "Target",
    "on_target": "On target",
    "flags": "Flags",
    "p_value": "p-value",
    "p_adjusted": "Adjusted p",
    "significant": "Significant",
    "compared_with": "Compared with",
    "delta": "Change",
}


def heading(column: str) -> str:
    """A ``compute`` column's heading: ``ci_low`` → "95% CI low", a slice dimension as words
    (``touchpoint`` → "Touchpoint", ``trait:tier`` → "Tier")."""
    from cxm.names import humanize

    return HEADINGS.get(column) or humanize(column.removeprefix("trait:"))


def _labeller(store: Any) -> Callable[[str, str], str]:
    """``(dimension, key) -> name`` from the store (``cxm.names``); with Spark on a lake, from
    the store when it can be opened, else the keys as they are."""
    from sqlalchemy.exc import DBAPIError

    from cxm.names import Names, humanize
    from cxm.store import create_engine

    def flags(text: str) -> str:
        # below_min_sample,unweighted_strata:a|b -> "Below min sample, Unweighted strata: a|b"
        out = []
        for flag in filter(None, text.split(",")):
            name, _, detail = flag.partition(":")
            out.append(humanize(name) + (f": {detail}" if detail else ""))
        return ", ".join(out)

    if store is None:
        try:
            store = create_engine(settings().database_url)
            store.connect().close()
        except (DBAPIError, OSError):
            return lambda dimension, key: flags(key) if dimension == "flags" else key
    names = Names(store)
    return lambda dimension, key: (
        flags(key) if dimension == "flags" else names.of(dimension, key, "")
    )


@app.command("target")
def target(
    name: str = typer.Argument(...),
    value: float = typer.Argument(..., help="the target"),
    slice_: str = typer.Option("", "--slice", help="DIMENSION=VALUE for a slice's target"),
) -> None:
    """Set this installation's target for a metric or one slice of it."""
    from cxm.metrics import service

    dim, _, val = slice_.partition("=")
    with errors(), engine().begin() as conn:
        service.set_target(conn, _definitions(), name, value, dim, val)
    console.print(f"target for {name}{' ' + slice_ if slice_ else ''}: {value}")


@app.command("alerts")
def alerts(
    name: str = typer.Argument(...),
    by: str = typer.Option("", "--by", help="comma-separated slice dimensions"),
    grain: str = typer.Option("month", "--grain"),
) -> None:
    """Record significant drops against the previous period as alerts and print them."""
    from cxm.metrics import service

    dims = [d.strip() for d in by.split(",") if d.strip()]
    eng = engine()
    with errors(), eng.begin() as conn:
        created = service.record_alerts(conn, eng, name, dims, grain=grain,
                                        metrics=_definitions())  # fmt: skip
    from cxm.names import Names, period_label

    names = Names(eng)
    shown = [{"metric": a["metric"], "slice": names.slice(a.get("slice")),
              "period": period_label(a["period"], grain),
              "previous_period": period_label(a["previous_period"], grain),
              "previous_value": _fmt(a["previous_value"]), "value": _fmt(a["value"]),
              "p_adjusted": f"{a['p_adjusted']:.4f}"} for a in created]  # fmt: skip
    print_table(shown, ["metric", "slice", "period", "value", "previous_period", "previous_value",
                        "p_adjusted"], f"{len(created)} new alert(s)", whole=(),
                headings=ALERT_HEADINGS, optional=("previous_period",))  # fmt: skip


ALERT_HEADINGS = {"metric": "Metric", "slice": "Slice", "period": "Period", "value": "Value",
                  "previous_period": "Previous period", "previous_value": "Previous value",
                  "p_adjusted": "Adjusted p (Holm)"}  # fmt: skip


def export(
    parquet: Path = typer.Option(..., "--parquet", help="folder to write the Parquet lake to"),
    full: bool = typer.Option(False, "--full", help="rewrite every day, not only changed ones"),
) -> None:
    """Write or refresh the store's facts as a Parquet lake (for 'cxm metrics --engine spark').

    Fact tables are written by day; a re-export rewrites only the days that changed."""
    from cxm.metrics.export import export_lake

    with errors():
        done = export_lake(engine(), parquet, full=full)
    for table, rows in done.rows.items():
        days = done.days.get(table)
        note = "" if days is None else f" ({len(days)} day(s) written"
        if days is not None:
            removed = done.removed.get(table) or []
            note += f", {len(removed)} removed)" if removed else ")"
        console.print(f"{table}: {rows} rows{note}")

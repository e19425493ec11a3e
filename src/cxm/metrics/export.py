"""The Parquet lake: write the store's facts as Parquet, and read a lake on Spark.

``cxm export --parquet DIR`` writes the small tables (departments, customers, traits...) as
one ``<table>.parquet`` each, rewritten on every export, and the large fact tables
(interactions, responses, answers, invitations, theme tags) as a folder per table with one
``YYYY-MM-DD.parquet`` per day. ``DIR/_manifest.json`` keeps, per fact table and day, the row
count and the latest time of each timestamp column; a re-export compares them with the store's
and rewrites only the days that differ (new facts, late facts for an old day, updated or
deleted rows), so a nightly export of a large log writes the day it adds. The metrics layer
computes the same numbers over the lake on PySpark (``local[*]`` or a cluster).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from ibis.backends import BaseBackend
from sqlalchemy.engine import Engine

from cxm.errors import Invalid
from cxm.store import analytics

LAKE_TABLES = [
    "departments", "teams", "touchpoints", "customers", "customer_traits", "interactions",
    "responses", "response_answers", "survey_invitations", "metric_targets", "text_themes",
    "trait_types",
]  # fmt: skip
# Tables a lake written by an earlier version may lack; what reads them says so itself.
OPTIONAL = {"metric_targets", "text_themes", "trait_types", "response_answers"}
# Large fact tables, partitioned by the day of a column that never changes once written.
PARTITIONED = {
    "interactions": "event_time",
    "responses": "started_at",
    "response_answers": "answered_at",
    "survey_invitations": "created_at",
    "text_themes": "tagged_at",
}
MANIFEST = "_manifest.json"  # Spark skips files whose name starts with "_"
EMPTY = "empty"  # the one file of a partitioned table without rows (keeps its schema)


@dataclass
class Export:
    """What an export wrote: ``rows`` per table (all of it, as the lake now holds), and per
    partitioned table the ``days`` rewritten and ``removed`` (days no longer in the store)."""

    rows: dict[str, int] = field(default_factory=dict)
    days: dict[str, list[str]] = field(default_factory=dict)
    removed: dict[str, list[str]] = field(default_factory=dict)


def export_parquet(engine: Engine, directory: Path, *, full: bool = False) -> dict[str, int]:
    """Write or refresh the lake in ``directory``; returns rows per table (see ``export_lake``)."""
    return export_lake(engine, directory, full=full).rows


def export_lake(engine: Engine, directory: Path, *, full: bool = False) -> Export:
    """Write the lake tables to ``directory``: small tables whole, fact tables by day.

    Incremental: a day of a fact table is rewritten only when its row count or the latest
    value of one of its timestamp columns differs from the manifest of the previous export
    (``full=True`` rewrites everything). Every file is written aside and renamed into place,
    and the manifest last, so an interrupted export leaves a readable lake that the next
    export completes. An update that changes no count and no timestamp goes unnoticed until
    a ``full`` export.
    """
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path = directory / MANIFEST
    previous: dict[str, Any] = {}
    if manifest_path.exists() and not full:
        try:
            previous = json.loads(manifest_path.read_text()).get("tables", {})
        except (ValueError, AttributeError):
            previous = {}  # unreadable: rewrite everything
    backend = analytics(engine)
    done = Export()
    manifest: dict[str, Any] = {}
    try:
        for name in LAKE_TABLES:
            t = backend.table(name)
            # JSON columns travel as text: every reader of the lake understands a string.
            casts = {c: t[c].cast("string") for c, typ in t.schema().items() if typ.is_json()}
            if casts:
                t = t.mutate(**casts)
            if name in PARTITIONED:
                manifest[name] = _export_days(t, name, PARTITIONED[name], directory,
                                              previous.get(name), done)  # fmt: skip
            else:
                table: pa.Table = t.to_pyarrow()
                _write(table, directory / f"{name}.parquet")
                done.rows[name] = table.num_rows
    finally:
        backend.disconnect()
    body = {"version": 1, "exported_at": dt.datetime.now(dt.UTC).isoformat(), "tables": manifest}
    tmp = directory / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(body, indent=1, sort_keys=True))
    tmp.replace(manifest_path)
    return done


def _write(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)  # readers never see half a file


def _export_days(t: Any, name: str, key: str, directory: Path, before: dict[str, Any] | None,
                 done: Export) -> dict[str, Any]:  # fmt: skip
    """Rewrite the days of ``t`` whose fingerprint changed; returns the table's manifest."""
    stamps = [c for c, typ in t.schema().items() if typ.is_timestamp()]
    day = t[key].date().cast("string")
    agg = t.group_by(_day=day).aggregate(
        _n=t.count(), **{f"_max_{c}": t[c].max().cast("string") for c in stamps}
    )
    now: dict[str, list[Any]] = {}
    for r in agg.to_pyarrow().to_pylist():
        now[r["_day"]] = [int(r["_n"]), *[r[f"_max_{c}"] for c in stamps]]
    folder = directory / name
    single = directory / f"{name}.parquet"  # a lake written before tables had days
    fresh = before is None or not folder.is_dir() or single.exists()
    old = {} if fresh else (before or {}).get("days", {})
    on_disk = {p.stem for p in folder.glob("*.parquet")} if folder.is_dir() else set()
    changed = sorted(d for d, fp in now.items() if old.get(d) != fp or d not in on_disk)
    folder.mkdir(exist_ok=True)
    if changed:
        part = t.mutate(_day=day).filter(day.isin(changed)).to_pyarrow()
        days = part.column("_day")
        part = part.drop_columns(["_day"])
        for d in changed:
            _write(part.filter(pc.equal(days, d)), folder / f"{d}.parquet")
    gone = sorted(on_disk - set(now) - {EMPTY})
    if not now and (EMPTY not in on_disk or fresh):
        # No rows: one empty file keeps the table's columns for readers.
        _write(t.limit(0).to_pyarrow(), folder / f"{EMPTY}.parquet")
    elif now:
        gone += [EMPTY] if EMPTY in on_disk else []
    for d in gone:
        (folder / f"{d}.parquet").unlink(missing_ok=True)
    single.unlink(missing_ok=True)
    done.rows[name] = sum(fp[0] for fp in now.values())
    done.days[name] = changed
    done.removed[name] = [d for d in gone if d != EMPTY]
    return {"key": key, "columns": stamps, "days": now}


def lake_files(lake: Path) -> dict[str, Path]:
    """Each table of a lake and what to read for it: ``<table>.parquet`` or a ``<table>/``
    folder of day files."""
    files = {p.stem: p for p in sorted(lake.glob("*.parquet"))}
    for p in sorted(lake.iterdir()) if lake.is_dir() else []:
        if p.is_dir() and any(p.glob("*.parquet")):
            files[p.name] = p
    return files


def spark_session(master: str = "local[*]") -> Any:
    """A small Spark session (no UI, few shuffle partitions, UTC) for metrics over a lake."""
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(master)
        .appName("cxm-metrics")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )


def spark_backend(lake: Path, session: Any | None = None, master: str = "local[*]") -> BaseBackend:
    """An Ibis PySpark backend with every table of the lake registered under its name."""
    files = lake_files(lake)
    missing = [t for t in LAKE_TABLES if t not in files and t not in OPTIONAL]
    if missing:
        raise Invalid(
            f"{lake} is not a complete lake (missing {', '.join(missing)}): "
            "write one with 'cxm export --parquet DIR'"
        )
    backend = ibis.pyspark.connect(session or spark_session(master))
    for name, path in files.items():
        backend.read_parquet(str(path.resolve()), table_name=name)
    return backend

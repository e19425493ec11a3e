"""The Parquet lake: write the store's facts as Parquet, and read a lake on Spark.

``cxm export --parquet DIR`` writes one ``<table>.parquet`` per fact and org table; the
metrics layer computes the same numbers over that lake on PySpark (``local[*]`` or a cluster).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
from ibis.backends import BaseBackend
from sqlalchemy.engine import Engine

from cxm.errors import Invalid
from cxm.store import analytics

LAKE_TABLES = [
    "departments", "teams", "touchpoints", "customers", "customer_traits", "interactions",
    "responses", "survey_invitations", "metric_targets", "text_themes", "trait_types",
]  # fmt: skip
# Tables a lake written by an earlier version may lack; what reads them says so itself.
OPTIONAL = {"metric_targets", "text_themes", "trait_types"}


def export_parquet(engine: Engine, directory: Path) -> dict[str, int]:
    """Write each lake table to ``directory/<table>.parquet``; returns rows per table."""
    directory.mkdir(parents=True, exist_ok=True)
    backend = analytics(engine)
    written: dict[str, int] = {}
    try:
        for name in LAKE_TABLES:
            t = backend.table(name)
            # JSON columns travel as text: every reader of the lake understands a string.
            casts = {c: t[c].cast("string") for c, typ in t.schema().items() if typ.is_json()}
            table: pa.Table = t.mutate(**casts).to_pyarrow() if casts else t.to_pyarrow()
            tmp = directory / f".{name}.parquet.tmp"
            pq.write_table(table, tmp)
            tmp.replace(directory / f"{name}.parquet")  # readers never see half a file
            written[name] = table.num_rows
    finally:
        backend.disconnect()
    return written


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
    files = {p.stem: p for p in sorted(lake.glob("*.parquet"))}
    missing = [t for t in LAKE_TABLES if t not in files and t not in OPTIONAL]
    if missing:
        raise Invalid(
            f"{lake} is not a complete lake (missing {', '.join(missing)}.parquet): "
            "write one with 'cxm export --parquet DIR'"
        )
    backend = ibis.pyspark.connect(session or spark_session(master))
    for name, path in files.items():
        backend.read_parquet(str(path.resolve()), table_name=name)
    return backend

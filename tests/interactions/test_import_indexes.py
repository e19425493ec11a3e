"""The interaction log keeps the indexes a query scans, on each engine (migration 0025)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from cxm.customer360 import service as c360
from cxm.interactions.tables import interactions
from cxm.store import upgrade
from cxm.store.bulk import insert_rows
from cxm.store.migrate import MIGRATIONS

ON_DUCKDB = {"ix_interactions_customer"}
ON_POSTGRES = {"ix_interactions_customer_time", "ix_interactions_name_time"}
BEFORE_DUCKDB = {"ix_interactions_customer", "ix_interactions_name_time"}
BEFORE_POSTGRES = ON_POSTGRES | {"ix_interactions_customer"}


def _indexes(engine: Engine) -> set[str]:
    """The secondary indexes of ``interactions`` (the catalog's own list: duckdb-engine does not
    reflect indexes)."""
    if engine.dialect.name == "duckdb":
        query = "SELECT index_name FROM duckdb_indexes() WHERE table_name = 'interactions'"
    else:
        query = (
            "SELECT indexname FROM pg_indexes WHERE tablename = 'interactions' "
            "AND indexname <> 'interactions_pkey'"
        )
    with engine.connect() as conn:
        return set(conn.exec_driver_sql(query).scalars())


def test_each_engine_keeps_one_index_over_customer_id(engine: Engine) -> None:
    duck = engine.dialect.name == "duckdb"
    assert _indexes(engine) == (ON_DUCKDB if duck else ON_POSTGRES)
    try:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["engine"] = engine
        command.downgrade(cfg, "0024")
        assert _indexes(engine) == (BEFORE_DUCKDB if duck else BEFORE_POSTGRES)
    finally:
        upgrade(engine)
    assert _indexes(engine) == (ON_DUCKDB if duck else ON_POSTGRES)


def test_one_customers_log_is_still_read_by_index_on_duckdb(duckdb_engine: Engine) -> None:
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows = [
        {
            "event_id": f"e{i}",
            "type": "track",
            "name": "visit",
            "event_time": at + dt.timedelta(minutes=i),
            "received_at": at,
            "customer_id": f"c{i % 500}",
            "source": "import",
        }
        for i in range(20_000)
    ]
    with duckdb_engine.begin() as conn:
        insert_rows(conn, interactions, rows)
    mine = c360._their_log(["c7"], interactions.c.event_id)
    query = sa.select(sa.func.count()).select_from(mine)
    with duckdb_engine.connect() as conn:
        assert conn.execute(query).scalar_one() == 40
        compiled = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
        plan = "\n".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN ANALYZE {compiled}"))
    assert "Index Scan" in plan, plan

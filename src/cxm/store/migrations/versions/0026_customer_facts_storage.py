"""Customers' first and last seen are stored bit-packed on DuckDB, never run-length encoded.

Every stored batch of events moves the facts of its customers (``customers.add_facts``: an
``UPDATE`` of the count and of first / last seen). DuckDB chose run-length encoding for those
two columns (merged-away profiles hold NULL, new ones share their creation time), and an
update of a run-length-encoded segment seeks through its runs from the segment's start: on a
store of 512,000 profiles the update of 165,000 of them took 2.3 s per timestamp column, and
each import batch made the runs shorter (a 2M-row file in batches of 200k: 2.7 s of CPU for the
first batch, 13 s for the last). Bit-packed, the same update takes 0.4 s and stays flat. DuckDB
sets a column's compression only when the table is created, so the table is created again
with its rows. PostgreSQL stores rows, not segments: nothing changes there.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-02
"""

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

_COLUMNS = "id, created_at, first_seen, last_seen, interaction_count, merged_into, erased_at"


def _recreate(compression: str) -> None:
    using = f" USING COMPRESSION '{compression}'" if compression else ""
    op.execute(
        "CREATE TABLE customers_new (id VARCHAR(32) PRIMARY KEY, created_at TIMESTAMP NOT NULL, "
        f"first_seen TIMESTAMP{using}, last_seen TIMESTAMP{using}, "
        "interaction_count INTEGER NOT NULL, merged_into VARCHAR(32), erased_at TIMESTAMP)"
    )
    op.execute(f"INSERT INTO customers_new ({_COLUMNS}) SELECT {_COLUMNS} FROM customers")
    op.execute("DROP TABLE customers")
    op.execute("ALTER TABLE customers_new RENAME TO customers")


def upgrade() -> None:
    if op.get_bind().dialect.name == "duckdb":
        _recreate("bitpacking")


def downgrade() -> None:
    if op.get_bind().dialect.name == "duckdb":
        _recreate("")

"""CRM trait sync: a CSV dropped in the folder sets traits on the customers it identifies,
newest value wins, a re-drop changes nothing, and bad rows and files are set aside."""

from __future__ import annotations

import os
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cxm.config import load_settings
from cxm.customers import service as customers
from cxm.customers.tables import customer_traits
from cxm.integrations import crm

EXPORT = """email,crm_id,plan,segment,account_owner,updated_at
ana@example.com,C-1,premium,business,Maria,2026-11-01T08:00:00Z
ben@example.com,,basic,consumer,,2026-11-01T08:00:00Z
,,gold,business,Tom,2026-11-01T08:00:00Z
cleo@example.com,C-3,basic,consumer,Tom,yesterday
"""


def _traits(engine: Engine, identifier: str) -> dict[str, str]:
    with engine.connect() as conn:
        cid = customers.find(conn, identifier)
        assert cid is not None, identifier
        rows = conn.execute(
            sa.select(customer_traits.c.name, customer_traits.c.value).where(
                customer_traits.c.customer_id == cid
            )
        ).all()
    return {r[0]: r[1] for r in rows if r[1] is not None}


def test_a_dropped_file_sets_traits_and_moves_aside_with_its_result(
    seeded: Engine, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "accounts.csv").write_text(EXPORT, encoding="utf-8")
    settings = load_settings(data_dir=tmp_path, crm_drop_dir=str(drop))
    (result,) = crm.sync_folder(seeded, settings)
    assert (result.rows, result.stored, result.rejected) == (4, 2, 2)
    assert result.traits == ["plan", "segment", "account_owner"]
    assert _traits(seeded, "email:ana@example.com") == {
        "plan": "premium", "segment": "business", "account_owner": "Maria",
    }  # fmt: skip
    assert _traits(seeded, "crm_id:C-1") == _traits(seeded, "email:ana@example.com")
    assert _traits(seeded, "email:ben@example.com") == {"plan": "basic", "segment": "consumer"}
    assert list(drop.glob("*.csv")) == []
    processed = sorted(p.name.split("-", 1)[1] for p in (drop / "processed").iterdir())
    assert processed == ["accounts.csv", "accounts.rejects.csv", "accounts.result.txt"]
    rejects = next((drop / "processed").glob("*rejects.csv")).read_text()
    assert rejects.startswith("line,reason\n")
    assert '4,"no identifier in any of email, crm_id"' in rejects
    assert "'updated_at' 'yesterday' is not an ISO 8601 time" in rejects


def test_the_newest_value_wins_and_a_redrop_changes_nothing(seeded: Engine, tmp_path: Path) -> None:
    newer = tmp_path / "newer.csv"
    newer.write_text("email,plan,updated_at\nana@example.com,enterprise,2026-11-20T00:00:00Z\n")
    older = tmp_path / "older.csv"
    older.write_text("email,plan,updated_at\nana@example.com,trial,2026-10-01T00:00:00Z\n")
    assert crm.sync_file(seeded, newer).stored == 1
    assert crm.sync_file(seeded, older).stored == 1  # stored as history, but older
    assert _traits(seeded, "ana@example.com")["plan"] == "enterprise"
    again = crm.sync_file(seeded, newer)
    assert (again.stored, again.duplicates) == (0, 1)


def test_without_updated_at_the_file_time_orders_the_values(seeded: Engine, tmp_path: Path) -> None:
    first = tmp_path / "first.csv"
    first.write_text("email,plan\nana@example.com,basic\n")
    second = tmp_path / "second.csv"
    second.write_text("email,plan\nana@example.com,premium\n")
    now = time.time()
    os.utime(first, (now - 3600, now - 3600))
    os.utime(second, (now, now))
    crm.sync_file(seeded, second)
    crm.sync_file(seeded, first)
    assert _traits(seeded, "ana@example.com")["plan"] == "premium"


def test_a_file_without_identifiers_moves_to_failed_with_the_reason(
    seeded: Engine, tmp_path: Path
) -> None:
    (tmp_path / "plans.csv").write_text("name,plan\nAna,basic\n")
    settings = load_settings(data_dir=tmp_path, crm_drop_dir=str(tmp_path))
    assert crm.sync_folder(seeded, settings) == []
    (error,) = (tmp_path / "failed").glob("*.error.txt")
    assert "no identifier column" in error.read_text() and "name, plan" in error.read_text()
    assert [p.name.split("-", 1)[1] for p in (tmp_path / "failed").glob("*.csv")] == ["plans.csv"]

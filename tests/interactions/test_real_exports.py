"""Imports of real exports: dates, time zones and numbers as the mapping names them; files that
are mostly wrong are refused whole; rejects files are named after the input's stem."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cxm.errors import Invalid
from cxm.interactions import importer
from cxm.interactions.schemas import Mapping
from cxm.interactions.tables import interactions


def _write(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _stored(engine: Engine) -> dict[str, sa.RowMapping]:
    with engine.connect() as conn:
        return {r["event_id"]: r for r in conn.execute(sa.select(interactions)).mappings()}


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def test_day_first_dates_in_a_local_zone_with_decimal_commas(
    engine: Engine, tmp_path: Path
) -> None:
    # An export from a European shop system: day-first local times, decimal comma, thousands dot.
    path = _write(
        tmp_path / "orders.csv",
        ["order", "when", "customer", "total"],
        [
            ["o-1", "11/04/2018 20:09", "ana@example.com", "1.234,50"],
            ["o-2", "03/12/2018 08:00", "bo@example.com", "19,99"],  # winter: UTC+1
            ["o-3", "31/12/2019 23:59", "cy@example.com", "7"],
        ],
        delimiter=";",
    )
    spec = Mapping.model_validate(
        {
            "columns": {"event_id": "order", "timestamp": "when", "email": "customer",
                        "revenue": "total"},
            "defaults": {"name": "order_placed"},
            "dates": {"format": "%d/%m/%Y %H:%M", "timezone": "Europe/Berlin"},
            "numbers": {"decimal": ",", "thousands": "."},
        }
    )  # fmt: skip
    summary = importer.import_file(engine, path, spec, delimiter=";")
    assert (summary.stored, summary.rejected) == (3, 0), summary.line()
    rows = _stored(engine)
    # 20:09 in Berlin on 11 April 2018 (summer time, UTC+2) is 18:09 UTC.
    assert _utc(rows["o-1"]["event_time"]) == dt.datetime(2018, 4, 11, 18, 9, tzinfo=dt.UTC)
    assert _utc(rows["o-2"]["event_time"]) == dt.datetime(2018, 12, 3, 7, 0, tzinfo=dt.UTC)
    assert _utc(rows["o-3"]["event_time"]) == dt.datetime(2019, 12, 31, 22, 59, tzinfo=dt.UTC)
    assert rows["o-1"]["revenue"] == pytest.approx(1234.5)
    assert rows["o-2"]["revenue"] == pytest.approx(19.99)


def test_month_first_order_without_a_format(engine: Engine, tmp_path: Path) -> None:
    path = _write(
        tmp_path / "us.csv",
        ["event_id", "name", "timestamp", "email"],
        [["u-1", "visit", "04/11/2018 20:09", "a@example.com"],
         ["u-2", "visit", "12/03/2018", "b@example.com"]],
    )  # fmt: skip
    spec = Mapping.model_validate({"dates": {"order": "month_first"}})
    summary = importer.import_file(engine, path, spec)
    assert summary.stored == 2
    rows = _stored(engine)
    assert _utc(rows["u-1"]["event_time"]) == dt.datetime(2018, 4, 11, 20, 9, tzinfo=dt.UTC)
    assert _utc(rows["u-2"]["event_time"]) == dt.datetime(2018, 12, 3, tzinfo=dt.UTC)


def test_every_row_rejected_is_refused_and_nothing_stored(engine: Engine, tmp_path: Path) -> None:
    # The default (ISO) reading of day-first dates fails for every row.
    path = _write(
        tmp_path / "survey export.csv",
        ["event_id", "name", "timestamp", "email"],
        [[f"s-{i}", "visit", f"{i + 10}/04/2018 20:09", "a@example.com"] for i in range(5)],
    )
    with pytest.raises(Invalid, match=r"every row \(5\) was rejected; nothing was imported"):
        importer.import_file(engine, path, Mapping())
    assert _stored(engine) == {}
    rejects = tmp_path / "survey export.rejects.csv"
    assert rejects.exists()
    assert not (tmp_path / "survey export.csv.rejects.csv").exists()
    lines = list(csv.DictReader(rejects.open()))
    assert [r["line"] for r in lines] == ["2", "3", "4", "5", "6"]
    assert "not an ISO 8601 time" in lines[0]["reason"]


def test_a_wrong_format_names_the_format_in_each_reject(engine: Engine, tmp_path: Path) -> None:
    path = _write(
        tmp_path / "mixed.csv",
        ["event_id", "name", "timestamp"],
        [["m-1", "visit", "11/04/2018 20:09"], ["m-2", "visit", "2018-04-11"],
         ["m-3", "visit", "12/04/2018 09:30"], ["m-4", "visit", "13/04/2018 10:00"]],
    )  # fmt: skip
    spec = Mapping.model_validate({"dates": {"format": "%d/%m/%Y %H:%M"}})
    summary = importer.import_file(engine, path, spec)
    assert (summary.stored, summary.rejected) == (3, 1)
    assert summary.rejects_file == tmp_path / "mixed.rejects.csv"
    (reject,) = list(csv.DictReader(summary.rejects_file.open()))
    assert reject["line"] == "3" and reject["event_id"] == "m-2"
    assert "'2018-04-11' does not match the format %d/%m/%Y %H:%M" in reject["reason"]


def test_more_than_the_allowed_share_is_refused(engine: Engine, tmp_path: Path) -> None:
    rows = [[f"k-{i}", "visit", f"2026-01-0{1 + i % 9}T10:00:00Z"] for i in range(6)]
    rows += [[f"bad-{i}", "visit", "yesterday"] for i in range(4)]
    path = _write(tmp_path / "half.csv", ["event_id", "name", "timestamp"], rows)
    strict = Mapping.model_validate({"max_rejected_share": 0.2})
    with pytest.raises(
        Invalid, match=r"4 of 10 rows \(40%\) were rejected, more than the allowed 20%"
    ):
        importer.import_file(engine, path, strict)
    assert _stored(engine) == {}
    loose = Mapping.model_validate({"max_rejected_share": 0.5})
    summary = importer.import_file(engine, path, loose)
    assert (summary.stored, summary.rejected) == (6, 4)


def test_cli_exits_non_zero_when_every_row_is_rejected(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cxm.cli.main import app

    path = _write(
        tmp_path / "export.csv",
        ["event_id", "name", "timestamp"],
        [["x-1", "visit", "11/04/2018 20:09"]],
    )
    monkeypatch.setenv("CXM_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    result = CliRunner().invoke(app, ["import", "interactions", str(path)])
    assert result.exit_code == 2, result.output
    assert "export.rejects.csv" in " ".join(result.output.split())
    mapping = tmp_path / "map.yaml"
    mapping.write_text("dates:\n  format: '%d/%m/%Y %H:%M'\n  timezone: Europe/Berlin\n")
    result = CliRunner().invoke(app, ["import", "interactions", str(path), "--map", str(mapping)])
    assert result.exit_code == 0, result.output
    assert set(_stored(engine)) == {"x-1"}
    assert not (tmp_path / "export.rejects.csv").exists()  # a clean run removes stale rejects


def test_mapping_refuses_unknown_zones_and_clashing_separators() -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        Mapping.model_validate({"dates": {"timezone": "Mars/Olympus"}})
    with pytest.raises(ValidationError, match="must differ"):
        Mapping.model_validate({"numbers": {"decimal": ",", "thousands": ","}})
    with pytest.raises(ValidationError, match="no % fields"):
        Mapping.model_validate({"dates": {"format": "dd/mm/yyyy"}})

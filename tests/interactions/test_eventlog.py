"""Process-mining event logs (XES, CSV in the XES layout) import as interactions, and the
journeys mined from them count what pm4py counts on the same file."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pm4py
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cxm.journeys import definitions, mining, service
from cxm.store.analytics import reading

DATA = Path(__file__).parents[1] / "data" / "eventlogs"
HELPDESK = DATA / "helpdesk.xes.gz"
ROADS = DATA / "roadtraffic100traces.xes"


def _cli(engine: Engine, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    from cxm.cli.main import app

    monkeypatch.setenv("CXM_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    result = CliRunner().invoke(app, ["import", "interactions", *args])
    return result.exit_code, " ".join(result.output.split())


def _journey(tmp_path: Path, success: str) -> definitions.Journey:
    folder = tmp_path / "journeys"
    folder.mkdir(exist_ok=True)
    (folder / "log.yaml").write_text(
        "name: log\ncase: case_id\nactivities:\n  - {event: '*'}\n"
        f"start: ['*']\nsuccess: ['{success}']\nmax_duration: 5000d\n"
    )
    return definitions.get("log", [folder])


def _mined(engine: Engine, journey: definitions.Journey) -> dict[str, object]:
    with reading(engine) as con:
        ev = mining.events(con, journey)
        cases = mining.cases(con, journey, ev)
        variants = mining.variants(cases).to_pandas()
        edges = mining.directly_follows(ev).to_pandas()
        activities = ev.activity.nunique().to_pyarrow().as_py()
    return {
        "traces": int(variants["cases"].sum()),
        "activities": int(activities),
        "variants": {r.variant: int(r.cases) for r in variants.itertuples()},
        "dfg": {(r.source, r.target): int(r.frequency) for r in edges.itertuples()},
    }


def _doc(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else json.loads(str(value))


def _theirs(frame: pd.DataFrame) -> dict[str, object]:
    dfg, _, _ = pm4py.discover_dfg(frame)
    return {
        "traces": frame["case:concept:name"].nunique(),
        "activities": frame["concept:name"].nunique(),
        "variants": {mining.SEP.join(k): int(v) for k, v in pm4py.get_variants(frame).items()},
        "dfg": {k: int(v) for k, v in dfg.items()},
    }


@pytest.mark.parametrize(("log", "success"), [(HELPDESK, "Closed"), (ROADS, "Payment")])
def test_an_xes_log_counts_what_pm4py_counts(
    duckdb_engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, log: Path,
    success: str,
) -> None:  # fmt: skip
    code, out = _cli(duckdb_engine, monkeypatch, str(log))
    assert code == 0, out
    theirs = pm4py.read_xes(str(log), disable_progress_bar=True)
    assert f"{len(theirs)} rows: {len(theirs)} stored, 0 duplicates, 0 rejected" in out
    ours = _mined(duckdb_engine, _journey(tmp_path, success))
    expected = _theirs(theirs)
    assert ours["traces"] == expected["traces"] > 50
    assert ours["activities"] == expected["activities"] > 5
    assert ours["variants"] == expected["variants"]
    assert ours["dfg"] == expected["dfg"]
    # Importing the same log again adds nothing.
    code, out = _cli(duckdb_engine, monkeypatch, str(log))
    assert code == 0 and f"0 stored, {len(theirs)} duplicates" in out, out


def test_resource_lifecycle_and_typed_attributes_become_properties(
    duckdb_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _cli(duckdb_engine, monkeypatch, str(ROADS))[0] == 0
    theirs = pm4py.read_xes(str(ROADS), disable_progress_bar=True)
    with duckdb_engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT name, event_time, properties, revenue FROM interactions")
        ).all()
    props = [_doc(r.properties) for r in rows]
    assert Counter(p.get("resource") for p in props) == Counter(
        None if pd.isna(v) else v for v in theirs["org:resource"]
    )
    assert Counter(p["lifecycle"] for p in props) == Counter(theirs["lifecycle:transition"])
    # Typed values keep their type: int and float attributes are JSON numbers.
    points = [p["points"] for p in props if "points" in p]
    assert points and all(isinstance(v, int) for v in points)
    amounts = Counter(p["amount"] for p in props if "amount" in p)
    assert amounts == Counter(theirs["amount"].dropna().astype(float))
    # Times are the same instants (naive UTC here, aware in pm4py).
    ours_t = sorted(pd.Timestamp(r.event_time, tz="UTC") for r in rows)
    assert ours_t == sorted(theirs["time:timestamp"].dt.tz_convert("UTC"))


def test_a_csv_event_log_counts_what_pm4py_counts(
    duckdb_engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    frame = pm4py.read_xes(str(HELPDESK), disable_progress_bar=True)
    path = tmp_path / "helpdesk.csv"
    frame.to_csv(path, index=False)  # the XES layout: case:concept:name, concept:name, ...
    code, out = _cli(duckdb_engine, monkeypatch, str(path))
    assert code == 0 and f"{len(frame)} stored" in out, out
    theirs = pm4py.format_dataframe(pd.read_csv(path), case_id="case:concept:name",
                                    activity_key="concept:name",
                                    timestamp_key="time:timestamp")  # fmt: skip
    ours = _mined(duckdb_engine, _journey(tmp_path, "Closed"))
    expected = _theirs(theirs)
    assert ours["traces"] == expected["traces"]
    assert ours["activities"] == expected["activities"]
    assert ours["variants"] == expected["variants"]
    with duckdb_engine.connect() as conn:
        first = _doc(conn.execute(sa.text(
            "SELECT properties FROM interactions ORDER BY event_time, event_id LIMIT 1"
        )).scalar_one())  # fmt: skip
    assert first["case_id"] and first["resource"] and "customer" in first


def test_a_mined_imported_log_has_outcomes(
    duckdb_engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert _cli(duckdb_engine, monkeypatch, str(HELPDESK))[0] == 0
    frame = pm4py.read_xes(str(HELPDESK), disable_progress_bar=True)
    closed = frame.loc[frame["concept:name"] == "Closed", "case:concept:name"].nunique()
    found = service.summary(duckdb_engine, _journey(tmp_path, "Closed"))
    assert found["cases"] == frame["case:concept:name"].nunique()
    assert found["outcomes"]["success"]["count"] == closed


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.xes", b"<log><trace><event>", "not well-formed XML"),
        ("other.xes", b"<html><trace/></html>", "the root element is <html>, expected <log>"),
        ("empty.xes", b"", "not well-formed XML"),
        (
            "nots.xes",
            b'<log>\n<trace><string key="concept:name" value="c1"/>\n<event>'
            b'<string key="concept:name" value="a"/></event></trace></log>',
            "line 3: an event without time:timestamp (trace 'c1')",
        ),
        (
            "nocase.xes",
            b"<log>\n<trace>\n<event/></trace></log>",
            "line 2: a trace without a concept:name",
        ),
        (
            "nots.csv",
            b"case:concept:name,concept:name\nc1,a\n",
            "an event log needs a 'time:timestamp' column",
        ),
        (
            "gaps.csv",
            b"case:concept:name,concept:name,time:timestamp\nc1,a,2020-01-01\n,b,2020-01-02\n",
            "1 rows without case:concept:name (lines 3)",
        ),
    ],
)
def test_a_broken_log_is_refused_whole_with_its_line(
    duckdb_engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str,
    content: bytes, message: str,
) -> None:  # fmt: skip
    path = tmp_path / name
    path.write_bytes(content)
    code, out = _cli(duckdb_engine, monkeypatch, str(path))
    assert code == 2 and message in out and "Traceback" not in out, out
    with duckdb_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM interactions")).scalar_one() == 0


@pytest.mark.parametrize("cut", [2000, 5000, 9000])
def test_a_damaged_gzip_log_is_refused(
    duckdb_engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cut: int
) -> None:
    path = tmp_path / "cut.xes.gz"
    whole = gzip.compress(ROADS.read_bytes(), mtime=0)
    path.write_bytes(whole[:cut] + bytes(b ^ 0xFF for b in whole[cut : cut + 50]))
    code, out = _cli(duckdb_engine, monkeypatch, str(path))
    assert code == 2 and "cut.xes.gz" in out, out

"""Conformance of a journey's cases: our per-variant replay equals pm4py's own token-based
replay of every case of the same log, on a model pm4py discovers from the same variants."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pm4py
import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from cxm.errors import Invalid
from cxm.journeys import conformance, definitions, mining

DATA = Path(__file__).parents[1] / "data" / "eventlogs"
LOGS = [DATA / "helpdesk.xes.gz", DATA / "roadtraffic100traces.xes"]


@pytest.fixture(scope="module", params=LOGS, ids=lambda p: p.name)
def frame(request: pytest.FixtureRequest) -> pd.DataFrame:
    df: pd.DataFrame = pm4py.read_xes(str(request.param), disable_progress_bar=True)
    return df


def _variants(df: pd.DataFrame) -> list[tuple[str, int]]:
    return [(mining.SEP.join(k), int(v)) for k, v in pm4py.get_variants(df).items()]


def _pm4py_model(df: pd.DataFrame, cover: float) -> tuple[object, object, object]:
    """The model pm4py's inductive miner discovers from the cases of the top variants."""
    top = conformance.model_variants(_variants(df), cover)
    kept = pm4py.filter_variants(df, [tuple(v.split(mining.SEP)) for v in top])
    return pm4py.discover_petri_net_inductive(kept)


@pytest.mark.parametrize("cover", [0.5, 0.8])
def test_fitness_and_fitting_share_equal_pm4py_token_replay(frame: pd.DataFrame,
                                                            cover: float) -> None:  # fmt: skip
    ours = conformance.check(_variants(frame), cover)
    net, im, fm = _pm4py_model(frame, cover)
    theirs = pm4py.fitness_token_based_replay(frame, net, im, fm)
    assert ours["cases"] == frame["case:concept:name"].nunique()
    assert ours["fitness"] == pytest.approx(theirs["log_fitness"], abs=1e-6)
    assert 100 * ours["fitting"] == pytest.approx(theirs["percentage_of_fitting_traces"], abs=1e-4)
    assert 0 < ours["fitting"] < 1  # the rare variants do not all fit the usual path
    assert ours["model"]["transitions"] == len(net.transitions)


def test_each_variant_has_the_fitness_pm4py_gives_its_cases(frame: pd.DataFrame) -> None:
    ours = {v["variant"]: v for v in conformance.check(_variants(frame))["variants"]}
    net, im, fm = _pm4py_model(frame, 0.8)
    log = pm4py.convert_to_event_log(frame)
    diagnostics = pm4py.conformance_diagnostics_token_based_replay(log, net, im, fm)
    seen: Counter[str] = Counter()
    for trace, d in zip(log, diagnostics, strict=True):
        variant = mining.SEP.join(e["concept:name"] for e in trace)
        seen[variant] += 1
        assert ours[variant]["fitness"] == pytest.approx(d["trace_fitness"], abs=1e-4), variant
        assert ours[variant]["fits"] == d["trace_is_fit"], variant
    assert {v: o["cases"] for v, o in ours.items()} == dict(seen)


def test_a_cover_outside_zero_to_one_is_refused() -> None:
    for bad in (0, -0.1, 1.5):
        with pytest.raises(Invalid, match="cover must be more than 0 and at most 1"):
            conformance.model_variants([("a", 1)], bad)


def test_no_cases_give_no_figures() -> None:
    out = conformance.check([])
    assert (out["cases"], out["fitness"], out["variants"]) == (0, None, [])


# ---- through the store: an imported log, mined as a journey ----


@pytest.fixture
def imported(duckdb_engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    from cxm.cli.main import app

    monkeypatch.setenv("CXM_DATABASE_URL", duckdb_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CXM_DATA_DIR", str(tmp_path))
    done = CliRunner().invoke(app, ["import", "interactions", str(LOGS[1])])
    assert done.exit_code == 0, done.output
    folder = tmp_path / "journeys"
    folder.mkdir()
    (folder / "fines.yaml").write_text(
        "name: fines\ncase: case_id\nactivities:\n  - {event: '*'}\n"
        "start: ['*']\nsuccess: ['Payment']\nmax_duration: 5000d\n"
    )
    return folder


def test_a_journey_over_the_store_equals_pm4py_on_the_file(
    duckdb_engine: Engine, imported: Path
) -> None:
    journey = definitions.get("fines", [imported])
    ours = conformance.conformance(duckdb_engine, journey)
    df = pm4py.read_xes(str(LOGS[1]), disable_progress_bar=True)
    net, im, fm = _pm4py_model(df, 0.8)
    theirs = pm4py.fitness_token_based_replay(df, net, im, fm)
    assert ours["journey"] == "fines" and ours["cases"] == 100
    assert ours["fitness"] == pytest.approx(theirs["log_fitness"], abs=1e-6)
    assert 100 * ours["fitting"] == pytest.approx(theirs["percentage_of_fitting_traces"], abs=1e-4)


def test_cli_conformance_gives_the_checked_figures(duckdb_engine: Engine, imported: Path) -> None:
    from cxm.cli.main import app

    runner = CliRunner()
    done = runner.invoke(app, ["journeys", "conformance", "fines", "--format", "json"])
    assert done.exit_code == 0, done.output
    shown = json.loads(done.output)
    expected = conformance.conformance(duckdb_engine, definitions.get("fines", [imported]))
    assert shown["fitness"] == expected["fitness"] and shown["fitting"] == expected["fitting"]
    assert shown["variants"] == expected["variants"][:20]
    text = runner.invoke(app, ["journeys", "conformance", "fines"])
    assert text.exit_code == 0, text.output
    assert f"conforming cases {expected['fitting_cases']} of 100" in text.output
    bad = runner.invoke(app, ["journeys", "conformance", "fines", "--cover", "2"])
    assert bad.exit_code == 2 and "cover must be" in bad.output

"""'cxm demo generate' ends with a summary a person reads: what, how much, which files, where."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from cxm.cli.main import app


def test_demo_generate_prints_counts_files_and_where(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    out = CliRunner().invoke(app, ["demo", "generate", str(folder), "--customers", "12",
                                   "--months", "2", "--seed", "3"])  # fmt: skip
    assert out.exit_code == 0, out.output
    text = out.stdout
    assert f"in {folder.resolve()}" in text
    assert "12 customers over 2 months" in text
    interactions = pq.read_metadata(folder / "interactions.parquet").num_rows
    with (folder / "responses.csv").open(newline="", encoding="utf-8") as f:
        responses = sum(1 for _ in csv.DictReader(f))
    assert re.search(rf"\b{interactions:,} interactions\b", text)
    assert re.search(rf"\b{responses:,} survey responses\b", text)
    written = sorted(p.name for p in folder.iterdir())
    for name in written:
        assert re.search(rf"^  {re.escape(name)}/?\s", text, re.M), name
    assert f"{len(written)} files" in text
    assert f"cxm demo load {folder.resolve()}" in text


def test_demo_generate_refuses_a_bad_format_with_exit_2(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["demo", "generate", str(tmp_path), "--format", "xlsx"])
    assert out.exit_code == 2 and "parquet or jsonl" in out.output

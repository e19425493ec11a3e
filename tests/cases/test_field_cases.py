"""The field cases beside the repository (``../shared/cases``): each ``repro.sh`` replays one
kind of fault that users of similar tools reported, through the documented commands and API,
and exits 0 when cxm behaves right.

``CXM_CASES_DIR`` points elsewhere when the cases live in another folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
CASES = Path(os.environ.get("CXM_CASES_DIR", ROOT.parent / "shared" / "cases"))


def _cases() -> list[Path]:
    return sorted(p.parent for p in CASES.glob("*/repro.sh"))


def test_the_field_cases_are_there() -> None:
    assert _cases(), f"no field cases under {CASES}: set CXM_CASES_DIR to their folder"


@pytest.mark.parametrize("case", _cases(), ids=lambda p: p.name)
def test_field_case_behaves_right(case: Path, tmp_path: Path) -> None:
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
        "CXM_PORT": str(free_port()),
        "SMTP_PORT": str(free_port()),
        "TMPDIR": str(tmp_path),
    }
    done = subprocess.run(
        ["bash", str(case / "repro.sh")], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, (
        f"{case.name} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    )

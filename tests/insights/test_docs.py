"""The worked example in docs/insights.md runs and says what the page says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

PAGE = Path(__file__).parents[2] / "docs" / "insights.md"


def _example(heading: str = "## A worked example") -> str:
    section = PAGE.read_text(encoding="utf-8").split(heading, 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, f"{heading} has no python block"
    return found.group(1)


@pytest.mark.parametrize(
    "heading",
    [
        "## A worked example",
        "### A worked example: relative weights against the Shapley decomposition",
        "### A public dataset end to end",
    ],
)
def test_worked_example_prints_what_the_page_says(heading: str) -> None:
    code = _example(heading)
    expected = code.strip().splitlines()[-1].removeprefix("# ")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(PAGE), "exec"), {})
    assert out.getvalue().strip() == expected


def test_worked_example_effect_equals_a_least_squares_solution() -> None:
    scope: dict[str, object] = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(_example(), str(PAGE), "exec"), scope)
    answers = scope["answers"]
    assert isinstance(answers, pd.DataFrame)
    x = np.column_stack([
        np.ones(len(answers)),
        answers["late_delivery"],
        (answers["segment"] == "small_business").astype(float),
        answers["tenure_months"],
    ])  # fmt: skip
    coef, *_ = np.linalg.lstsq(x, answers["nps"].to_numpy(float), rcond=None)
    fit = scope["fit"]
    assert isinstance(fit, dict)
    assert fit["effect"] == pytest.approx(coef[1])
    assert fit["ci_low"] < coef[1] < fit["ci_high"]

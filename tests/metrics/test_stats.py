"""Intervals and tests against published formulas and the NPS reference values."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxm.metrics import stats

DATA = Path(__file__).parent / "data"
METHODS = {"wald": "wald", "adjusted.wald": "adjusted_wald"}


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open() as f:
        return [r for r in csv.DictReader(f) if r["method"] in METHODS]


@pytest.mark.parametrize("row", _rows("nps_reference_one_sample.csv"), ids=str)
def test_nps_interval_matches_reference(row: dict[str, str]) -> None:
    d, a, p = int(row["detractors"]), int(row["passives"]), int(row["promoters"])
    got = stats.nps_interval(p, a, d, method=METHODS[row["method"]])
    assert got.value == pytest.approx(float(row["nps"]), abs=1e-6)
    assert stats.nps_variance(p, a, d) == pytest.approx(float(row["var"]), abs=1e-6)
    assert got.se == pytest.approx(float(row["se"]), abs=1e-6)
    assert got.low == pytest.approx(float(row["lower"]), abs=1e-6)
    assert got.high == pytest.approx(float(row["upper"]), abs=1e-6)
    assert got.n == d + a + p


@pytest.mark.parametrize("row", _rows("nps_reference_two_sample.csv"), ids=str)
def test_nps_two_sample_test_matches_reference(row: dict[str, str]) -> None:
    x = (int(row["x_pro"]), int(row["x_pas"]), int(row["x_det"]))
    y = (int(row["y_pro"]), int(row["y_pas"]), int(row["y_det"]))
    got = stats.nps_test(x, y, method=METHODS[row["method"]])
    # The reference reports |x - y| and its interval; ours is signed x - y.
    sign = 1 if got.delta >= 0 else -1
    assert abs(got.delta) == pytest.approx(float(row["delta"]), abs=1e-6)
    assert got.se == pytest.approx(float(row["se"]), abs=1e-6)
    low, high = (got.low, got.high) if sign > 0 else (-got.high, -got.low)
    assert low == pytest.approx(float(row["lower"]), abs=1e-6)
    assert high == pytest.approx(float(row["upper"]), abs=1e-6)
    assert got.p_value == pytest.approx(float(row["p_value"]), abs=1e-6)


def test_nps_variance_matches_package_expectations() -> None:
    spec = json.loads((DATA / "package_test_expectations.json").read_text())
    for (d, a, p), expected in spec["var_counts"]:
        assert stats.nps_variance(p, a, d) == pytest.approx(expected, abs=1e-6)
    for (d, a, p), expected in spec["nps_counts"]:
        assert stats.nps_score(p, a, d) == pytest.approx(expected, abs=1e-6)


def test_wilson_interval_of_ten_in_twenty() -> None:
    got = stats.wilson_interval(10, 20)
    assert (got.low, got.high) == (pytest.approx(0.299298, abs=1e-6),
                                   pytest.approx(0.700702, abs=1e-6))  # fmt: skip
    assert got.method == "wilson"


def test_wilson_interval_stays_inside_zero_and_one_at_the_edges() -> None:
    assert stats.wilson_interval(0, 5).low == 0.0
    assert stats.wilson_interval(5, 5).high == 1.0
    assert stats.wilson_interval(0, 5).high == pytest.approx(0.434482, abs=1e-6)


def test_mean_interval_uses_students_t() -> None:
    got = stats.mean_interval(5.0, 2.0, 10)
    half = 2.2621571627982 * 2.0 / math.sqrt(10)
    assert (got.low, got.high) == (pytest.approx(5 - half), pytest.approx(5 + half))


def test_welch_test_from_summary_statistics_matches_scipy() -> None:
    from scipy import stats as sst

    ref = sst.ttest_ind_from_stats(5.0, 2.0, 30, 4.0, 3.0, 40, equal_var=False)
    got = stats.mean_test(5.0, 2.0, 30, 4.0, 3.0, 40)
    assert got.p_value == pytest.approx(ref.pvalue, abs=1e-9)
    assert got.delta == 1.0


def test_two_proportion_test_hand_example() -> None:
    # 60/100 vs 45/100: pooled p = 0.525, se0 = sqrt(.525*.475*.02) = 0.070622, z = 2.12398
    got = stats.proportion_test(60, 100, 45, 100)
    assert got.p_value == pytest.approx(0.033672, abs=1e-6)


def test_holm_and_benjamini_hochberg_hand_examples() -> None:
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.benjamini_hochberg([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.04, 0.04])


@given(st.lists(st.floats(0, 1), min_size=1, max_size=30))
def test_adjusted_p_values_never_fall_below_the_raw_ones(ps: list[float]) -> None:
    for adjusted in (stats.holm(ps), stats.benjamini_hochberg(ps)):
        assert all(a >= p - 1e-12 and a <= 1 for a, p in zip(adjusted, ps, strict=True))


def test_poststratification_hand_example() -> None:
    # Sample 80 north (mean 0.5) and 20 south (mean 0.9); population is 50/50.
    counts = {"north": 80.0, "south": 20.0}
    w = stats.poststrat_weights(counts, {"north": 0.5, "south": 0.5})
    got = stats.weighted_interval({"north": 0.5, "south": 0.9}, {"north": 0.25, "south": 0.09},
                                  counts, w)  # fmt: skip
    assert got.value == pytest.approx(0.7)
    assert got.se == pytest.approx(math.sqrt(0.25 * 0.25 / 80 + 0.25 * 0.09 / 20))
    assert got.n == pytest.approx(1 / (0.25 / 80 + 0.25 / 20))  # Kish: 64


@given(st.integers(0, 200), st.integers(0, 200), st.integers(0, 200))
def test_nps_interval_contains_the_score(p: int, a: int, d: int) -> None:
    if p + a + d == 0:
        return
    got = stats.nps_interval(p, a, d)
    assert got.low - 1e-12 <= got.value <= got.high + 1e-12
    assert -1 <= got.value <= 1

"""Intervals and tests against published formulas and the NPS reference values."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from cxm.metrics import Weighting, compute, stats
from tests.metrics import factories as f

DATA = Path(__file__).parent / "data"
METHODS = {"wald": "wald", "adjusted.wald": "adjusted_wald"}


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open() as f:
        return [r for r in csv.DictReader(f) if r["method"] in METHODS]


@pytest.mark.parametrize("row", _rows("nps_reference_one_sample.csv"), ids=str)
def test_nps_interval_matches_reference(row: dict[str, str]) -> None:
    d, a, p = int(row["detractors"]), int(row["passives"]), int(row["promoters"])
    got = stats.nps_interval(p, a, d, method=METHODS[row["method"]], clip=False)
    assert got.value == pytest.approx(float(row["nps"]), abs=1e-6)
    assert stats.nps_variance(p, a, d) == pytest.approx(float(row["var"]), abs=1e-6)
    assert got.se == pytest.approx(float(row["se"]), abs=1e-6)
    assert got.low == pytest.approx(float(row["lower"]), abs=1e-6)
    assert got.high == pytest.approx(float(row["upper"]), abs=1e-6)
    assert got.n == d + a + p


@pytest.mark.parametrize("row", _rows("nps_reference_one_sample.csv"), ids=str)
def test_reported_nps_interval_is_the_reference_kept_inside_the_scale(row: dict[str, str]) -> None:
    d, a, p = int(row["detractors"]), int(row["passives"]), int(row["promoters"])
    got = stats.nps_interval(p, a, d, method=METHODS[row["method"]])
    value = float(row["nps"])
    low = min(max(float(row["lower"]), -1.0), value)
    high = max(min(float(row["upper"]), 1.0), value)
    assert (got.low, got.high) == (pytest.approx(low, abs=1e-6), pytest.approx(high, abs=1e-6))


@pytest.mark.parametrize("row", _rows("nps_reference_two_sample.csv"), ids=str)
def test_nps_two_sample_test_matches_reference(row: dict[str, str]) -> None:
    x = (int(row["x_pro"]), int(row["x_pas"]), int(row["x_det"]))
    y = (int(row["y_pro"]), int(row["y_pas"]), int(row["y_det"]))
    got = stats.nps_test(x, y, method=METHODS[row["method"]])
    # The reference reports |x - y| (adjusted for adjusted Wald) and its interval; ours is the
    # signed, observed x - y with the interval centred on the (adjusted) difference.
    sign = 1 if got.delta >= 0 else -1
    observed = stats.nps_score(*x) - stats.nps_score(*y)
    assert got.delta == pytest.approx(observed, abs=1e-12)
    assert sign * (got.low + got.high) / 2 == pytest.approx(float(row["delta"]), abs=1e-6)
    assert got.se == pytest.approx(float(row["se"]), abs=1e-6)
    low, high = (got.low, got.high) if sign > 0 else (-got.high, -got.low)
    assert low == pytest.approx(float(row["lower"]), abs=1e-6)
    assert high == pytest.approx(float(row["upper"]), abs=1e-6)
    assert got.p_value == pytest.approx(float(row["p_value"]), abs=1e-6)


def test_case_29_promoters_one_detractor_stays_below_100() -> None:
    # Field case: 29 scores of 10 and one 3. Wald gave [80.49, 106.18].
    got = stats.nps_interval(29, 0, 1)
    assert got.value == pytest.approx(28 / 30)
    # Adjusted counts 29.75 / 1.5 / 1.75 of 33: centre 28/33, var 31.5/33 - (28/33)^2.
    centre = 28 / 33
    se = math.sqrt((31.5 / 33 - centre**2) / 33)
    assert got.low == pytest.approx(centre - 1.959963984540054 * se, abs=1e-9)
    assert got.high == 1.0
    assert got.method == "nps-adjusted-wald"


def test_all_promoters_are_not_a_zero_width_interval() -> None:
    got = stats.nps_interval(30, 0, 0)
    assert got.value == 1.0 and got.high == 1.0
    assert got.low < 0.9  # 30 answers do not prove that every customer is a promoter


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


def test_mean_interval_without_a_scale_uses_students_t() -> None:
    got = stats.mean_interval(5.0, 2.0, 10)
    half = 2.2621571627982 * 2.0 / math.sqrt(10)
    assert (got.low, got.high) == (pytest.approx(5 - half), pytest.approx(5 + half))


def test_mean_interval_with_no_spread_and_no_scale_gives_no_bounds() -> None:
    got = stats.mean_interval(24.0, 0.0, 40)
    assert math.isnan(got.low) and math.isnan(got.high)


def test_mean_interval_on_a_half_open_scale_is_clipped_at_its_end() -> None:
    got = stats.mean_interval(0.5, 3.0, 5, scale=stats.Scale(min=0))
    assert got.low == 0.0 and got.high > 0.5


@pytest.mark.parametrize(("x", "n"), [(0, 10), (3, 10), (10, 10), (24, 40), (1, 1)])
def test_adjusted_mean_on_zero_one_answers_is_agresti_coull(x: int, n: int) -> None:
    from statsmodels.stats.proportion import proportion_confint

    mean = x / n
    sd = math.sqrt((x * (1 - mean) ** 2 + (n - x) * mean**2) / (n - 1)) if n > 1 else 0.0
    got = stats.mean_interval(mean, sd, n, scale=stats.Scale(0, 1))
    low, high = proportion_confint(x, n, alpha=0.05, method="agresti_coull")
    assert got.low == pytest.approx(max(min(low, mean), 0), abs=1e-9)
    assert got.high == pytest.approx(min(max(high, mean), 1), abs=1e-9)
    assert got.method == "adjusted-mean"


def test_identical_csat_answers_do_not_give_a_zero_width_interval() -> None:
    got = stats.mean_interval(5.0, 0.0, 30, scale=stats.Scale(1, 5))
    assert got.high == 5.0 and got.low < 4.9


def test_two_proportion_interval_is_agresti_caffo_inside_minus_one_and_one() -> None:
    # 60/100 vs 45/100: adjusted 61/102 and 46/102.
    got = stats.proportion_test(60, 100, 45, 100)
    ax, ay = 61 / 102, 46 / 102
    se = math.sqrt(ax * (1 - ax) / 102 + ay * (1 - ay) / 102)
    assert got.low == pytest.approx(ax - ay - 1.959963984540054 * se, abs=1e-9)
    every = stats.proportion_test(5, 5, 0, 5)
    assert every.high <= 1.0 and every.low < every.high


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


# Generating the lists is slow only when the machine is busy: not a property of the test.
@settings(suppress_health_check=[HealthCheck.too_slow])
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


counts = st.integers(0, 300)
confidences = st.sampled_from([0.8, 0.9, 0.95, 0.99])


@given(counts, counts, counts, confidences, st.sampled_from(["wald", "adjusted_wald"]))
def test_nps_interval_lies_in_range_and_contains_the_score(
    p: int, a: int, d: int, c: float, method: str
) -> None:
    if p + a + d == 0:
        return
    got = stats.nps_interval(p, a, d, c, method)
    assert -1 <= got.low <= got.value <= got.high <= 1
    if method == "adjusted_wald":
        assert got.high > got.low


@given(st.tuples(counts, counts, counts), st.tuples(counts, counts, counts), confidences)
def test_nps_difference_interval_lies_in_range_and_contains_the_difference(
    x: tuple[int, int, int], y: tuple[int, int, int], c: float
) -> None:
    if sum(x) == 0 or sum(y) == 0:
        return
    got = stats.nps_test(x, y, c)
    assert -2 <= got.low <= got.delta <= got.high <= 2 and got.high > got.low


@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
       confidences)  # fmt: skip
def test_wilson_interval_lies_in_range_and_contains_the_share(
    xn: tuple[int, int], c: float
) -> None:
    x, n = xn
    got = stats.wilson_interval(x, n, c)
    assert 0 <= got.low <= got.value <= got.high <= 1 and got.high > got.low


@given(
    st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
)
def test_proportion_difference_lies_in_range_and_contains_it(
    x: tuple[int, int], y: tuple[int, int]
) -> None:
    got = stats.proportion_test(*x, *y)
    assert -1 <= got.low <= got.delta <= got.high <= 1 and got.high > got.low


answers_1_to_5 = st.lists(st.integers(1, 5), min_size=1, max_size=200)


def _summary(xs: list[int]) -> tuple[float, float, int]:
    n = len(xs)
    mean = sum(xs) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in xs) / (n - 1)) if n > 1 else math.nan
    return mean, sd, n


@given(answers_1_to_5, confidences)
def test_mean_interval_on_a_scale_lies_in_it_and_contains_the_mean(xs: list[int], c: float) -> None:
    mean, sd, n = _summary(xs)
    got = stats.mean_interval(mean, sd, n, c, stats.Scale(1, 5))
    assert 1 <= got.low <= mean + 1e-12 and mean - 1e-12 <= got.high <= 5
    assert got.high > got.low


@given(answers_1_to_5, answers_1_to_5)
def test_mean_difference_on_a_scale_lies_in_range_and_contains_it(
    xs: list[int], ys: list[int]
) -> None:
    if len(xs) < 2 or len(ys) < 2:
        return
    got = stats.mean_test(*_summary(xs), *_summary(ys), scale=stats.Scale(1, 5))
    assert -4 <= got.low <= got.delta + 1e-12 and got.delta - 1e-12 <= got.high <= 4
    assert got.high > got.low


# --- what compute() reports, on DuckDB and PostgreSQL --------------------------------------


def _in_range(df: pd.DataFrame, lo: float, hi: float) -> None:
    for r in df.to_dict("records"):
        assert lo <= r["ci_low"] <= r["value"] <= r["ci_high"] <= hi, r
        assert r["ci_high"] > r["ci_low"], r


def test_reported_nps_of_the_field_case_stays_inside_the_scale(engine: Engine) -> None:
    with engine.begin() as conn:
        f.org(conn)
        f.nps_responses(conn, "delivery", [10] * 29 + [3])
        f.nps_responses(conn, "support_chat", [10] * 30)
    df = compute(engine, "nps", by=["touchpoint"])
    _in_range(df, -100, 100)
    rows = {r["touchpoint"]: r for r in df.to_dict("records")}
    assert rows["delivery"]["value"] == pytest.approx(93.333, abs=1e-3)
    assert rows["delivery"]["ci_high"] == 100.0
    assert rows["delivery"]["method"] == "nps-adjusted-wald"
    # 30 answers of 10: the score is 100 but the interval is not [100, 100].
    assert rows["support_chat"]["value"] == 100.0 and rows["support_chat"]["ci_low"] < 90


def test_reported_csat_and_its_mean_stay_inside_their_scales(engine: Engine) -> None:
    with engine.begin() as conn:
        f.org(conn)
        f.nps_responses(conn, "support_chat", [9] * 30, csat=5)
    _in_range(compute(engine, "csat"), 0, 100)
    mean = compute(engine, "csat_mean")
    _in_range(mean, 1, 5)
    assert mean["method"][0] == "adjusted-mean" and mean["value"][0] == 5.0


def test_post_stratified_nps_stays_inside_the_scale(engine: Engine) -> None:
    with engine.begin() as conn:
        f.org(conn)
        f.customer(conn, "c1", plan="pro")
        f.customer(conn, "c2", plan="basic")
        f.nps_responses(conn, "delivery", [10] * 30, customer_id="c1")
        f.nps_responses(conn, "delivery", [9] * 15, customer_id="c2")
    w = compute(engine, "nps", weights=Weighting("plan", {"pro": 0.5, "basic": 0.5}))
    _in_range(w, -100, 100)
    assert w["method"][0] == "nps-adjusted-wald-poststratified"


def test_differences_against_the_previous_period_stay_inside_twice_the_scale(
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        f.org(conn)
        f.nps_responses(conn, "delivery", [10] * 30)
        f.nps_responses(conn, "delivery", [0] * 30, when=f.T0 + dt.timedelta(days=31))
    df = compute(engine, "nps", by=["month"], compare="previous")
    last = df.to_dict("records")[-1]
    assert last["delta"] == -200.0 and 0 < last["p_value"] < 1e-6

"""Statistics on aggregated metric results: intervals, two-sample tests, corrections, weights.

Every function here works on counts and summary statistics (never on raw rows), so the same
code serves DuckDB, PostgreSQL and Spark results. NPS is on [-1, 1] here; the metrics layer
reports it in points (x100).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import stats as _st

from cxm.errors import Invalid

# Pseudo-counts of the adjusted Wald NPS interval (Rocks, "Interval estimation for the net
# promoter score", 2016): detractors, passives, promoters.
_ADJUST = (0.75, 1.5, 0.75)


@dataclass(frozen=True)
class Interval:
    """An estimate with its confidence interval; ``method`` and ``n`` travel with it."""

    value: float
    low: float
    high: float
    se: float
    n: float
    method: str


@dataclass(frozen=True)
class TestResult:
    """A two-sample comparison: ``delta`` = x - y, its interval, and the two-sided p-value."""

    delta: float
    se: float
    low: float
    high: float
    p_value: float
    method: str


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise Invalid(f"confidence must be between 0 and 1 (exclusive), got {confidence}")
    return float(_st.norm.ppf(0.5 + confidence / 2))


def _p_two_sided(z: float) -> float:
    return float(2 * _st.norm.sf(abs(z)))


def nps_score(promoters: float, passives: float, detractors: float) -> float:
    """% promoters - % detractors, on [-1, 1]."""
    n = promoters + passives + detractors
    if n <= 0:
        raise Invalid("NPS needs at least one response")
    return (promoters - detractors) / n


def nps_variance(promoters: float, passives: float, detractors: float) -> float:
    """Per-response variance of the NPS: p_promoter + p_detractor - NPS^2."""
    n = promoters + passives + detractors
    nps = nps_score(promoters, passives, detractors)
    return (promoters + detractors) / n - nps * nps


def _nps_counts(
    promoters: float, passives: float, detractors: float, method: str
) -> tuple[float, float, float]:
    if method == "wald":
        return promoters, passives, detractors
    if method == "adjusted_wald":
        return promoters + _ADJUST[2], passives + _ADJUST[1], detractors + _ADJUST[0]
    raise Invalid(f"unknown NPS interval method {method!r}; use 'wald' or 'adjusted_wald'")


def nps_interval(
    promoters: float,
    passives: float,
    detractors: float,
    confidence: float = 0.95,
    method: str = "wald",
) -> Interval:
    """NPS with a Wald (or adjusted Wald) interval from the category proportions' variance."""
    p, a, d = _nps_counts(promoters, passives, detractors, method)
    n = p + a + d
    nps = nps_score(p, a, d)
    se = math.sqrt(max(nps_variance(p, a, d), 0.0) / n)
    z = _z(confidence)
    # The point estimate is the observed NPS; the adjusted method only moves the interval.
    value = nps_score(promoters, passives, detractors)
    return Interval(value, nps - z * se, nps + z * se, se, promoters + passives + detractors,
                    f"nps-{method}")  # fmt: skip


def nps_test(
    x: tuple[float, float, float],
    y: tuple[float, float, float],
    confidence: float = 0.95,
    method: str = "wald",
) -> TestResult:
    """Two independent NPS samples, each as (promoters, passives, detractors): z-test of x - y."""
    xp, xa, xd = _nps_counts(*x, method)
    yp, ya, yd = _nps_counts(*y, method)
    nx, ny = xp + xa + xd, yp + ya + yd
    delta = nps_score(xp, xa, xd) - nps_score(yp, ya, yd)
    se = math.sqrt(nps_variance(xp, xa, xd) / nx + nps_variance(yp, ya, yd) / ny)
    z = _z(confidence)
    p = _p_two_sided(delta / se) if se > 0 else (0.0 if delta else 1.0)
    return TestResult(delta, se, delta - z * se, delta + z * se, p, f"nps-{method}-z")


def wilson_interval(successes: float, n: float, confidence: float = 0.95) -> Interval:
    """A proportion with the Wilson score interval (good near 0 and 1 and for small n)."""
    if n <= 0:
        raise Invalid("a proportion needs at least one observation")
    if not 0 <= successes <= n:
        raise Invalid(f"successes ({successes}) must be between 0 and n ({n})")
    z = _z(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half),
                    math.sqrt(p * (1 - p) / n), n, "wilson")  # fmt: skip


def proportion_test(x_successes: float, x_n: float, y_successes: float, y_n: float,
                    confidence: float = 0.95) -> TestResult:  # fmt: skip
    """Two proportions: pooled z-test for the p-value, unpooled interval for x - y."""
    if x_n <= 0 or y_n <= 0:
        raise Invalid("both samples need at least one observation")
    px, py = x_successes / x_n, y_successes / y_n
    pooled = (x_successes + y_successes) / (x_n + y_n)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / x_n + 1 / y_n))
    se = math.sqrt(px * (1 - px) / x_n + py * (1 - py) / y_n)
    delta = px - py
    p = _p_two_sided(delta / se0) if se0 > 0 else (0.0 if delta else 1.0)
    z = _z(confidence)
    return TestResult(delta, se, delta - z * se, delta + z * se, p, "two-proportion-z")


def mean_interval(mean: float, sd: float, n: float, confidence: float = 0.95) -> Interval:
    """A mean with Student's t interval from the sample standard deviation."""
    if n < 2 or sd is None or math.isnan(sd):
        return Interval(mean, math.nan, math.nan, math.nan, n, "t")
    se = sd / math.sqrt(n)
    t = float(_st.t.ppf(0.5 + confidence / 2, n - 1))
    return Interval(mean, mean - t * se, mean + t * se, se, n, "t")


def mean_test(x_mean: float, x_sd: float, x_n: float, y_mean: float, y_sd: float, y_n: float,
              confidence: float = 0.95) -> TestResult:  # fmt: skip
    """Two means: Welch's t-test from summary statistics (unequal variances)."""
    if x_n < 2 or y_n < 2:
        raise Invalid("Welch's t-test needs at least two observations in each sample")
    vx, vy = x_sd * x_sd / x_n, y_sd * y_sd / y_n
    se = math.sqrt(vx + vy)
    delta = x_mean - y_mean
    if se == 0:
        return TestResult(delta, 0.0, delta, delta, 0.0 if delta else 1.0, "welch-t")
    df = (vx + vy) ** 2 / (vx * vx / (x_n - 1) + vy * vy / (y_n - 1))
    t = float(_st.t.ppf(0.5 + confidence / 2, df))
    p = float(2 * _st.t.sf(abs(delta / se), df))
    return TestResult(delta, se, delta - t * se, delta + t * se, p, "welch-t")


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (family-wise error), in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i], reverse=True)
    adjusted = [0.0] * m
    running = 1.0
    for k, i in enumerate(order):
        rank = m - k
        running = min(running, p_values[i] * m / rank)
        adjusted[i] = min(1.0, running)
    return adjusted


def poststrat_weights(sample_counts: Mapping[str, float],
                      population_shares: Mapping[str, float]) -> dict[str, float]:  # fmt: skip
    """Per-stratum shares W_h to weight a sample to known population shares.

    Strata missing from the sample drop out and the remaining shares are renormalised;
    strata in the sample without a known share get weight 0 (they are reported, not guessed).
    """
    present = {h: s for h, s in population_shares.items() if sample_counts.get(h, 0) > 0}
    total = sum(present.values())
    if total <= 0:
        return {}
    return {h: s / total for h, s in present.items()}


def effective_n(weights: Mapping[str, float], counts: Mapping[str, float]) -> float:
    """Kish effective sample size of a post-stratified sample: 1 / sum(W_h^2 / n_h)."""
    denom = sum(w * w / counts[h] for h, w in weights.items() if counts.get(h, 0) > 0)
    return 1 / denom if denom > 0 else 0.0


def weighted_interval(
    estimates: Mapping[str, float],
    variances: Mapping[str, float],
    counts: Mapping[str, float],
    weights: Mapping[str, float],
    confidence: float = 0.95,
    method: str = "poststratified",
) -> Interval:
    """Post-stratified estimate sum(W_h * est_h) with variance sum(W_h^2 * var_h / n_h)."""
    value = sum(w * estimates[h] for h, w in weights.items())
    var = sum(w * w * variances[h] / counts[h] for h, w in weights.items())
    se = math.sqrt(max(var, 0.0))
    z = _z(confidence)
    return Interval(value, value - z * se, value + z * se, se, effective_n(weights, counts),
                    method)  # fmt: skip


def ratio_interval(sum_x: float, sum_y: float, sum_xx: float, sum_yy: float, sum_xy: float,
                   n: float, confidence: float = 0.95) -> Interval:  # fmt: skip
    """A ratio of sums R = sum(x) / sum(y) over n units, with its linearisation interval.

    The variance is the ratio estimator's first-order (Taylor) one, Cochran, *Sampling
    Techniques* (1977), eq. 6.9 without the finite-population correction:
    var(R) = sum((x - R y)^2) / ((n - 1) n ybar^2), from the sums of x, y, x^2, y^2 and xy.
    """
    if n <= 0 or sum_y == 0:
        raise Invalid("a ratio needs at least one unit with a non-zero base")
    r = sum_x / sum_y
    if n < 2:
        return Interval(r, float("nan"), float("nan"), float("nan"), n, "ratio-linearised")
    resid = max(sum_xx - 2 * r * sum_xy + r * r * sum_yy, 0.0)
    ybar = sum_y / n
    se = math.sqrt(resid / ((n - 1) * n)) / abs(ybar)
    z = _z(confidence)
    return Interval(r, r - z * se, r + z * se, se, n, "ratio-linearised")


def ratio_test(x: Interval, y: Interval, confidence: float = 0.95) -> TestResult:
    """Two independent ratios (from ``ratio_interval``): difference x - y and its z-test."""
    delta = x.value - y.value
    se = math.sqrt(x.se**2 + y.se**2)
    z = _z(confidence)
    p = _p_two_sided(delta / se) if se > 0 else float("nan")
    return TestResult(delta, se, delta - z * se, delta + z * se, p, "ratio-z")

"""Statistics on aggregated metric results: intervals, two-sample tests, corrections, weights.

Every function here works on counts and summary statistics (never on raw rows), so the same
code serves DuckDB, PostgreSQL and Spark results. NPS is on [-1, 1] here; the metrics layer
reports it in points (x100).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
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
    return _z_of(confidence)


@functools.lru_cache(maxsize=64)
def _z_of(confidence: float) -> float:
    # scipy's ppf costs about half a millisecond a call, and every slice asks for the same z.
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


def bound(value: float, low: float, high: float, lo: float | None,
          hi: float | None) -> tuple[float, float]:  # fmt: skip
    """``(low, high)`` kept inside the range [lo, hi] (None: open on that side) and widened,
    where needed, to reach the point estimate ``value``.

    The adjusted methods centre the interval on a shrunken estimate; with one or two answers
    that centre can sit so far from the observed value that the interval misses it. Every
    interval cxm reports goes through here, so no bound leaves its metric's scale.
    """
    if lo is not None:
        low, high = max(low, lo), max(high, lo)
    if hi is not None:
        low, high = min(low, hi), min(high, hi)
    return min(low, value), max(high, value)


def nps_interval(
    promoters: float,
    passives: float,
    detractors: float,
    confidence: float = 0.95,
    method: str = "adjusted_wald",
    *,
    clip: bool = True,
) -> Interval:
    """NPS on [-1, 1] with its interval from the per-response variance of the trinomial.

    ``adjusted_wald`` (the default) is the adjusted Wald interval of Rocks, "Interval estimation
    for the net promoter score", The American Statistician 70(4), 2016: add 0.75 detractors,
    1.5 passives and 0.75 promoters, then the Wald interval; it is never zero-width and keeps
    its coverage near -1 and 1. ``wald`` is the plain normal approximation. The value is the
    observed NPS. With ``clip`` (the default) the interval is kept inside [-1, 1] and contains
    the value (``bound``); ``clip=False`` gives the textbook bounds, which can pass 1.
    """
    p, a, d = _nps_counts(promoters, passives, detractors, method)
    n = p + a + d
    nps = nps_score(p, a, d)
    se = math.sqrt(max(nps_variance(p, a, d), 0.0) / n)
    z = _z(confidence)
    # The point estimate is the observed NPS; the adjusted method only moves the interval.
    value = nps_score(promoters, passives, detractors)
    low, high = nps - z * se, nps + z * se
    if clip:
        low, high = bound(value, low, high, -1.0, 1.0)
    return Interval(value, low, high, se, promoters + passives + detractors,
                    "nps-" + method.replace("_", "-"))  # fmt: skip


Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]


def nps_intervals(promoters: Sequence[int], passives: Sequence[int], detractors: Sequence[int],
                  confidence: float = 0.95) -> Arrays:  # fmt: skip
    """``nps_interval`` (adjusted Wald, clipped) of many rows at once: the values, lows and
    highs on [-1, 1], each equal to the one-row function's to the last bit (the same
    operations in the same order, on float64). Counts must be whole and below 2**53."""
    pr, pa, de = (np.asarray(c, dtype=np.float64) for c in (promoters, passives, detractors))
    p, a, d = pr + _ADJUST[2], pa + _ADJUST[1], de + _ADJUST[0]
    n = p + a + d
    if not (n > 0).all():
        raise Invalid("NPS needs at least one response")
    nps = (p - d) / n
    var = (p + d) / n - nps * nps
    se = np.sqrt(np.maximum(var, 0.0) / n)
    z = _z(confidence)
    value = (pr - de) / (pr + pa + de)
    low, high = _bounds(value, nps - z * se, nps + z * se, -1.0, 1.0)
    return value, low, high


def _bounds(value: np.ndarray, low: np.ndarray, high: np.ndarray, lo: float,
            hi: float) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``bound`` of many rows at once (a closed range)."""
    low, high = np.maximum(low, lo), np.maximum(high, lo)
    low, high = np.minimum(low, hi), np.minimum(high, hi)
    return np.minimum(low, value), np.maximum(high, value)


def nps_test(
    x: tuple[float, float, float],
    y: tuple[float, float, float],
    confidence: float = 0.95,
    method: str = "adjusted_wald",
) -> TestResult:
    """Two independent NPS samples, each as (promoters, passives, detractors): z-test of x - y.

    ``delta`` is the observed difference on [-2, 2]; the interval and the p-value come from the
    (adjusted) counts as in Rocks (2016), so the interval is centred on the adjusted difference.
    The interval is kept inside [-2, 2] and contains ``delta``.
    """
    xp, xa, xd = _nps_counts(*x, method)
    yp, ya, yd = _nps_counts(*y, method)
    nx, ny = xp + xa + xd, yp + ya + yd
    centre = nps_score(xp, xa, xd) - nps_score(yp, ya, yd)
    delta = nps_score(*x) - nps_score(*y)
    se = math.sqrt(nps_variance(xp, xa, xd) / nx + nps_variance(yp, ya, yd) / ny)
    z = _z(confidence)
    p = _p_two_sided(centre / se) if se > 0 else (0.0 if centre else 1.0)
    low, high = bound(delta, centre - z * se, centre + z * se, -2.0, 2.0)
    return TestResult(delta, se, low, high, p, "nps-" + method.replace("_", "-") + "-z")


def wilson_interval(successes: float, n: float, confidence: float = 0.95) -> Interval:
    """A proportion with the Wilson score interval (Wilson, JASA 22, 1927).

    Always inside [0, 1], contains the observed share and is never zero-width for n >= 1.
    """
    if n <= 0:
        raise Invalid("a proportion needs at least one observation")
    if not 0 <= successes <= n:
        raise Invalid(f"successes ({successes}) must be between 0 and n ({n})")
    z = _z(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low, high = bound(p, centre - half, centre + half, 0.0, 1.0)
    return Interval(p, low, high, math.sqrt(p * (1 - p) / n), n, "wilson")


def wilson_intervals(successes: Sequence[int], n: Sequence[int],
                     confidence: float = 0.95) -> Arrays:  # fmt: skip
    """``wilson_interval`` of many rows at once: the shares, lows and highs, each equal to the
    one-row function's to the last bit. Counts must be whole and below 2**30 (so that
    4 n^2 fits in 64 bits)."""
    x, m = np.asarray(successes, dtype=np.int64), np.asarray(n, dtype=np.int64)
    if not (m > 0).all():
        raise Invalid("a proportion needs at least one observation")
    if not ((x >= 0) & (x <= m)).all():
        raise Invalid("successes must be between 0 and n")
    z = _z(confidence)
    p = x / m
    denom = 1 + z * z / m
    centre = (p + z * z / (2 * m)) / denom
    half = z * np.sqrt(p * (1 - p) / m + z * z / (4 * m * m)) / denom
    low, high = _bounds(p, centre - half, centre + half, 0.0, 1.0)
    return p, low, high


def proportion_test(x_successes: float, x_n: float, y_successes: float, y_n: float,
                    confidence: float = 0.95) -> TestResult:  # fmt: skip
    """Two proportions: pooled z-test for the p-value; the Agresti-Caffo interval for x - y
    (one success and one failure added to each sample; Agresti & Caffo, The American
    Statistician 54(4), 2000), kept inside [-1, 1] and containing the observed difference."""
    if x_n <= 0 or y_n <= 0:
        raise Invalid("both samples need at least one observation")
    px, py = x_successes / x_n, y_successes / y_n
    pooled = (x_successes + y_successes) / (x_n + y_n)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / x_n + 1 / y_n))
    ax_, ay_ = (x_successes + 1) / (x_n + 2), (y_successes + 1) / (y_n + 2)
    se = math.sqrt(ax_ * (1 - ax_) / (x_n + 2) + ay_ * (1 - ay_) / (y_n + 2))
    delta = px - py
    p = _p_two_sided(delta / se0) if se0 > 0 else (0.0 if delta else 1.0)
    z = _z(confidence)
    low, high = bound(delta, ax_ - ay_ - z * se, ax_ - ay_ + z * se, -1.0, 1.0)
    return TestResult(delta, se, low, high, p, "two-proportion-z")


@dataclass(frozen=True)
class Scale:
    """The range of a mean's answers; None on a side the metric leaves open."""

    min: float | None = None
    max: float | None = None

    @property
    def closed(self) -> bool:
        return self.min is not None and self.max is not None and self.max > self.min


def _augmented(mean: float, sd: float, n: float, scale: Scale,
               z: float) -> tuple[float, float, float]:  # fmt: skip
    """(n, mean, variance) of the sample plus z^2/2 pseudo-answers at each end of the scale."""
    assert scale.min is not None and scale.max is not None
    k = z * z / 2
    sd = 0.0 if sd is None or math.isnan(sd) else sd
    total = n * mean + k * (scale.min + scale.max)
    squares = (n - 1) * sd * sd + n * mean * mean + k * (scale.min**2 + scale.max**2)
    m = n + 2 * k
    centre = total / m
    return m, centre, max(squares / m - centre * centre, 0.0)


def adjusted_variance(kind: str, row: Mapping[str, float], confidence: float = 0.95,
                      scale: Scale | None = None) -> float:  # fmt: skip
    """Per-answer variance of one stratum under the adjusted method of its kind.

    ``kind`` "nps": row has promoters, passives, detractors (variance on the [-1, 1] scale,
    Rocks' pseudo-counts added); "proportion": x, n (Agresti-Coull: z^2/2 successes and
    failures added); "mean": mean, sd, n (pseudo-answers at the ends of a closed ``scale``,
    else the sample variance).
    """
    if kind == "nps":
        p, a, d = _nps_counts(row["promoters"], row["passives"], row["detractors"],
                              "adjusted_wald")  # fmt: skip
        return nps_variance(p, a, d)
    z = _z(confidence)
    if kind == "proportion":
        share = (row["x"] + z * z / 2) / (row["n"] + z * z)
        return share * (1 - share)
    scale = scale or Scale()
    if scale.closed:
        return _augmented(row["mean"], row["sd"], row["n"], scale, z)[2]
    sd = row["sd"]
    return 0.0 if sd is None or math.isnan(sd) else float(sd * sd)


def mean_interval(mean: float, sd: float, n: float, confidence: float = 0.95,
                  scale: Scale | None = None) -> Interval:  # fmt: skip
    """A mean with its interval, from summary statistics (mean, sample sd, n).

    On a closed scale (``scale`` with min and max, e.g. CSAT 1..5) the method is
    ``adjusted-mean``: z^2/2 pseudo-answers at each end of the scale, then the normal interval
    of the augmented sample's mean. On answers that are 0 or 1 this is exactly the
    Agresti-Coull interval (Agresti & Coull, The American Statistician 52(2), 1998), the
    adjustment Rocks (2016) carries to the NPS trinomial; it is never zero-width, even when
    every answer is the same. The result is kept inside the scale and contains the mean.
    Otherwise Student's t (``t``), kept inside a one-sided ``scale``; with fewer than two
    answers or no spread (sd 0) there is nothing to say about the spread and the bounds are
    NaN rather than a zero-width interval.
    """
    scale = scale or Scale()
    if scale.closed and n >= 1:
        z = _z(confidence)
        m, centre, var = _augmented(mean, sd, n, scale, z)
        se = math.sqrt(var / m)
        low, high = bound(mean, centre - z * se, centre + z * se, scale.min, scale.max)
        return Interval(mean, low, high, se, n, "adjusted-mean")
    if n < 2 or sd is None or math.isnan(sd) or sd <= 0:
        return Interval(mean, math.nan, math.nan, math.nan, n, "t")
    se = sd / math.sqrt(n)
    t = float(_st.t.ppf(0.5 + confidence / 2, n - 1))
    low, high = bound(mean, mean - t * se, mean + t * se, scale.min, scale.max)
    return Interval(mean, low, high, se, n, "t")


def mean_test(x_mean: float, x_sd: float, x_n: float, y_mean: float, y_sd: float, y_n: float,
              confidence: float = 0.95, scale: Scale | None = None) -> TestResult:  # fmt: skip
    """Two means: Welch's t-test from summary statistics (unequal variances).

    On a closed ``scale`` the interval of the difference uses the augmented samples of
    ``mean_interval`` (never zero-width) and stays inside [min - max, max - min]; the p-value
    is Welch's on the observed samples either way.
    """
    if x_n < 2 or y_n < 2:
        raise Invalid("Welch's t-test needs at least two observations in each sample")
    vx, vy = x_sd * x_sd / x_n, y_sd * y_sd / y_n
    se = math.sqrt(vx + vy)
    delta = x_mean - y_mean
    scale = scale or Scale()
    if se == 0:
        p = 0.0 if delta else 1.0
        low = high = delta
    else:
        df = (vx + vy) ** 2 / (vx * vx / (x_n - 1) + vy * vy / (y_n - 1))
        t = float(_st.t.ppf(0.5 + confidence / 2, df))
        p = float(2 * _st.t.sf(abs(delta / se), df))
        low, high = delta - t * se, delta + t * se
    if scale.closed:
        assert scale.min is not None and scale.max is not None
        z = _z(confidence)
        mx, cx, varx = _augmented(x_mean, x_sd, x_n, scale, z)
        my, cy, vary = _augmented(y_mean, y_sd, y_n, scale, z)
        se = math.sqrt(varx / mx + vary / my)
        width = scale.max - scale.min
        low, high = bound(delta, cx - cy - z * se, cx - cy + z * se, -width, width)
    return TestResult(delta, se, low, high, p, "welch-t")


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
    scale: Scale | None = None,
) -> Interval:
    """Post-stratified estimate sum(W_h * est_h) with variance sum(W_h^2 * var_h / n_h).

    Give per-stratum variances from an adjusted method (as ``adjusted_variance`` returns) so the
    interval is never zero-width; the interval is kept inside ``scale`` and contains the estimate.
    """
    value = sum(w * estimates[h] for h, w in weights.items())
    var = sum(w * w * variances[h] / counts[h] for h, w in weights.items())
    se = math.sqrt(max(var, 0.0))
    z = _z(confidence)
    scale = scale or Scale()
    if se == 0:  # no spread in any stratum: nothing to say, rather than a zero-width interval
        return Interval(value, math.nan, math.nan, se, effective_n(weights, counts), method)
    low, high = bound(value, value - z * se, value + z * se, scale.min, scale.max)
    return Interval(value, low, high, se, effective_n(weights, counts), method)


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

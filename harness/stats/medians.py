"""Per-cell statistics after Hoefler & Belli (SC'15): medians with nonparametric intervals,
spread, outliers. A cell's time gets the distribution-free order-statistic interval of its
median, with its exact coverage; ratios (speedups, comparisons) get percentile bootstraps with a
fixed seed, so a report re-renders to the same figures."""

from __future__ import annotations

import functools

import numpy as np
from scipy.special import bdtr  # scipy.stats would add ~0.5 s to every cell's child

SEED = 20151115
RESAMPLES = 2000
MIN_N_FOR_CI = 3
UNSTABLE_CV = 0.05
OUTLIER_Z = 3.5
# With 3 runs the MAD is the smaller of two gaps, so any lopsided triple scores |z| > 3.5:
# below this many runs outliers are not assessed (nan).
MIN_N_FOR_OUTLIERS = 5
NAN = float("nan")


def _clean(x: object) -> np.ndarray:
    values = np.asarray(x, dtype=float)
    return values[np.isfinite(values)]


def _rng(seed: int = SEED) -> np.random.Generator:
    return np.random.default_rng(seed)


def _resampled_medians(x: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    picks = rng.integers(0, len(x), size=(resamples, len(x)))
    return np.median(x[picks], axis=1)


def count(x: object) -> int:
    return len(_clean(x))


def median(x: object) -> float:
    values = _clean(x)
    return float(np.median(values)) if len(values) else NAN


def median_ci(
    x: object, level: float = 0.95, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median; (nan, nan) below MIN_N_FOR_CI samples.

    With few samples the interval cannot be wider than the range of the samples themselves.
    Every bootstrap of the project is this one or ratio_ci.
    """
    values = _clean(x)
    if len(values) < MIN_N_FOR_CI:
        return NAN, NAN
    boot = _resampled_medians(values, _rng(seed), resamples)
    return _percentiles(boot, level)


def median_interval(x: object, level: float = 0.95) -> tuple[float, float, float]:
    """The order-statistic interval of the median: (low, high, coverage).

    [x(k), x(n+1-k)] covers the true median of any continuous distribution of independent runs
    with probability exactly 1 - 2 P(Binomial(n, 1/2) <= k - 1); k is the largest index whose
    coverage is still at least `level`. No such interval exists below 6 runs (at 95%): then it is
    the runs' range with its own, lower coverage (75% with 3 runs). (nan, nan, nan) when empty.
    """
    values = np.sort(_clean(x))
    n = len(values)
    if n == 0:
        return NAN, NAN, NAN
    k = max(1, order_index(n, level))
    return float(values[k - 1]), float(values[n - k]), order_coverage(n, k)


@functools.cache
def order_coverage(n: int, k: int) -> float:
    """Coverage of [x(k), x(n+1-k)] for the median of n independent continuous samples."""
    return float(1 - 2 * bdtr(k - 1, n, 0.5))


@functools.cache
def order_index(n: int, level: float) -> int:
    """The largest k with coverage >= level, or 0 when even the range falls short."""
    k = 0
    while k + 1 <= (n + 1) // 2 and order_coverage(n, k + 1) >= level:
        k += 1
    return k


def min_runs_for(level: float = 0.95) -> int:
    """The fewest runs whose range covers the median with at least `level` (6 at 95%)."""
    n = 1
    while order_coverage(n, 1) < level:
        n += 1
    return n


def half_width(x: object, level: float = 0.95) -> float:
    """(high - low) / (2 median) of the median's interval: the relative precision of a cell."""
    low, high, _ = median_interval(x, level)
    mid = median(x)
    return (high - low) / (2 * mid) if mid > 0 else NAN


def ratio_ci(
    numerator: object, denominator: object, level: float = 0.95, resamples: int = RESAMPLES
) -> tuple[float, float]:
    """Interval of median(numerator) / median(denominator), resampling both samples independently.

    Speedup is ratio_ci(baseline runs, cell runs); a B/A comparison is ratio_ci(b, a).
    """
    num, den = _clean(numerator), _clean(denominator)
    if len(num) < MIN_N_FOR_CI or len(den) < MIN_N_FOR_CI:
        return NAN, NAN
    rng = _rng()
    ratios = _resampled_medians(num, rng, resamples) / _resampled_medians(den, rng, resamples)
    return _percentiles(ratios, level)


def _percentiles(boot: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return float(low), float(high)


def cv(x: object) -> float:
    """Coefficient of variation, std (ddof=1) / mean; nan below two samples."""
    values = _clean(x)
    if len(values) < 2 or values.mean() == 0:
        return NAN
    return float(values.std(ddof=1) / values.mean())


def modified_z(x: object) -> np.ndarray:
    """0.6745 (x - median) / MAD (Iglewicz & Hoaglin). When MAD is 0 (more than half the samples
    equal), fall back to the mean absolute deviation, scaled to match for normal data."""
    values = _clean(x)
    if len(values) == 0:
        return values
    deviation = values - np.median(values)
    mad = np.median(np.abs(deviation))
    if mad > 0:
        return 0.6745 * deviation / mad
    mean_ad = np.mean(np.abs(deviation))
    if mean_ad == 0:
        return np.zeros_like(values)
    return deviation / (1.253314 * mean_ad)


def n_outliers(x: object, threshold: float = OUTLIER_Z, min_n: int = MIN_N_FOR_OUTLIERS) -> float:
    """Samples with |modified z| > threshold; nan below min_n samples (not assessed)."""
    values = _clean(x)
    if len(values) < min_n:
        return NAN
    return float(np.sum(np.abs(modified_z(values)) > threshold))


def summary(x: object) -> dict[str, float]:
    """The figures one cell's ok wall times get in the tables."""
    low, high, coverage = median_interval(x)
    spread = cv(x)
    return {
        "time_s": median(x),
        "ci_low": low,
        "ci_high": high,
        "ci_level": coverage,
        "half_width": half_width(x),
        "cv": spread,
        "unstable": bool(spread > UNSTABLE_CV),
        "n_outliers": n_outliers(x),
    }

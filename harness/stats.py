"""Per-cell statistics after Hoefler & Belli (SC'15): medians with nonparametric intervals,
spread, outliers. Bootstraps use a fixed seed so a report re-renders to the same figures."""

from __future__ import annotations

import numpy as np

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
    low, high = median_ci(x)
    spread = cv(x)
    return {
        "time_s": median(x),
        "ci_low": low,
        "ci_high": high,
        "cv": spread,
        "unstable": bool(spread > UNSTABLE_CV),
        "n_outliers": n_outliers(x),
    }

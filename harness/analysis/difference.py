"""The difference test behind `compare`: does B's estimate of a quantity (a cell's speedup, or
its time) differ from A's by more than their intervals and the sessions allow?

An estimate comes with an interval of known coverage; its standard error on the log scale is
the log interval's width / 2z, z the normal quantile of that coverage (a Wilcoxon interval from
3 rounds covers 75%, z = 1.15; from 6 rounds on 95% or more). With d = log(B / A):

    se(d) = sqrt(se_ratio^2 + k sd_between^2),  se_ratio^2 = se_A^2 + se_B^2

k = 2 when A and B are two sessions (each an independent draw of the session level), and 0 for
two estimates from the same rounds, whose ratio has an interval of its own (an A/B run folder).
B differs when |d| > z95 se(d); B / A's interval is exp(d +- z95 se(d)); the resolution,
exp(z95 se(d)) - 1, is the smallest change the test can flag. Every function takes plain
numbers, so two sessions and an A/B run folder share it.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from harness.stats.pairing import LEVEL

Z = float(norm.ppf(0.5 + LEVEL / 2))
NAN = float("nan")
COLUMNS = ["ratio", "ratio_low", "ratio_high", "log_se", "resolution", "flagged"]


def log_se(centre: float, low: float, high: float, coverage: float = LEVEL) -> float:
    """The standard error of log(centre) from its interval and the interval's coverage."""
    valid = centre > 0 and low > 0 and high > 0 and 0 < coverage < 1
    if not valid:
        return NAN
    return float(np.log(high / low) / (2 * norm.ppf(0.5 + coverage / 2)))


def of_ratio(ratio: float, se_ratio: float, between_sd: float, apart: bool = True) -> dict:
    """The test's row for B / A = `ratio` whose log has standard error `se_ratio` within the
    sessions; `apart`: A and B are separate sessions, each moved by `between_sd`."""
    extra = 2 * between_sd**2 if apart and np.isfinite(between_sd) else 0.0
    se = float(np.sqrt(se_ratio**2 + extra))
    if not (ratio > 0 and np.isfinite(se)):
        return dict(zip(COLUMNS, [NAN] * 5 + [False], strict=True))
    d = float(np.log(ratio))
    return {
        "ratio": ratio,
        "ratio_low": float(np.exp(d - Z * se)),
        "ratio_high": float(np.exp(d + Z * se)),
        "log_se": se,
        "resolution": float(np.exp(Z * se) - 1),
        "flagged": bool(abs(d) > Z * se),
    }


def of_estimates(a: tuple, b: tuple, between_sd: float) -> dict:
    """The test's row for two sessions' estimates, each (centre, low, high, coverage)."""
    se_a, se_b = log_se(*a), log_se(*b)
    ratio = b[0] / a[0] if a[0] > 0 else NAN
    return of_ratio(ratio, float(np.hypot(se_a, se_b)), between_sd)


def pair_level(d: np.ndarray, se_ratio: np.ndarray) -> float:
    """The between-session sd from two sessions alone, when no others tell: the cells' log
    differences spread beyond their own standard errors, by medians (a change in fewer than half
    the cells does not move it): median(d^2) / 0.455 (the median of a chi-square of one degree)
    less median(se^2), halved, as each session carries the level. nan from fewer than 4 cells."""
    keep = np.isfinite(d) & np.isfinite(se_ratio)
    if keep.sum() < 4:
        return NAN
    spread = np.median(d[keep] ** 2) / 0.4549 - np.median(se_ratio[keep] ** 2)
    return float(np.sqrt(max(0.0, spread) / 2))


def percent(value: float) -> str:
    """A share as a percentage: whole numbers from 10% on, one decimal below."""
    return f"{value:.0%}" if abs(value) >= 0.095 else f"{value:.1%}"


def direction(ratio: float) -> str:
    """B / A of a speed (a speedup, or A's time over B's) in words: "23% slower"."""
    return f"{percent(1 - ratio)} slower" if ratio < 1 else f"{percent(ratio - 1)} faster"


def change(ratio: float, low: float, high: float) -> str:
    """direction() with the interval of the change: "23% slower [19%, 27%]"."""
    if ratio < 1:
        return f"{direction(ratio)} [{percent(1 - high)}, {percent(1 - low)}]"
    return f"{direction(ratio)} [{percent(low - 1)}, {percent(high - 1)}]"

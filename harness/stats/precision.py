"""When a cell has been measured enough: the stop rule of `repeats: {min, max, ci}`.

A cell records runs until the order-statistic 95% interval of its median (harness.stats) has a
half-width of at most `ci` of the median, or it has `max` runs. The interval exists from 6 runs,
so a cell at W <= usable cores records at least 6. Two more ways to stop:
- time-slicing: a cell with more busy processes than usable cores measures the OS scheduler, so
  it stops at `min`;
- futile: from 6 runs on, when no run count up to `max` is expected to reach `ci`, the cell
  stops and says so. The width at `max` is projected twice, with normal order statistics: from
  the interval now, and from a robust sigma (the MAD of the log times); only when both stay above
  `ci` (with 25% slack) is the cell futile. From 6 to 8 runs the interval is still the range,
  which one slow run widens; the MAD barely moves (`beyond_reach`).
Stopping when an interval happens to be narrow biases its coverage down; `coverage()` measures
that by simulation, and the report states the result (above 95% for the shipped targets).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import ndtri  # the normal quantile; scipy.stats is slow to import

from harness.stats import medians

LEVEL = 0.95
FUTILITY_SLACK = 1.25
MAD_SIGMA = 1.4826  # a normal sample's sigma per median absolute deviation
PLANNING_TRIALS = 2000  # simulated cells behind a planned run count: +-0.05 runs
# Why a cell stopped; "" while it still wants runs.
TARGET, MAX, SLICING, FUTILE = "target", "max", "time-slicing", "futile"
BUDGET, SPEND = "budget", "spend"  # a limit cut the cell: --budget, or the machine-time cap
ROBUST, INTERVAL = "robust", "interval"  # the futility rule: beyond_reach


@dataclass(frozen=True)
class Target:
    """`repeats: N` is Target(N, N, None): a fixed count, as before precision targets.
    `planning_cv` only plans: the run-to-run CV earlier runs showed (harness.plan.history), from
    which the estimate expects a cell's run count; the stop rule never reads it. `spend` caps
    the sweep, not a cell: run-equivalents per cell (harness.plan.limits.Spend)."""

    min: int
    max: int
    ci: float | None = None
    planning_cv: float | None = None
    spend: float | None = None
    futile_after: int = 8  # rounds before a paired ratio may stop as futile (harness.stats.pairing)
    futility: str = ROBUST  # or INTERVAL: the projection from the interval alone (beyond_reach)

    @property
    def fixed(self) -> bool:
        return self.ci is None


def stop_reason(walls: object, target: Target, slicing: bool) -> str:
    """Why a cell whose ok runs gave these wall times needs no more ("" if it does). A run that
    failed takes up a repeat number without adding a wall time, so a cell's child never
    records more than `max` runs (ok or not)."""
    n = medians.count(walls)
    return decide(
        n, n, target, slicing, lambda: reached(walls, target.ci), lambda: futile(walls, target)
    )


def decide(
    n: int,
    done: int,
    target: Target,
    slicing: bool,
    reached: Callable[[], bool],
    futile: Callable[[], bool],
) -> str:
    """The stop rule's order, whatever it judges (a time here, a ratio in stats.pairing): `n`
    ok values, `done` tries of the `max`; reached and futile are asked only when they matter."""
    aiming = target.ci is not None and not slicing and n >= target.min
    if aiming and reached():  # also at max: the last run may reach it
        return TARGET
    if done >= target.max:
        return MAX
    if n < target.min or target.ci is None:
        return ""
    if slicing:
        return SLICING
    if futile():
        return FUTILE
    return ""


def reached(walls: object, ci: float) -> bool:
    _, _, coverage = medians.median_interval(walls, LEVEL)
    return coverage >= LEVEL and medians.half_width(walls, LEVEL) <= ci


def futile(walls: object, target: Target) -> bool:
    """From the first n with an interval: is every run count up to max expected to stay above
    ci (with FUTILITY_SLACK)?"""
    n = medians.count(walls)
    if target.ci is None or n < medians.min_runs_for(LEVEL) or n >= target.max:
        return False
    best = min(_spread(m) for m in range(n + 1, target.max + 1))
    own = medians.half_width(walls, LEVEL) * best / _spread(n)
    return beyond_reach(own, robust_sigma(walls) * best / 2, target)


def robust_sigma(values: object) -> float:
    """The spread of log(values) as a normal sigma, from their median absolute deviation: one
    slow run (or round) barely moves it, where it widens a small sample's interval a lot."""
    x = np.asarray(values, dtype=float)
    logs = np.log(x[np.isfinite(x) & (x > 0)])
    if len(logs) == 0:
        return float("nan")
    return MAD_SIGMA * float(np.median(np.abs(logs - np.median(logs))))


def beyond_reach(own: float, robust: float, target: Target) -> bool:
    """The futility rule: the half-width at `max` projected from the interval now (`own`) and
    from the robust sigma (`robust`) both stay above ci, with FUTILITY_SLACK. The robust one
    alone would call two clusters of runs hopeless that the interval shows are not. Under
    `futility: interval` (older run folders, replayed as measured) the interval's alone."""
    projected = own if target.futility == INTERVAL else min(own, robust)
    return projected > FUTILITY_SLACK * target.ci


def _spread(n: int) -> float:
    """Expected width of the order-statistic interval of n normal samples, in sigmas (Blom)."""
    k = max(1, medians.order_index(n, LEVEL))
    p = (k - 0.375) / (n + 0.25)
    return float(ndtri(1 - p) - ndtri(p))


def expected_runs(target: Target, slicing: bool) -> float:
    """Runs a cell is planned at: min for a fixed count or a time-slicing cell; else, with a
    planning_cv, the mean run count of the stop rule simulated at that CV; without one, the
    first n with an interval (a stable cell stops there; a noisy one goes on to max or stops
    futile)."""
    if target.fixed or slicing:
        return target.min
    if target.planning_cv:
        return _mean_runs(target.min, target.max, target.ci, round(target.planning_cv, 3))
    return min(target.max, max(target.min, medians.min_runs_for(LEVEL)))


@lru_cache(maxsize=32)
def _mean_runs(low: int, high: int, ci: float, cv: float) -> float:
    """Log-normal runs at this CV under the stop rule (a fixed seed: the same plan each time)."""
    return round(coverage(Target(low, high, ci), cv, trials=PLANNING_TRIALS)["mean_runs"], 1)


def coverage(target: Target, sigma: float, trials: int = 4000, seed: int = 1) -> dict[str, float]:
    """Simulated runs, log-normal with this sigma, under the stop rule: how often the final
    interval holds the true median, how often ci was reached, and the mean number of runs."""
    rng = np.random.default_rng(seed)
    covered = hit = runs = 0
    for _ in range(trials):
        walls = np.exp(rng.normal(0.0, sigma, target.max))
        n = target.min
        while not stop_reason(walls[:n], target, False):
            n += 1
        low, high, _ = medians.median_interval(walls[:n], LEVEL)
        covered += low <= 1.0 <= high
        hit += reached(walls[:n], target.ci) if target.ci else 0
        runs += n
    return {"coverage": covered / trials, "reached": hit / trials, "mean_runs": runs / trials}

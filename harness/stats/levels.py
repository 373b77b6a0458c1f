"""Where a cell's variance lives (Kalibera & Jones's dimensioning experiment): the run-to-run
variance of its times split into three levels, on the log scale so each reads as a relative
standard deviation:

- within a process: repeats in one child (the pooled variance of each process's runs);
- over time: what a straight line through the processes' means, against their start times,
  explains (the drift across the experiment);
- between processes: the rest of the variance of the processes' means, less the share the
  within-process variance puts there (var(means) = between + within / runs).

Where the variance lives sets how to measure: a level that carries it must be repeated. With a
process costing `process_s` (start and warm-up) and a run `run_s`, the runs per process that
minimise the variance of the grand mean at a given cost are sqrt((process_s / run_s) x
(within / between)) (Kalibera & Jones, ISMM 2013), one when the between-process variance
dominates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Levels:
    """Relative standard deviations at each level, from `processes` processes of `runs` runs."""

    within: float
    between: float
    drift: float
    processes: int
    runs: int

    def runs_per_process(self, process_s: float, run_s: float, most: int = 20) -> int:
        """The cost-optimal runs per process, between 1 and `most`."""
        if self.between <= 0:
            return most
        best = math.sqrt(max(process_s, 0.0) / run_s * self.within**2 / self.between**2)
        return int(min(most, max(1, round(best))))


def levels(times: list[list[float]], starts: list[float]) -> Levels:
    """The three levels from each process's run times (seconds, in process order) and the
    processes' start times (seconds, any origin). Needs two processes of two runs or more."""
    logs = [np.log(np.asarray(t, dtype=float)) for t in times]
    logs = [t[np.isfinite(t)] for t in logs]
    keep = [i for i, t in enumerate(logs) if len(t) >= 2]
    if len(keep) < 2:
        raise ValueError("levels need two processes of two runs or more")
    logs = [logs[i] for i in keep]
    at = np.asarray([starts[i] for i in keep], dtype=float)
    within = float(np.mean([np.var(t, ddof=1) for t in logs]))
    runs = float(np.mean([len(t) for t in logs]))
    means = np.asarray([t.mean() for t in logs])
    drift, rest = _trend(at, means)
    between = max(0.0, rest - within / runs)
    return Levels(
        within=math.sqrt(within),
        between=math.sqrt(between),
        drift=math.sqrt(drift),
        processes=len(logs),
        runs=round(runs),
    )


def _trend(at: np.ndarray, means: np.ndarray) -> tuple[float, float]:
    """(variance of a least-squares line through the means, variance of what it leaves)."""
    if len(means) < 3 or np.ptp(at) == 0:
        return 0.0, float(np.var(means, ddof=1))
    slope, intercept = np.polyfit(at, means, 1)
    fitted = slope * at + intercept
    return float(np.var(fitted, ddof=1)), float(np.var(means - fitted, ddof=2))

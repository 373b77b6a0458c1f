"""Ratios from paired rounds (`order: rounds`): each cell's run is divided by its saving mode's
baseline as it stood at that moment, and the ratios of the rounds give the centre and the
interval.

The baseline is visited at the start of every round of a group (and every `baseline_every`
cells), the next round's visit closing it (harness/plan/rounds.py); a run's baseline is the
saving mode's two ok visits that bracket it in time, interpolated linearly at the run's midpoint,
so a drift that is linear between two visits cancels. A failed visit is passed over for the
nearest ok ones; a run that failed, or a saving mode without an ok visit, gives no ratio (nan).

The centre of a cell's per-round ratios is the Hodges-Lehmann estimate of their log (the median
of the Walsh averages), exponentiated; the interval is the matching Wilcoxon signed-rank
interval, distribution-free for a symmetric spread of log-ratios, exact in coverage. It exists at
95% from 6 rounds; below that it is the range of the Walsh averages with its own, lower coverage
(as `harness.stats.median_interval` does for times). Rounds are the unit resampled, never the
runs inside one process.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from scipy.special import ndtri

from harness.schema import BASELINE
from harness.stats.precision import LEVEL, Target, beyond_reach, decide, robust_sigma

NAN = float("nan")
# The Wilcoxon interval's half-width at n rounds of normal log-ratios, in sigma / sqrt(n): the
# normal quantile over the Hodges-Lehmann estimate's efficiency, sqrt(3 / pi).
HL_HALF_WIDTH = float(ndtri(1 - (1 - LEVEL) / 2)) * np.sqrt(np.pi / 3)


@functools.cache
def signed_rank_cdf(n: int) -> np.ndarray:
    """P(T <= t), t = 0 .. n(n+1)/2, of the Wilcoxon signed-rank statistic of n values under
    the null (each rank's sign a fair coin), by the exact recursion over ranks."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    for rank in range(1, n + 1):
        shifted = np.zeros_like(counts)
        shifted[rank:] = counts[:-rank]
        counts = (counts + shifted) / 2
    return np.cumsum(counts)


def _walsh(x: np.ndarray) -> np.ndarray:
    i, j = np.triu_indices(len(x))
    return np.sort((x[i] + x[j]) / 2)


def hl_interval(x: object, level: float = LEVEL) -> tuple[float, float, float, float]:
    """(centre, low, high, coverage) of the Hodges-Lehmann estimate of x's centre with the
    Wilcoxon signed-rank interval [W(k), W(M+1-k)] of the M Walsh averages; k is the largest
    index whose coverage 1 - 2 P(T <= k-1) is still at least `level`, or 1 (the range of the
    Walsh averages, with its lower coverage) when none is. nans when x is empty."""
    values = np.asarray(x, dtype=float)
    values = values[np.isfinite(values)]
    n = len(values)
    if n == 0:
        return NAN, NAN, NAN, NAN
    walsh = _walsh(values)
    cdf = signed_rank_cdf(n)
    coverage = 1 - 2 * cdf[: (len(walsh) + 1) // 2]  # coverage of k = 1, 2, ...
    k = max(1, int(np.sum(coverage >= level)))
    return (
        float(np.median(walsh)),
        float(walsh[k - 1]),
        float(walsh[len(walsh) - k]),
        float(coverage[k - 1]),
    )


def signed_rank_p(x: object) -> float:
    """Two-sided exact p of the Wilcoxon signed-rank test that x is centred on 0 (zeros
    dropped, tied ranks averaged, which keeps the exact null only approximately)."""
    values = np.asarray(x, dtype=float)
    values = values[np.isfinite(values) & (values != 0)]
    n = len(values)
    if n == 0:
        return 1.0
    ranks = pd.Series(np.abs(values)).rank().to_numpy()
    t = min(ranks[values > 0].sum(), ranks[values < 0].sum())
    return float(min(1.0, 2 * signed_rank_cdf(n)[int(np.floor(t))]))


def ratio_interval(ratios: object, level: float = LEVEL) -> tuple[float, float, float, float]:
    """(centre, low, high, coverage) of positive per-round ratios, on the log scale."""
    values = np.asarray(ratios, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    centre, low, high, coverage = hl_interval(np.log(values), level)
    return float(np.exp(centre)), float(np.exp(low)), float(np.exp(high)), coverage


def ratio_half_width(ratios: object, level: float = LEVEL) -> float:
    """(high - low) / (2 centre) of the ratio's interval: the precision a user reads."""
    centre, low, high, _ = ratio_interval(ratios, level)
    return (high - low) / (2 * centre) if centre > 0 else NAN


def ratio_stop_reason(ratios: object, rounds: int, target: Target, slicing: bool) -> str:
    """Why a cell needs no more rounds, from its per-round ratios after `rounds` rounds ("" while
    it does). The stop rule of harness.stats.precision, applied to the ratio instead of the time."""
    values = np.asarray(ratios, dtype=float)
    n = int(np.sum(np.isfinite(values)))

    def futile() -> bool:  # even at max rounds, the width shrinking as 1/sqrt(n) stays too wide
        if n < target.futile_after:
            return False
        own = ratio_half_width(values) * np.sqrt(n / target.max)
        robust = robust_sigma(values) * HL_HALF_WIDTH / np.sqrt(target.max)
        return beyond_reach(own, robust, target)

    return decide(n, rounds, target, slicing, lambda: _reached(values, target.ci), futile)


def _reached(ratios: np.ndarray, ci: float) -> bool:
    _, _, _, coverage = ratio_interval(ratios)
    return coverage >= LEVEL and ratio_half_width(ratios) <= ci


def unpaired_interval(
    numerator: object, denominator: object, level: float = LEVEL
) -> tuple[float, float, float]:
    """(centre, low, high) of numerator / denominator for two independent samples, the same
    runs taken as if unpaired: the two-sample Hodges-Lehmann shift of their logs with the
    Mann-Whitney interval (normal approximation of its rank), for comparing with the paired one."""
    num, den = (np.log(np.asarray(v, dtype=float)) for v in (numerator, denominator))
    num, den = num[np.isfinite(num)], den[np.isfinite(den)]
    m, n = len(num), len(den)
    if m == 0 or n == 0:
        return NAN, NAN, NAN
    diffs = np.sort(np.subtract.outer(num, den).ravel())
    z = float(ndtri(1 - (1 - level) / 2))
    k = int(np.floor(m * n / 2 - z * np.sqrt(m * n * (m + n + 1) / 12)))
    k = min(max(k, 1), len(diffs))
    centre = float(np.exp(np.median(diffs)))
    return centre, float(np.exp(diffs[k - 1])), float(np.exp(diffs[len(diffs) - k]))


def midpoints(runs: pd.DataFrame) -> pd.Series:
    """Seconds since the epoch at the middle of each run's timed call."""
    start = pd.to_datetime(runs["started_at"], utc=True, errors="coerce")
    seconds = (start - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return seconds + runs["wall_s"].fillna(0) / 2


def rounds_run(runs: pd.DataFrame) -> int:
    """How many rounds ran cells: the visit that closes the last round is not a round."""
    if "round" not in runs:
        return 0
    rounds = runs.loc[~runs["strategy"].eq(BASELINE), "round"].dropna()
    return int(rounds.max()) + 1 if len(rounds) else 0


def round_ratios(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per non-baseline run of a paired run: cell_id, round, saving, its wall_s, the
    baseline interpolated at its midpoint (`base_s`) between the saving mode's ok visits before
    and after it (a round's opening visit and the next one's), and `ratio` = base_s / wall_s
    (nan when the run failed or its saving mode has no ok visit). Runs without a round are left
    out."""
    columns = ["cell_id", "round", "saving", "wall_s", "base_s", "ratio"]
    if "round" not in runs or runs["round"].isna().all():
        return pd.DataFrame(columns=columns)
    frame = runs[runs["round"].notna()].assign(mid=midpoints(runs))
    ok = frame["status"].eq("ok") & frame["wall_s"].notna()
    out = []
    for saving, group in frame.groupby("saving", sort=True):
        base = group[group["strategy"].eq(BASELINE) & ok.loc[group.index]].sort_values("mid")
        cells = group[~group["strategy"].eq(BASELINE)]
        base_s = _bracketed(base["mid"].to_numpy(), base["wall_s"].to_numpy(), cells["mid"])
        walls = cells["wall_s"].where(ok.loc[cells.index])
        out.append(cells[["cell_id", "round"]].assign(saving=saving, wall_s=walls, base_s=base_s))
    if not out:
        return pd.DataFrame(columns=columns)
    table = pd.concat(out, ignore_index=True).sort_values(["round", "saving"], kind="stable")
    table = table.reset_index(drop=True)
    table["ratio"] = table["base_s"] / table["wall_s"]
    return table[columns]


def _bracketed(times: np.ndarray, walls: np.ndarray, at: pd.Series) -> np.ndarray:
    """The baseline at each time in `at`: linear between the ok visits before and after it, the
    nearer visit's where it has only one side, nan without visits."""
    if len(times) == 0:
        return np.full(len(at), NAN)
    return np.interp(at.to_numpy(dtype=float), times, walls)


def cell_ratios(runs: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each cell's per-round ratios (nan for a round without a pair), in round order."""
    table = round_ratios(runs)
    return {
        cell: g.sort_values("round")["ratio"].to_numpy(dtype=float)
        for cell, g in table.groupby("cell_id", sort=False)
    }

"""Racing (F-race, Birattari et al., GECCO 2002; irace's defaults): which contender is fastest,
with runs spent only on those that may still win.

The rounds of paired rounds are the blocks: in each, every surviving contender ran once, so its
rank within the round is immune to a drift the whole round shares (and its time, divided by the
baseline interpolated between the round's visits, to a linear drift within the round). From
`first_test` complete blocks on, a Friedman test over the survivors' ranks; when it rejects,
each survivor is tested against the best (the lowest rank sum) by a one-sided Wilcoxon
signed-rank test on the per-round log-ratios, and those significantly slower by more than
half the `margin` are dropped. Half: a contender is dropped once it is shown slower than the
middle of the indifference zone, and tied once shown within its edge, so a gap near either end
is decided in about as many rounds. (Conover's rank-sum post-hoc, F-race's own, drops equal
contenders once one contender dominates every round: the variance of the ranks collapses.)

A race ends with one survivor (a winner); when every survivor is within `margin` of every
other (one-sided tests at `alpha` each way, i.e. two one-sided tests: a tie); when the
survivors with the fewest workers are each within `margin` of every survivor, so more workers
would buy no more than the margin (settled); or when the caller's budget ends it (undecided).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.pairing import ratio_interval, signed_rank_cdf

FIRST_TEST = 5
ALPHA = 0.05
MARGIN = 0.02
WINNER, TIE, SETTLED = "winner", "tie", "settled"


@dataclass(frozen=True)
class Drop:
    """A contender dropped: after how many rounds of its stage, how much slower than the best
    (T / T_best - 1, the Hodges-Lehmann centre over those rounds) and the test's p; or because
    its run failed."""

    contender: str
    rounds: int
    best: str
    slower: float
    p: float
    failed: str = ""  # why its run failed, for a contender dropped for that

    def line(self) -> str:
        if self.failed:
            return (
                f"{self.contender} dropped after {self.rounds} rounds, its run failed: "
                f"{self.failed}"
            )
        return (
            f"{self.contender} dropped after {self.rounds} rounds: {self.slower:+.1%} against "
            f"{self.best} (p = {self.p:.3f})"
        )


@dataclass(frozen=True)
class Verdict:
    survivors: list[str]
    best: str | None
    drops: list[Drop] = field(default_factory=list)
    ended: str = ""  # WINNER, TIE, SETTLED, or "" while the race goes on
    rounds: int = 0  # complete rounds judged


def blocks(times: pd.DataFrame, contenders: list[str]) -> pd.DataFrame:
    """Rounds x contenders of ok wall times (columns: contender, round, wall_s), only the rounds
    in which every contender has one."""
    wide = times.pivot_table(index="round", columns="contender", values="wall_s", aggfunc="first")
    wide = wide.reindex(columns=contenders)
    return wide.dropna()


def judge(
    wide: pd.DataFrame,
    first_test: int = FIRST_TEST,
    alpha: float = ALPHA,
    margin: float = MARGIN,
    workers: Mapping[str, int] | None = None,
) -> Verdict:
    """The race's verdict on the complete rounds of its survivors (blocks()); `workers` (each
    contender's W, all equal when absent) says which survivors would settle the answer."""
    survivors, n = list(wide.columns), len(wide)
    if len(survivors) <= 1:
        return Verdict(survivors, survivors[0] if survivors else None, [], WINNER, n)
    ranks = wide.rank(axis=1)
    best = str(ranks.sum().idxmin())
    if n < first_test:
        return Verdict(survivors, best, [], "", n)
    drops = _dropped(wide, ranks, best, alpha, margin)
    left = [s for s in survivors if s not in {d.contender for d in drops}]
    if len(left) == 1:
        return Verdict(left, best, drops, WINNER, n)
    return Verdict(left, best, drops, _ended(wide[left], margin, alpha, workers or {}), n)


def _ended(wide: pd.DataFrame, margin: float, alpha: float, workers: Mapping[str, int]) -> str:
    """TIE when every survivor is within the margin of every other; SETTLED when those with the
    fewest workers are (the answer then cannot change by more than the margin); else ""."""
    fewest = min(workers.get(c, 0) for c in wide.columns)
    answer = [c for c in wide.columns if workers.get(c, 0) == fewest]
    for a in answer:
        if not all(_within(wide[a] / wide[s], margin, alpha) for s in wide.columns if s != a):
            return ""
    return TIE if len(answer) == len(wide.columns) else SETTLED


def _dropped(
    wide: pd.DataFrame, ranks: pd.DataFrame, best: str, alpha: float, margin: float
) -> list[Drop]:
    """Those significantly slower than the best by more than half the margin: one-sided
    Wilcoxon signed-rank tests of each against the best on the per-round log-ratios less
    log(1 + margin / 2), once a Friedman test over all of them rejects (with two survivors, the
    Wilcoxon test alone). As in F-race the Friedman test is the only guard against many
    comparisons: a Holm correction over ten contenders would wait for 8 rounds before the first
    drop, and the shift keeps a contender within half the margin from being dropped by chance
    more often than alpha at each look."""
    others = [c for c in wide.columns if c != best]
    if len(others) > 1 and friedman_p(ranks) >= alpha:
        return []
    shift = np.log1p(margin / 2)
    p = {c: one_sided_p(np.log(wide[c] / wide[best]) - shift) for c in others}
    return [_drop(wide, c, best, p[c]) for c in others if p[c] < alpha]


def _drop(wide: pd.DataFrame, contender: str, best: str, p: float) -> Drop:
    centre = ratio_interval(wide[contender] / wide[best])[0]
    return Drop(contender, len(wide), best, centre - 1, p)


def friedman_p(ranks: pd.DataFrame) -> float:
    """The Friedman test's p (chi-square form, corrected for ties) on within-block ranks."""
    from scipy.stats import chi2  # lazy: scipy.stats costs half a second to import

    n, k = ranks.shape
    a = float((ranks.to_numpy() ** 2).sum())
    c = n * k * (k + 1) ** 2 / 4
    if a - c <= 0:
        return 1.0  # every block ranks alike only when all times tie
    sums = ranks.sum().to_numpy()
    statistic = (k - 1) * float(((sums - n * (k + 1) / 2) ** 2).sum()) / (a - c)
    return float(chi2.sf(statistic, k - 1))


def one_sided_p(log_ratios: object) -> float:
    """Exact p of the Wilcoxon signed-rank test that the log-ratios are centred above 0 (the
    contender slower than the best)."""
    values = np.asarray(log_ratios, dtype=float)
    values = values[np.isfinite(values) & (values != 0)]
    if len(values) == 0:
        return 1.0
    ranks = pd.Series(np.abs(values)).rank().to_numpy()
    below = ranks[values < 0].sum()  # small when nearly every round has the contender slower
    return float(signed_rank_cdf(len(values))[int(np.floor(below))])


def _within(ratios: pd.Series, margin: float, alpha: float) -> bool:
    """One one-sided test at `alpha`: T_a / T_s per round is below 1 + margin (a is at most the
    margin slower than s); the upper end of the 1 - 2 alpha interval."""
    _, _, high, coverage = ratio_interval(ratios, level=1 - 2 * alpha)
    return coverage >= 1 - 2 * alpha and high <= 1 + margin

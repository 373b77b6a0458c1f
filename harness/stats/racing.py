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
other (one-sided tests at `alpha` each way, i.e. two one-sided tests: a tie); when the answer
is settled (below); or when the caller's budget ends it (undecided).

The answer is the best-ranked survivor among those with the fewest workers. It is settled once
no survivor can be more than `margin` faster (a one-sided test at `alpha`: the indifference-zone
guarantee of ranking and selection) and each survivor with as few workers is tied with it. From
`settle_after` rounds of a stage on, the tie with survivors of as many workers is no longer
asked: a gap between half the margin and the margin needs more rounds to be either dropped or
tied than a 15-minute race holds (2.3% and 1.5% in two races on the 2-core VM), while the answer
is already safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.stats.pairing import ratio_interval, signed_rank_cdf

FIRST_TEST = 5
ALPHA = 0.05
MARGIN = 0.02
SETTLE_AFTER = 10
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
    answer: str | None = None  # once ended: the winner, or the tie's or settlement's answer


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
    settle_after: int | None = SETTLE_AFTER,
) -> Verdict:
    """The race's verdict on the complete rounds of its survivors (blocks()); `workers` (each
    contender's W, all equal when absent) says which survivor is the answer; `settle_after`
    None never settles on one of equal W without a tie."""
    survivors, n = list(wide.columns), len(wide)
    if len(survivors) <= 1:
        one = survivors[0] if survivors else None
        return Verdict(survivors, one, [], WINNER, n, one)
    ranks = wide.rank(axis=1)
    best = str(ranks.sum().idxmin())
    if n < first_test:
        return Verdict(survivors, best, [], "", n)
    drops = _dropped(wide, ranks, best, alpha, margin)
    left = [s for s in survivors if s not in {d.contender for d in drops}]
    if len(left) == 1:
        return Verdict(left, best, drops, WINNER, n, left[0])
    w = {c: (workers or {}).get(c, 0) for c in left}
    answer = min(left, key=lambda c: (w[c], ranks[c].sum()))
    untied = settle_after is not None and n >= settle_after
    ended = _ended(wide[left], answer, w, margin, alpha, untied)
    return Verdict(left, best, drops, ended, n, answer if ended else None)


def _ended(
    wide: pd.DataFrame,
    answer: str,
    workers: Mapping[str, int],
    margin: float,
    alpha: float,
    untied: bool,
) -> str:
    """TIE when every survivor is within the margin of every other, all at one W; SETTLED when no
    survivor is more than the margin faster than the answer and those of as many workers are
    tied with it (`untied`: need not be); else "". Survivors at several W that tie are settled:
    the answer is the fewest workers."""
    within = {
        (a, b): _within(wide[a] / wide[b], margin, alpha)
        for a in wide.columns
        for b in wide.columns
        if a != b
    }
    if all(within.values()) and len(set(workers.values())) == 1:
        return TIE
    others = [s for s in wide.columns if s != answer]
    if not all(within[answer, s] for s in others):
        return ""
    peers = [s for s in others if workers[s] == workers[answer]]
    return SETTLED if untied or all(within[s, answer] for s in peers) else ""


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

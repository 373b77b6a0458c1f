"""The race's statistics (stats/racing.py): the Friedman and Wilcoxon tests against scipy, each
way a race ends, and 200 simulated races of contenders with known gaps under drift and noise like
this VM's (a shared factor per round that wanders, a drift inside each round, and run-to-run
noise)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import friedmanchisquare, wilcoxon

from harness.stats.racing import (
    SETTLE_AFTER,
    SETTLED,
    TIE,
    WINNER,
    blocks,
    friedman_p,
    judge,
    one_sided_p,
)

GAPS = {"best": 1.0, "one": 1.01, "three": 1.03, "ten": 1.10}
RUN_NOISE = 0.02  # log SD of one run
ROUND_WALK = 0.03  # log SD of the step of the shared factor from one round to the next
IN_ROUND_DRIFT = 0.04  # first to last position of a round


def simulate(
    rng: np.random.Generator,
    gaps: dict[str, float],
    rounds: int = 40,
    margin: float = 0.02,
    settle_after: int | None = SETTLE_AFTER,
):
    """One race: (verdict, every drop with its round, rounds run). Each round is the baseline,
    the survivors in a random order, the baseline again; a contender's time is divided by the
    baseline interpolated at its position, as harness.plan.race_rounds does."""
    alive, rows, drops = list(gaps), [], []
    level, verdict = 0.0, None
    for r in range(rounds):
        level += rng.normal(0, ROUND_WALK)
        order = list(rng.permutation(alive))
        last = len(order) + 1

        def time(position: int, true: float, level: float = level, last: int = last) -> float:
            drift = IN_ROUND_DRIFT * position / last
            return true * np.exp(level + drift + rng.normal(0, RUN_NOISE))

        first_visit, last_visit = time(0, 1.0), time(last, 1.0)
        for pos, name in enumerate(order, 1):
            base = first_visit + (last_visit - first_visit) * pos / last
            rows.append({"contender": name, "round": r, "wall_s": time(pos, gaps[name]) / base})
        verdict = judge(blocks(pd.DataFrame(rows), alive), margin=margin, settle_after=settle_after)
        drops += [(d.contender, r + 1) for d in verdict.drops]
        alive = verdict.survivors
        if verdict.ended:
            return verdict, drops, r + 1
    return verdict, drops, rounds


def test_friedman_is_scipys():
    rng = np.random.default_rng(1)
    wide = pd.DataFrame(rng.normal(size=(8, 4)) + [0, 0.3, 0.6, 0.9])
    assert friedman_p(wide.rank(axis=1)) == pytest.approx(
        friedmanchisquare(*[wide[c] for c in wide]).pvalue, rel=1e-9
    )


def test_one_sided_signed_rank_is_scipys():
    x = np.array([0.03, 0.05, -0.01, 0.02, 0.04, 0.06, -0.02, 0.01])
    assert one_sided_p(x) == pytest.approx(
        wilcoxon(x, alternative="greater", method="exact").pvalue
    )


def test_no_test_before_five_complete_rounds():
    rows = [
        {"contender": c, "round": r, "wall_s": g * (1 + 0.001 * r)}
        for r in range(4)
        for c, g in GAPS.items()
    ]
    verdict = judge(blocks(pd.DataFrame(rows), list(GAPS)))
    assert verdict.survivors == list(GAPS) and not verdict.drops and not verdict.ended


def test_a_round_missing_a_contender_is_not_a_block():
    rows = [{"contender": c, "round": r, "wall_s": 1.0} for r in range(3) for c in "ab"]
    rows = [row for row in rows if not (row["round"] == 1 and row["contender"] == "b")]
    assert list(blocks(pd.DataFrame(rows), ["a", "b"]).index) == [0, 2]


def test_a_clear_winner_ends_the_race():
    rng = np.random.default_rng(3)
    verdict, drops, rounds = simulate(rng, {"a": 1.0, "b": 1.3, "c": 1.4})
    assert verdict.ended == WINNER and verdict.survivors == ["a"]
    assert {d for d, _ in drops} == {"b", "c"} and rounds <= 8


def test_equal_contenders_end_in_a_tie():
    rng = np.random.default_rng(4)
    verdict, drops, _ = simulate(rng, {"a": 1.0, "b": 1.0}, rounds=80, margin=0.05)
    assert verdict.ended == TIE and not drops


@pytest.fixture(scope="module")
def races():
    rng = np.random.default_rng(20020709)
    return [simulate(rng, GAPS) for _ in range(200)]


@pytest.mark.slow
def test_the_best_survives_95_percent_of_races(races):
    kept = sum("best" not in {d for d, _ in drops} for _, drops, _ in races)
    assert kept >= 0.95 * len(races)


@pytest.mark.slow
def test_ten_percent_slower_is_dropped_within_8_rounds_in_95_percent(races):
    early = sum(any(d == "ten" and r <= 8 for d, r in drops) for _, drops, _ in races)
    assert early >= 0.95 * len(races)


@pytest.mark.slow
def test_a_one_percent_gap_ends_in_a_tie_at_a_two_percent_margin():
    """Without the settle round, as the race's tie rule alone decides."""
    rng = np.random.default_rng(11)
    results = [
        simulate(rng, {"best": 1.0, "one": 1.01}, rounds=100, settle_after=None) for _ in range(200)
    ]
    tied = sum(v.ended == TIE for v, _, _ in results)
    # A 1% gap is exactly half the margin, where a drop begins: the rest end with "one" dropped
    # (the right way round, and only in the repeated looks' alpha) or undecided; 164 of 200 tie.
    assert tied >= 0.75 * len(results)
    lost = sum("best" in {d for d, _ in drops} for _, drops, _ in results)
    assert lost <= 0.05 * len(results)


@pytest.mark.parametrize("gap", [1.01, 1.017])
@pytest.mark.slow
def test_a_gap_inside_the_margin_is_decided_by_the_settle_round(gap):
    """With the default settle round (10), a gap within the margin (1%, and 1.7% as P_2
    against P_T in a race that 15 minutes left undecided) is decided: a tie, a drop, or settled
    on an answer that no contender beats by more than the margin; in at least 90% of races by
    round 10 (183 and 191 of 200), every race within 5 more. The best is neither lost nor
    passed over often (docs/STATISTICS.md has the counts)."""
    rng = np.random.default_rng(17)
    results = [simulate(rng, {"best": 1.0, "one": gap}, rounds=100) for _ in range(200)]
    assert all(v.ended and r <= SETTLE_AFTER + 5 for v, _, r in results)
    assert sum(r <= SETTLE_AFTER for _, _, r in results) >= 0.9 * len(results)
    lost = sum("best" in {d for d, _ in drops} for _, drops, _ in results)
    assert lost <= 0.05 * len(results)
    passed_over = sum(v.ended == SETTLED and v.answer != "best" for v, _, _ in results)
    assert passed_over <= 0.05 * len(results)


def test_more_workers_that_buy_less_than_the_margin_settle_on_the_fewest():
    """W = 4 on 2 cores as fast as W = 2, W = 1 far slower: the answer is W = 2 once it is
    shown within the margin of W = 4, whether or not the two tie both ways."""
    rng = np.random.default_rng(7)
    rows = [
        {"contender": name, "round": r, "wall_s": true * np.exp(rng.normal(0, 0.01))}
        for r in range(12)
        for name, true in (("w1", 1.8), ("w2", 1.0), ("w4", 0.995))
    ]
    workers = {"w1": 1, "w2": 2, "w4": 4}
    wide = blocks(pd.DataFrame(rows), list(workers))
    verdict = judge(wide, workers=workers)
    assert [d.contender for d in verdict.drops] == ["w1"]
    assert verdict.ended in {SETTLED, TIE} and set(verdict.survivors) == {"w2", "w4"}
    # the same times with W = 2 far slower than W = 4: nothing settles on W = 2
    slow = wide.assign(w2=wide["w2"] * 1.05)
    assert (
        judge(slow, workers=workers).ended != SETTLED
        or "w2" not in judge(slow, workers=workers).survivors
    )

"""stats.pairing without processes: the exact Wilcoxon signed-rank arithmetic behind a paired
ratio's interval, the pairing of a cell's run with its baseline interpolated in time (a linear
drift of 20% over a sweep cancels, independent medians do not), and rounds with failed runs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from harness.analysis.scaling import scaling_table
from harness.plan.rounds import round_order, with_visits
from harness.schema import BASELINE, Cell
from harness.stats.pairing import (
    cell_ratios,
    hl_interval,
    ratio_half_width,
    ratio_interval,
    ratio_stop_reason,
    round_ratios,
    signed_rank_cdf,
    signed_rank_p,
)
from harness.stats.precision import FUTILE, INTERVAL, TARGET, Target

T0 = pd.Timestamp("2026-01-01T00:00:00", tz="UTC")
NAN = float("nan")


def row(cell: Cell, repeat: int, round_: int, position: int, start_s: float, wall: float | None):
    """A stored run of `cell`: started `start_s` after T0, `wall` seconds (None: it failed)."""
    return {
        "cell_id": cell.id,
        **cell.key(),
        "repeat": repeat,
        "round": round_,
        "position": position,
        "status": "ok" if wall is not None else "failed",
        "error": "" if wall is not None else "boom",
        "wall_s": NAN if wall is None else wall,
        "started_at": (T0 + pd.Timedelta(seconds=start_s)).isoformat(),
    }


# ---------------------------------------------------------------- Wilcoxon and Hodges-Lehmann


def signed_sample(n: int, r_plus: int) -> np.ndarray:
    """n values with ranks 1..n whose positive ranks sum to r_plus (greedy from the largest)."""
    signs, left = -np.ones(n), r_plus
    for rank in range(n, 0, -1):
        if rank <= left:
            signs[rank - 1], left = 1, left - rank
    assert left == 0
    return signs * np.arange(1, n + 1)


@pytest.mark.parametrize("n", range(1, 16))
def test_signed_rank_cdf_is_scipys_exact_distribution(n):
    cdf = signed_rank_cdf(n)
    top = n * (n + 1) // 2
    assert len(cdf) == top + 1 and cdf[-1] == pytest.approx(1.0)
    assert np.all(np.diff(cdf) > 0)
    # symmetric: P(T <= t) = P(T >= top - t) = 1 - P(T <= top - t - 1)
    np.testing.assert_allclose(cdf[:-1], 1 - cdf[::-1][1:], atol=1e-12)
    for t in range(top + 1):
        # scipy's one-sided exact p of R+ = t against "less" is P(R+ <= t)
        p = scipy.stats.wilcoxon(signed_sample(n, t), alternative="less", method="exact").pvalue
        assert cdf[t] == pytest.approx(p, abs=1e-12), (n, t)


def test_signed_rank_p_is_scipys_two_sided_exact_p():
    rng = np.random.default_rng(3)
    for n in (4, 7, 10, 15):
        for _ in range(5):
            x = rng.normal(0.3, 1.0, n)
            expected = scipy.stats.wilcoxon(x, method="exact").pvalue
            assert signed_rank_p(x) == pytest.approx(expected, abs=1e-12)
    assert signed_rank_p([]) == 1.0 and signed_rank_p([0.0, 0.0]) == 1.0


def walsh(x: np.ndarray) -> np.ndarray:
    return np.sort([(a + b) / 2 for i, a in enumerate(x) for b in x[i:]])


def test_hl_interval_at_six_is_the_range_of_the_walsh_averages():
    x = np.array([0.3, -1.2, 2.5, 0.1, 0.9, -0.4])
    centre, low, high, coverage = hl_interval(x)
    assert centre == pytest.approx(np.median(walsh(x)))
    assert (low, high) == (x.min(), x.max())  # the extreme Walsh averages are the extremes
    assert coverage == pytest.approx(1 - 2 / 64)


def test_hl_interval_below_six_says_its_lower_coverage_and_nan_when_empty():
    centre, low, high, coverage = hl_interval([1.0, 2.0, 4.0, 8.0, 3.0])
    assert (low, high) == (1.0, 8.0)
    assert coverage == pytest.approx(1 - 2 / 32) and coverage < 0.95
    assert np.isnan(hl_interval([NAN, NAN])).all()


def test_hl_interval_drops_walsh_averages_as_rounds_add_up():
    """At n = 12 the 95% interval is [W(k), W(M+1-k)] with the largest k of coverage >= 95%."""
    x = np.random.default_rng(5).normal(size=12)
    w, cdf = walsh(x), signed_rank_cdf(12)
    k = max(i for i in range(1, len(w) // 2) if 1 - 2 * cdf[i - 1] >= 0.95)
    assert k > 1
    _, low, high, coverage = hl_interval(x)
    assert (low, high) == (w[k - 1], w[len(w) - k])
    assert coverage == pytest.approx(1 - 2 * cdf[k - 1]) and coverage >= 0.95


def test_ratio_interval_covers_a_log_normal_ratio_at_95_percent():
    """2000 seeded cells of 10 rounds whose ratios are log-normal around a true ratio of 1.6."""
    true, rng = 1.6, np.random.default_rng(2026)
    ratios = true * np.exp(rng.normal(0.0, 0.08, (2000, 10)))
    intervals = np.array([ratio_interval(r)[1:3] for r in ratios])
    covered = np.mean((intervals[:, 0] <= true) & (true <= intervals[:, 1]))
    assert covered >= 0.93
    assert ratio_interval(ratios[0])[3] >= 0.95  # the coverage it claims


def test_ratio_stop_reason_meets_the_target_only_with_a_95_percent_interval():
    target = Target(3, 10, 0.03)
    assert ratio_stop_reason([1.5] * 5, 5, target, slicing=False) == ""  # no 95% interval yet
    assert ratio_stop_reason([1.5] * 6, 6, target, slicing=False) == TARGET
    assert ratio_stop_reason([1.5, NAN] * 3, 6, target, slicing=False) == ""  # 3 real rounds


def test_a_ratio_is_judged_futile_only_from_futile_after_rounds():
    wide = [1.5, 1.8, 1.3, 1.9, 1.4, 1.7, 1.2, 2.0]  # +-15%: far from +-3% even at 10 rounds
    target = Target(3, 10, 0.03, futile_after=8)
    assert ratio_stop_reason(wide[:6], 6, target, slicing=False) == ""
    assert ratio_stop_reason(wide[:7], 7, target, slicing=False) == ""
    assert ratio_stop_reason(wide, 8, target, slicing=False) == FUTILE
    assert ratio_stop_reason(wide[:6], 6, Target(3, 10, 0.03, futile_after=6), False) == FUTILE


def test_one_slow_round_among_tight_ones_is_not_futile():
    """Seven rounds within 2% and one 25% slower: the interval at 8 rounds is wide, but the MAD
    of the log-ratios says 20 rounds reach +-3%, so the cell goes on. Replayed under the rule
    of older run folders (the interval alone) the same rounds stop futile."""
    tight = [1.80, 1.83, 1.78, 1.35, 1.81, 1.79, 1.84, 1.82]
    target = Target(3, 20, 0.03)
    assert ratio_half_width(tight) > 0.05  # the slow round widens the interval
    assert ratio_stop_reason(tight, 8, target, slicing=False) == ""
    assert ratio_stop_reason(tight, 8, replace(target, futility=INTERVAL), False) == FUTILE


def test_genuinely_wide_ratios_are_still_futile():
    """Log-ratios of sigma 0.3 cannot reach +-3% in 20 rounds (about +-13% there)."""
    rng = np.random.default_rng(11)
    wide = 1.8 * np.exp(rng.normal(0.0, 0.3, (50, 8)))
    futile = [ratio_stop_reason(r, 8, Target(3, 20, 0.03), False) == FUTILE for r in wide]
    assert np.mean(futile) >= 0.95


# ---------------------------------------------------------------- a sweep under linear drift

BASE = Cell(BASELINE, 1, False, 200, 100)
FAST = Cell("P_1", 2, False, 200, 100)  # true speedup 1.8, met its target after 4 rounds
SLOW = Cell("P_2", 2, False, 200, 100)  # true speedup 1.4, in every round
TRUE_S = {BASE.id: 1.0, FAST.id: 1 / 1.8, SLOW.id: 1 / 1.4}
ROUNDS, FAST_ROUNDS, SLOT_S, DRIFT = 10, 4, 10, 0.2


def drifting_sweep() -> pd.DataFrame:
    """Paired rounds in the rounds order (drawn by harness.plan.rounds; a baseline visit opens
    each round, and one more closes the last), one run per 10-second slot, each started on a
    whole second as the child records it. The machine slows linearly by 20% over the sweep: a
    run's wall time is its true time times 1 + 0.2 t / T at its midpoint t."""
    plan = []
    for r in range(ROUNDS):
        cells = [FAST, SLOW] if r < FAST_ROUNDS else [SLOW]
        plan += [
            (r, p, c)
            for p, c in enumerate(with_visits(round_order(cells, 0, r, False), BASE, None))
        ]
    plan.append((ROUNDS, 0, BASE))
    rate = DRIFT / (len(plan) * SLOT_S)  # drift per second
    rows, visits = [], 0
    for slot, (r, position, cell) in enumerate(plan):
        start, true = slot * SLOT_S, TRUE_S[cell.id]
        # wall = true * (1 + rate * (start + wall / 2)), solved for wall
        wall = true * (1 + rate * start) / (1 - rate * true / 2)
        repeat = visits if cell == BASE else r
        visits += cell == BASE
        rows.append(row(cell, repeat, r, position, start, wall))
    return pd.DataFrame(rows)


def test_the_sweep_drifts_by_twenty_percent():
    runs = drifting_sweep()
    base = runs[runs["strategy"].eq(BASELINE)]["wall_s"]
    assert base.iloc[-1] / base.iloc[0] == pytest.approx(1 + DRIFT, abs=0.01)


def test_paired_ratios_cancel_a_linear_drift_that_independent_medians_do_not():
    runs = drifting_sweep()
    table = round_ratios(runs)
    assert set(table["cell_id"]) == {FAST.id, SLOW.id}
    assert table.groupby("cell_id")["round"].nunique().to_dict() == {
        FAST.id: FAST_ROUNDS,
        SLOW.id: ROUNDS,
    }
    ratios = cell_ratios(runs)
    for cell, speedup in ((FAST, 1.8), (SLOW, 1.4)):
        np.testing.assert_allclose(ratios[cell.id], speedup, rtol=1e-9)
        centre, low, high, _ = ratio_interval(ratios[cell.id])
        assert centre == pytest.approx(speedup, abs=1e-6)
        assert (low, high) == pytest.approx((speedup, speedup), abs=1e-6)
    # Independent medians (scaling_table without rounds): FAST ran in the first 4 rounds, its
    # baseline's median is the whole sweep's, measured on a slower machine.
    walls = runs.groupby("cell_id")["wall_s"].median()
    independent = walls[BASE.id] / walls[FAST.id]
    assert abs(independent / 1.8 - 1) > 0.03


def test_scaling_table_reports_the_paired_speedup():
    runs = drifting_sweep()
    for kind in ("strong", "weak"):
        table = scaling_table(runs, kind).set_index("strategy")
        for cell, ratio in ((FAST, 1.8), (SLOW, 1.4)):
            got = table.loc[cell.strategy]
            speedup = ratio if kind == "strong" else ratio * cell.workers
            assert got["speedup"] == pytest.approx(speedup, abs=1e-6), kind
            assert got["efficiency"] == pytest.approx(speedup / cell.workers, abs=1e-6), kind
            assert got["speedup_ci_low"] == pytest.approx(speedup, abs=1e-6), kind
            assert got["speedup_ci_high"] == pytest.approx(speedup, abs=1e-6), kind
            # its time keeps its own (drifting) median
            assert got["time_s"] == pytest.approx(
                runs[runs["cell_id"].eq(cell.id)]["wall_s"].median()
            )
    independent = scaling_table(runs.drop(columns=["round", "position"]), "strong")
    fast = independent.set_index("strategy").loc[FAST.strategy]
    assert abs(fast["speedup"] / 1.8 - 1) > 0.03  # the same runs, unpaired


# ---------------------------------------------------------------- incomplete rounds


def three_rounds(base_walls: list[tuple], cell_walls: list) -> pd.DataFrame:
    """Rounds of baseline, FAST, baseline, a minute apart; None is a failed run."""
    rows = []
    for r, ((first, last), wall) in enumerate(zip(base_walls, cell_walls, strict=True)):
        t = r * 60
        rows += [
            row(BASE, 2 * r, r, 0, t, first),
            row(FAST, r, r, 1, t + 10, wall),
            row(BASE, 2 * r + 1, r, 2, t + 20, last),
        ]
    return pd.DataFrame(rows)


def test_a_round_whose_cell_failed_gives_nan_and_the_others_count():
    runs = three_rounds([(1.0, 1.0)] * 3, [0.5, None, 0.4])
    table = round_ratios(runs)
    assert len(table) == 3
    ratios = cell_ratios(runs)[FAST.id]
    np.testing.assert_allclose(ratios, [2.0, NAN, 2.5])
    assert ratio_interval(ratios)[:3] == pytest.approx(ratio_interval([2.0, 2.5])[:3])
    assert table["wall_s"].isna().tolist() == [False, True, False]


def test_a_round_whose_visits_failed_pairs_with_the_nearest_visits_around_it():
    runs = three_rounds([(1.0, 1.2), (None, None), (1.6, 1.0)], [0.5, 0.5, 0.4])
    table = round_ratios(runs).set_index("round")
    # round 1's cell (midpoint 70.25 s) lies between round 0's last visit (1.2 at 20.6 s) and
    # round 2's first (1.6 at 120.8 s): interpolated over the longer span, not left unpaired
    expected = np.interp(70.25, [20.6, 120.8], [1.2, 1.6])
    assert table.loc[1, "base_s"] == pytest.approx(expected)
    assert np.isfinite(cell_ratios(runs)[FAST.id]).all()


@pytest.mark.parametrize("failed", ["first", "last"])
def test_one_failed_visit_of_two_falls_back_to_the_nearest_ok_ones(failed):
    visits = (None, 1.3) if failed == "first" else (1.1, None)
    runs = three_rounds([(1.0, 1.2), visits, (1.0, 1.0)], [0.5, 0.5, 0.5])
    table = round_ratios(runs).set_index("round")
    # midpoints: start + wall / 2; round 1's cell at 70.25 s
    if failed == "first":  # between round 0's last visit and round 1's last
        expected = np.interp(70.25, [20.6, 80.65], [1.2, 1.3])
    else:  # between round 1's first visit and round 2's first
        expected = np.interp(70.25, [60.55, 120.5], [1.1, 1.0])
    assert table.loc[1, "base_s"] == pytest.approx(expected)
    assert table.loc[1, "ratio"] == pytest.approx(table.loc[1, "base_s"] / 0.5)
    # round 0 interpolates between its two visits at the cell's midpoint
    mids = np.array([0.5, 10.25, 20.6])  # seconds after the round's start: start + wall / 2
    assert table.loc[0, "base_s"] == pytest.approx(np.interp(mids[1], mids[[0, 2]], [1.0, 1.2]))


def test_without_any_ok_visit_a_cell_has_no_ratio():
    runs = three_rounds([(None, None)] * 2, [0.5, 0.4])
    assert round_ratios(runs)["base_s"].isna().all()
    assert np.isnan(cell_ratios(runs)[FAST.id]).all()


def test_runs_without_rounds_give_no_ratios():
    runs = three_rounds([(1.0, 1.0)], [0.5]).drop(columns=["round", "position"])
    assert round_ratios(runs).empty and cell_ratios(runs) == {}

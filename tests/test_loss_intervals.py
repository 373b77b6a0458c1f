"""The loss account's intervals (harness/analysis/losses.py `summarise`): on simulated sessions
whose causes are known, every cause's 95% interval holds the true value in at least 93% of
sessions; the split into cold start and steady state is kept only where both are narrow; the
report shows a cause whose interval holds zero as such."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_losses import rows

from harness.analysis import losses
from harness.report.sections.costs import cause_text

W, PER_LANE = 2, 10
BASE = [0.05 + 0.01 * (k % 5) for k in range(W * PER_LANE)]  # each task's CPU alone, s
COLD, STEADY = 0.02, 0.03  # a lane's first task: extra CPU (s); every task: CPU ratio - 1
CAUSES = [
    "loss_pool_startup_pp",
    "loss_first_handout_pp",
    "loss_gaps_pp",
    "loss_tail_pp",
    "loss_cpu_inflation_pp",
    "cpu_cold_start_pp",
    "cpu_steady_pp",
]


def simulated_run(rng: np.random.Generator, r: int, cold: float = COLD) -> dict:
    """Run r of a W = 2 cell and its twin baseline visit, in round r: both slowed by the same
    drift, each task's CPU with 2% noise, the cell's with the known cold start and steady
    state. No waiting: each task's wall time is its CPU time."""
    drift = float(np.exp(rng.normal(0, 0.03)))
    t, seq = 0.0, []
    for k, c in enumerate(BASE):
        cpu = c * drift * float(np.exp(rng.normal(0, 0.02)))
        seq.append((0, k, 1, t, t + cpu, cpu))
        t += cpu
    seq_wall, par, ends = t, [], []
    for lane in range(W):
        t = 0.01 + 0.002 * lane
        for j in range(PER_LANE):
            k = lane * PER_LANE + j
            cpu = BASE[k] * drift * (1 + STEADY) * float(np.exp(rng.normal(0, 0.02)))
            cpu += cold * drift if j == 0 else 0.0
            par.append((0, k, 10 + lane, t, t + cpu, cpu))
            t += cpu + 0.001 * float(np.exp(rng.normal(0, 0.3)))
        ends.append(t)
    wall = max(ends) + 0.002
    startup = rows("main", [("startup", 1, 0.0, 0.01)], "par", r)
    base = {"repeat": r, "round": r, "status": "ok"}
    return {
        "run": pd.Series({**base, "cell_id": "par", "wall_s": wall, "workers": W}),
        "tasks": pd.concat([startup, rows("task", par, "par", r)]),
        "seq_run": pd.Series({**base, "cell_id": "seq", "wall_s": seq_wall, "workers": 1}),
        "seq_tasks": rows("task", seq, "seq", r),
    }


def accounts(seed: int, n: int, cold: float = COLD) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for r in range(n):
        s = simulated_run(rng, r, cold)
        out.append(losses.account(s["run"], s["tasks"], s["seq_run"], s["seq_tasks"], False))
    return out


SESSIONS, RUNS = 150, 12  # a paired session of quick_strong records 8-20 rounds a cell


@pytest.fixture(scope="module")
def pool() -> list[dict]:
    return accounts(0, SESSIONS * RUNS)


@pytest.mark.slow  # 1800 accounts: half a minute
def test_the_intervals_hold_the_known_causes_at_their_level(pool: list[dict]) -> None:
    """150 sessions of 12 runs each: the truth is the mean over all 1800 runs (its own error is
    a twelfth of a session's); each cause's interval holds it in at least 93% of sessions."""
    truth = pd.DataFrame(pool)[CAUSES].astype(float).mean()
    assert truth["cpu_steady_pp"] > 0 and truth["cpu_cold_start_pp"] > 0
    held = {c: 0 for c in CAUSES}
    sessions = [pool[i : i + RUNS] for i in range(0, len(pool), RUNS)]
    for session in sessions:
        summary = losses.summarise(session)
        for c in CAUSES:
            held[c] += summary[f"{c}_low"] <= truth[c] <= summary[f"{c}_high"]
    coverage = {c: held[c] / len(sessions) for c in CAUSES}
    assert min(coverage.values()) >= 0.93, coverage


@pytest.mark.slow
def test_the_known_cold_start_and_steady_state_are_recovered(pool: list[dict]) -> None:
    """The mean over the pool matches the causes put in: each lane's first task COLD s of CPU
    more, every task STEADY more, in pp of the runs' capacity."""
    frame = pd.DataFrame(pool).astype({c: float for c in CAUSES})
    rng = np.random.default_rng(0)
    walls = [simulated_run(rng, r)["run"]["wall_s"] for r in range(400)]
    capacity = W * float(np.mean(walls))
    assert frame["cpu_cold_start_pp"].mean() == pytest.approx(100 * W * COLD / capacity, rel=0.1)
    assert frame["cpu_steady_pp"].mean() == pytest.approx(
        100 * STEADY * sum(BASE) / capacity, rel=0.1
    )


def test_the_sums_still_close_and_the_split_needs_narrow_parts() -> None:
    pool = accounts(2, 8)
    summary = losses.summarise(pool)
    total = sum(summary[c] for c in losses.LOSS_COLUMNS)
    assert total == pytest.approx(100 * (1 - summary["efficiency_run"]), abs=1e-6)
    assert summary["cpu_cold_start_pp"] + summary["cpu_steady_pp"] == pytest.approx(
        summary["loss_cpu_inflation_pp"]
    )
    assert summary[losses.SPLIT_REASON] == "" and summary["runs_accounted"] == 8
    # two runs: intervals with t(1) = 12.7 are far wider than +-2 pp, so only the sum is given
    wide = losses.summarise(pool[:2])
    assert wide[losses.SPLIT_REASON] == losses.NOT_SEPARABLE
    assert np.isnan(wide["cpu_steady_pp"]) and np.isfinite(wide["loss_cpu_inflation_pp_low"])
    assert losses.summarise(pool[:1])[losses.SPLIT_REASON] == losses.ONE_RUN


def test_a_cause_whose_interval_holds_zero_is_not_a_signed_number() -> None:
    row = pd.Series({"c": -0.4, "c_low": -1.2, "c_high": 0.4, "d": 3.4, "d_low": 2.8,
                     "d_high": 4.0, "e": 1.0, "e_low": np.nan, "e_high": np.nan})  # fmt: skip
    assert cause_text(row, "c") == "≈0 [-1.2, +0.4]"
    assert cause_text(row, "d") == "+3.4 ±0.6"
    assert cause_text(row, "e") == "+1.0"
    assert losses.holds_zero(row, "c") and not losses.holds_zero(row, "d")


def test_no_cold_start_gives_an_interval_around_zero() -> None:
    summary = losses.summarise(accounts(1, 8, cold=0.0))
    assert summary["cpu_cold_start_pp_low"] <= 0 <= summary["cpu_cold_start_pp_high"] or (
        summary[losses.SPLIT_REASON]
    )

"""compare_runs on synthetic run folders: a 2x slowdown is significant, identical runs are not."""

from __future__ import annotations

import shutil

import numpy as np

from harness.analysis.compare import compare_runs, format_compare, smallest_p


def test_two_times_slower_is_significant(synthetic_run):
    a = synthetic_run("a", repeats=5, seed=1)
    b = synthetic_run("b", repeats=5, seed=2, slowdown=2.0)
    df = compare_runs(a, b)
    assert len(df) == 21  # every cell of the synthetic sweep is in both
    assert df["significant"].all()
    assert np.allclose(df["ratio"], 2.0, rtol=0.05)
    assert (df["ratio_ci_low"] > 1).all()
    assert (df["p_value"] < 0.05).all()
    text = format_compare(df)
    assert "B slower" in text and "21 of 21 cells differ significantly" in text


def test_identical_runs_are_not_significant(synthetic_run, tmp_path):
    a = synthetic_run("a", repeats=5, seed=1)
    b = tmp_path / "b"
    shutil.copytree(a, b)
    df = compare_runs(a, b)
    assert not df["significant"].any()
    assert np.allclose(df["ratio"], 1.0)
    assert (df["ratio_ci_low"] <= 1).all() and (df["ratio_ci_high"] >= 1).all()
    assert "0 of 21 cells differ significantly" in format_compare(df)


def test_three_repeats_cannot_reach_significance(synthetic_run):
    a = synthetic_run("a", repeats=3, seed=1)
    b = synthetic_run("b", repeats=3, seed=2, slowdown=2.0)
    df = compare_runs(a, b)
    assert smallest_p(3, 3) == 0.1
    assert not df["significant"].any()
    text = format_compare(df)
    assert "cannot reach p < 0.05 with 3 vs 3 runs" in text
    assert "too few runs" in text


def test_a_difference_within_the_spread_between_sessions_is_not_flagged(synthetic_run):
    """Three other sessions whose medians move by about 5% make a 3% change unremarkable, though
    each run's own noise (1%) makes it significant; a 2x change stays flagged."""
    others = [synthetic_run(f"s{i}", repeats=5, seed=10 + i, slowdown=s)
              for i, s in enumerate([0.95, 1.0, 1.05])]
    a = synthetic_run("a", repeats=7, seed=1)
    b = synthetic_run("b", repeats=7, seed=2, slowdown=1.03)
    within = compare_runs(a, b, spread_from=others)
    assert (within["session_sd"] > 0.03).all()
    assert not within["significant"].any()
    assert "within the spread between sessions" in format_compare(within)
    alone = compare_runs(a, b, spread_from=[])
    assert alone["significant"].mean() > 0.5  # the in-run noise alone calls most of it real
    assert "No session-to-session spread" in format_compare(alone)
    far = synthetic_run("far", repeats=7, seed=3, slowdown=2.0)
    assert compare_runs(a, far, spread_from=others)["significant"].all()


def test_the_spread_comes_from_the_other_run_folders_beside_the_two(synthetic_run, tmp_path):
    for i, s in enumerate([0.9, 1.0, 1.1]):
        synthetic_run(f"s{i}", repeats=5, seed=10 + i, slowdown=s)
    a = synthetic_run("a", repeats=5, seed=1)
    b = synthetic_run("b", repeats=5, seed=2)
    spread = compare_runs(a, b).attrs["spread"]
    assert spread is not None and len(spread.folders) == 3
    assert {f.name for f in spread.folders} == {"s0", "s1", "s2"}

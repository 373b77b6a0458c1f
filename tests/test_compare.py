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

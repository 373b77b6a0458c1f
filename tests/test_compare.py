"""compare on synthetic run folders (tests/conftest.py, sequential order, 1% noise) and the
difference test's arithmetic: what is compared is each cell's speedup; absolute times are shown
beside, drift-prone; the between-session level comes from other paired sessions, else from A
and B themselves, else is unknown, and the text says which."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.analysis import difference
from harness.analysis.compare import compare_runs
from harness.analysis.compare_levels import FROM_PAIR
from harness.analysis.compare_text import WIDTH, format_compare
from harness.rundir import store


def slowed(src: Path, dst: Path, strategy: str, factor: float) -> Path:
    """A copy of the run folder `src` with every run of `strategy` `factor` times slower."""
    shutil.copytree(src, dst)
    runs = pd.read_parquet(dst / store.RUNS)
    runs.loc[runs["strategy"].eq(strategy), "wall_s"] *= factor
    runs.to_parquet(dst / store.RUNS)
    return dst


def test_the_test_widens_by_the_level_of_both_sessions():
    row = difference.of_ratio(1.05, 0.01, 0.0)
    assert row["flagged"] and row["log_se"] == pytest.approx(0.01)
    assert row["resolution"] == pytest.approx(np.exp(difference.Z * 0.01) - 1)
    wide = difference.of_ratio(1.05, 0.01, 0.02)
    assert wide["log_se"] == pytest.approx(np.sqrt(0.01**2 + 2 * 0.02**2))
    assert not wide["flagged"] and wide["ratio_low"] < 1 < wide["ratio_high"]
    same_rounds = difference.of_ratio(1.05, 0.01, 0.02, apart=False)  # an A/B run folder
    assert same_rounds["log_se"] == pytest.approx(0.01)


def test_a_narrow_interval_of_low_coverage_counts_as_wide():
    """Three rounds give a 75% interval: its standard error is its width over 2 x 1.15."""
    assert difference.log_se(1.0, 0.98, 1.02, 0.75) == pytest.approx(
        difference.log_se(1.0, 0.98, 1.02) * 1.96 / 1.150, rel=1e-3
    )
    assert np.isnan(difference.log_se(1.0, np.nan, 1.02))


def test_the_level_from_a_pair_ignores_a_change_in_few_cells():
    rng = np.random.default_rng(0)
    se = np.full(12, 0.01)
    d = rng.normal(0, np.hypot(0.01, np.sqrt(2) * 0.03), 12)
    assert difference.pair_level(d, se) == pytest.approx(0.03, abs=0.015)
    d[:4] = np.log(1 / 1.3)  # a third of the cells changed
    assert difference.pair_level(d, se) < 0.06
    assert np.isnan(difference.pair_level(d[:3], se[:3]))


def test_changes_read_as_speed():
    assert difference.change(0.77, 0.73, 0.81) == "23% slower [19%, 27%]"
    assert difference.change(1.05, 1.02, 1.08) == "5.0% faster [2.0%, 8.0%]"


def test_one_strategy_slower_is_flagged_and_nothing_else(synthetic_run, tmp_path):
    a = synthetic_run("a", repeats=7, seed=1)
    b = slowed(synthetic_run("b0", repeats=7, seed=2), tmp_path / "b", "P_2", 1.3)
    c = compare_runs(a, b)
    cells = c.speedups
    assert len(cells) == 19 and not cells["strategy"].eq("sequential").any()
    assert cells.loc[cells["strategy"].eq("P_2"), "flagged"].all()
    assert not cells.loc[cells["strategy"].ne("P_2"), "flagged"].any()
    assert c.levels["cells"].source == FROM_PAIR  # no other paired session beside them
    text = format_compare(c)
    assert "P_2 W = 2 saving: 24% slower [20%, 27%]" in text
    assert "taken from A and B themselves" in text
    assert "sequential order" in text
    assert max(len(line) for line in text.splitlines()[2:]) <= WIDTH  # but the two paths


def test_everything_slower_leaves_the_speedups_and_moves_the_times(synthetic_run):
    a = synthetic_run("a", repeats=7, seed=1)
    b = synthetic_run("b", repeats=7, seed=2, slowdown=1.5)
    c = compare_runs(a, b)
    assert not c.speedups["flagged"].any()
    assert np.allclose(c.times["ratio"], 1.5, rtol=0.03)
    text = format_compare(c)
    assert "no cell's speedup differs" in text and "33% slower" in text  # the times column


def test_identical_runs_differ_nowhere(synthetic_run, tmp_path):
    a = synthetic_run("a", repeats=5, seed=1)
    b = tmp_path / "b"
    shutil.copytree(a, b)
    c = compare_runs(a, b)
    assert np.allclose(c.speedups["ratio"], 1.0) and not c.speedups["flagged"].any()
    assert np.allclose(c.times["ratio"], 1.0) and not c.times["flagged"].any()


def test_without_a_level_the_text_says_what_the_flags_rest_on(synthetic_run, tmp_path):
    a = synthetic_run("a", repeats=5, seed=1, workers=[1], strategies=["P_1"])
    b = synthetic_run("b", repeats=5, seed=2, workers=[1], strategies=["P_1"])
    c = compare_runs(a, b)
    assert c.levels["cells"] is None and len(c.speedups) == 2
    text = format_compare(c)
    assert "Between-session level unknown" in text


def test_the_output_reads_verdict_resolution_table_then_times(synthetic_run, tmp_path):
    a = synthetic_run("a", repeats=7, seed=1)
    b = slowed(synthetic_run("b0", repeats=7, seed=2), tmp_path / "b", "P_1", 1.3)
    text = format_compare(compare_runs(a, b))
    marks = ["B against A:", "Resolution:", "Each cell's speedup", "Absolute times"]
    at = [text.index(m) for m in marks]
    assert at == sorted(at)

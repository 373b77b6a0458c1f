"""Issue 3 on real data: the committed example runs of the quick configs (results/), and a real
(tiny) measurement of the instrumentation overhead. No timing is asserted: the overhead's
figures are a benchmark (`make bench`); here only its arithmetic and its timer bound are checked."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness import analysis
from harness.compare import compare_runs
from harness.overhead import measure
from harness.results import load_results as load

RESULTS = Path(__file__).resolve().parent.parent / "results"
EXAMPLES = sorted(p for p in RESULTS.glob("quick_*/*") if p.is_dir() and not p.is_symlink())


@pytest.mark.parametrize("run", EXAMPLES, ids=lambda p: p.parent.name)
def test_example_runs_have_statistics_for_every_cell(run):
    data = load(run)
    table = data.table
    target = analysis.run_target(data.meta)
    if target.fixed:
        assert (table["n_ok"] == target.min).all()
    else:  # every cell stopped for a stated reason, within min..max
        assert table["n_ok"].between(target.min, target.max).all()
        assert table["stop"].isin(["target", "max", "futile", "time-slicing"]).all()
        slicing = table["workers"] > data.cores
        assert (table.loc[slicing, "n_ok"] == target.min).all()
        assert (table.loc[~slicing, "ci_level"] >= 0.95).all()
    assert (table["ci_low"] <= table["time_s"]).all() and (
        table["time_s"] <= table["ci_high"]
    ).all()
    assert table["cv"].between(0, 1).all()
    assert data.meta["setup"]["worker_threads"]


def test_compare_two_real_runs():
    strong = [p for p in EXAMPLES if p.parent.name == "quick_strong"]
    if not strong:
        pytest.skip("no committed quick_strong example run")
    same = compare_runs(strong[0], strong[0])
    assert len(same) > 0
    assert (same["ratio"] == 1).all() and not same["significant"].any()


def test_overhead_measurement_runs(tmp_path):
    result = measure("P_2", 2, size=(160, 80), images=2, augmentations=3, pairs=3)
    low, high = result.ratio_ci  # the project's one bootstrap: an interval from 3 pairs on
    assert result.pairs == 3 and math.isfinite(result.ratio) and low <= result.ratio <= high
    assert result.row_share < 0.01, "a task's trace row must cost far below 1% of the task"
    assert result.write_share > 0  # measured; `make bench` reports it for real-size runs

"""Real run folders: tiny cuts of committed runs (tests/fixtures/runs, one per order and format
the harness has stored), and a real (tiny) measurement of the instrumentation overhead. No timing
is asserted: the overhead's figures are a benchmark (`make bench`); here only its arithmetic and
its timer bound are checked."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from harness.analysis import cell_runs, scaling, stops
from harness.analysis.compare import compare_runs
from harness.analysis.results import load_results as load
from harness.measure.overhead import default_job, measure
from harness.report import sections
from harness.variants import twin_of

RUNS = Path(__file__).resolve().parent / "fixtures" / "runs"
EXAMPLES = sorted(p for p in RUNS.glob("*/*") if (p / "meta.json").is_file())
PARTIAL = [RUNS / "strong_scaling" / "sequential", RUNS / "quick_weak" / "sequential"]
PAIRED = RUNS / "quick_strong" / "paired"


@pytest.mark.parametrize("run", PARTIAL, ids=lambda p: p.parent.name)
def test_run_0_after_a_partial_warmup_is_not_slower_than_the_rest(run):
    """In sequential order after a warm-up of part of the tasks, the median over the cells of
    run 0 / median(later runs) is within 2% above 1. Per cell the ratio scatters by the
    run-to-run noise, so only the median over the run's cells is asked."""
    data = load(run)
    assert data.meta["config"]["warmup"]["tasks"] < 1 and not cell_runs.paired(data.runs)
    ratios = stops.first_run_ratios(data.runs, data.meta)
    assert len(ratios) >= 5
    assert ratios.median() <= 1.02, f"{run}: run 0 {ratios.median():.3f} x the later runs"


@pytest.mark.parametrize("run", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_example_runs_have_statistics_for_every_cell(run):
    data = load(run)
    table = data.table
    target = stops.run_target(data.meta)
    if target.fixed:
        assert (table["n_ok"] == target.min).all()
    elif cell_runs.paired(data.runs):  # rounds within min..max; the baseline visits each one
        cells = table[table["strategy"].ne("sequential")]
        assert cells["n_ok"].between(target.min, target.max).all()
        assert cells["stop"].isin(["target", "max", "futile", "time-slicing"]).all()
        base = table[table["strategy"].eq("sequential")]
        assert base["stop"].eq("rounds").all() and base["n_ok"].ge(2 * target.min).all()
    else:  # every cell stopped for a stated reason, within min..max
        assert table["n_ok"].between(target.min, target.max).all()
        assert table["stop"].isin(["target", "max", "futile", "time-slicing"]).all()
    if not target.fixed:
        slicing = table["workers"] > data.cores
        # an A/A run's twins go on while their pair's ratio wants rounds, time-slicing or not
        if not any(twin_of(s) for s in table["strategy"]):
            assert (table.loc[slicing, "n_ok"] == target.min).all()
        assert (table.loc[~slicing, "ci_level"] >= 0.95).all()
    assert (table["ci_low"] <= table["time_s"]).all() and (
        table["time_s"] <= table["ci_high"]
    ).all()
    assert table["cv"].between(0, 1).all()
    assert data.meta["setup"]["worker_threads"]


def test_compare_two_real_runs():
    same = compare_runs(PAIRED, PAIRED).speedups
    assert len(same) > 0
    assert (same["ratio"] == 1).all() and not same["flagged"].any()


def test_overhead_measurement_runs(tmp_path):
    result = measure("P_2", 2, 3, lambda out: default_job(out, (160, 80), 2, 3))
    low, high = result.ratio_ci  # the project's one bootstrap: an interval from 3 pairs on
    assert result.pairs == 3 and math.isfinite(result.ratio) and low <= result.ratio <= high
    assert result.row_share < 0.01, "a task's trace row must cost far below 1% of the task"
    assert result.write_share > 0  # measured; `make bench` reports it for real-size runs


WEAK = [p for p in EXAMPLES if "weak" in p.parent.name]


@pytest.mark.parametrize("run", WEAK, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_work_at_each_size_on_a_real_weak_run(run):
    """The weak report's work per size: the baseline is 1x of both, E at the work done is
    E x work / W, and W times the pixels never costs more than W times the work here."""
    data = load(run)
    table = scaling.work_growth(data.table, data.runs, data.tasks)
    if data.tasks is None:
        assert table.empty
        return
    base = table[table["strategy"].eq("sequential")]
    assert len(base) == len(data.saving_modes)
    assert (base["work"] == 1).all() and (base["pixels"] == 1).all()
    parallel = table[table["workers"].gt(1)]
    assert (parallel["pixels"] == parallel["workers"]).all()  # the study's doubling
    assert parallel["work"].between(1, parallel["workers"] * 1.5).all()
    expected = parallel["efficiency"] * parallel["work"] / parallel["workers"]
    assert np.allclose(parallel["efficiency_work"], expected)
    titles = [s.title for s in sections.build(data)]
    assert "Work at each size" in titles

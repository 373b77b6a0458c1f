"""The estimate's run counts: the plan expects as many runs per cell as the stop rule needs at the
run-to-run noise of the config's earlier runs on this machine (harness.plan.history). Read from
copies of a real run cut down to a few cells (tests/fixtures/runs); the wiring through `run` is in
test_precision.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.plan.history import RECENT, earlier_noise
from harness.rundir.store import META, RUNS
from harness.stats import precision
from harness.stats.precision import Target

# a sequential strong_scaling run: 4 cells at W <= 2 cores, 3 time-slicing ones at W = 4
STRONG = Path(__file__).resolve().parent / "fixtures" / "runs" / "strong_scaling" / "sequential"


def copy_run(source: Path, dest: Path, **meta_changes: object) -> Path:
    dest.mkdir(parents=True)
    shutil.copy(source / RUNS, dest / RUNS)
    meta = json.loads((source / META).read_text())
    for key, value in meta_changes.items():
        meta[key] = value
    (dest / META).write_text(json.dumps(meta))
    return dest


def host_of(run: Path) -> dict:
    return json.loads((run / META).read_text())["host"]


def test_the_noise_is_the_median_cv_of_cells_within_the_cores(tmp_path):
    copy_run(STRONG, tmp_path / "a")
    noise = earlier_noise(tmp_path, "strong_scaling", host_of(STRONG), 2)
    assert noise is not None
    assert noise.cells == 4  # the time-slicing cells say nothing of runs at W <= cores
    assert noise.cv == pytest.approx(0.041, abs=0.001)
    assert noise.folders == (tmp_path / "a",)
    assert "CV 4.1% over 4 cells" in noise.describe()


def test_other_machines_configs_and_damaged_folders_are_passed_over(tmp_path):
    host = host_of(STRONG)
    copy_run(STRONG, tmp_path / "other_cpu", host={**host, "cpu_model": "another"})
    copy_run(STRONG, tmp_path / "more_cores", host={**host, "physical_cores": 64})
    damaged = copy_run(STRONG, tmp_path / "damaged")
    (damaged / RUNS).write_bytes(b"not parquet")
    (tmp_path / "no_meta").mkdir()
    (tmp_path / "bad_meta").mkdir()
    (tmp_path / "bad_meta" / META).write_text("{")
    assert earlier_noise(tmp_path, "strong_scaling", host, 2) is None
    assert earlier_noise(tmp_path / "nowhere", "strong_scaling", host, 2) is None
    copy_run(STRONG, tmp_path / "good")
    assert earlier_noise(tmp_path, "weak_scaling", host, 2) is None  # another config's runs
    noise = earlier_noise(tmp_path, "strong_scaling", host, 2)
    assert noise is not None and noise.folders == (tmp_path / "good",)


def test_only_the_newest_runs_count(tmp_path):
    for day in range(RECENT + 1):
        copy_run(STRONG, tmp_path / f"run{day}", started_at=f"2026-11-2{day}T00:00:00")
    (tmp_path / "latest").symlink_to("run0")
    noise = earlier_noise(tmp_path, "strong_scaling", host_of(STRONG), 2)
    assert noise is not None
    assert noise.folders == tuple(tmp_path / f"run{d}" for d in range(1, RECENT + 1))


@pytest.mark.parametrize(("cv", "low", "high"), [(0.005, 6.0, 6.05), (0.03, 7.2, 8.2)])
def test_the_planned_run_count_follows_the_noise(cv, low, high):
    """A steady machine stops at the first interval (6 runs); at a CV near the target's half-width
    cells go on towards max. The stop rule itself never reads planning_cv."""
    target = Target(3, 9, 0.03, planning_cv=cv)
    assert low <= precision.expected_runs(target, slicing=False) <= high
    assert precision.expected_runs(target, slicing=True) == 3
    assert precision.expected_runs(Target(3, 3, planning_cv=cv), slicing=False) == 3
    assert precision.expected_runs(Target(3, 9, 0.03), slicing=False) == 6
    walls = [1.0, 1.08] * 3
    assert precision.stop_reason(walls, target, False) == precision.stop_reason(
        walls, Target(3, 9, 0.03), False
    )

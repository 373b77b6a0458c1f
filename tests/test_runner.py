"""The runner with a fake in-process strategy (tests/_fake_strategy.py, loaded as a plugin):
children, rows, timeouts, crashes, sessions and resume, without a single pool."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from _tiny import AUGMENTATIONS, N_IMAGES

from harness.config import parse_config
from harness.measure import runner
from harness.measure.interrupt import Interrupted, held, interruptible
from harness.measure.runner import run_sweep
from harness.measure.sweep import Sweep
from harness.plan.cells import plan_cells, plan_units, runnable
from harness.plan.estimate import Costs
from harness.rundir import store
from harness.schema import CellSpec
from harness.stats.precision import Target

FAKE = str(Path(__file__).with_name("_fake_strategy.py"))


def fake_sweep(run_dir: Path, images: Path, **changes: object) -> tuple[Sweep, list]:
    data = {
        "name": "fake",
        "kind": "strong",
        "images": {"count": N_IMAGES, "size": [160, 80]},
        "augmentations_per_image": AUGMENTATIONS,
        "plugins": [FAKE],
        "strategies": ["FAKE"],
        "saving": [True, False],
        "workers": [1, 2],
        "repeats": 2,
        "warmup": 1,
        "order": "sequential",
        **changes,
    }
    config = parse_config(data, run_dir / "fake.yaml")
    run_dir.mkdir(parents=True, exist_ok=True)
    costs = Costs({"160x80": 0.001}, {"160x80": 0.001}, {"160x80": 0.0})
    sweep = Sweep(config, run_dir, {(160, 80): images}, N_IMAGES, costs, 2)
    cells = [c for c in runnable(plan_cells(config)) if c.strategy == "FAKE"]
    return sweep, cells


def run_all(sweep: Sweep, cells: list) -> int:
    cfg = sweep.config
    return run_sweep(sweep, plan_units(cells, cfg.target, cfg.order, sweep.stored, 2), 1.0)


@pytest.mark.slow
def test_every_run_is_stored_with_its_own_phase_and_session(tmp_path, images):
    sweep, cells = fake_sweep(tmp_path / "run", images)
    assert run_all(sweep, cells) == 0
    runs = store.load_runs(sweep.run_dir)
    assert len(runs) == len(cells) * 2 and set(runs["status"]) == {"ok"}
    assert set(zip(runs["cell_id"], runs["repeat"], strict=True)) == {
        (c.id, r) for c in cells for r in (0, 1)
    }
    assert (runs["t_fake_phase_s"] == 0.5).all()  # a strategy's own phase, stored by name
    assert runs["t_session_startup_s"].notna().all()
    assert runs["tasks"].eq(N_IMAGES * AUGMENTATIONS).all()
    assert runs["t_dispatch_s"].isna().all()  # in-process: its CPU is the workers'
    assert runs["t_cpu_s"].gt(0).all() and runs["peak_rss_mb"].notna().all()


@pytest.mark.slow
def test_stored_units_keep_their_results_lines_without_the_traces(tmp_path, images):
    """tasks/ holds each run's trace once its unit is stored; the unit's results file keeps
    one slim line per run (recovery needs only lines runs.parquet lacks)."""
    sweep, cells = fake_sweep(tmp_path / "run", images)
    assert run_all(sweep, cells) == 0
    lines = [
        json.loads(line)
        for path in (sweep.run_dir / "cells").glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    assert sum(ln["kind"] == "recorded" for ln in lines) == len(cells) * 2
    assert not any("trace" in ln or "spans" in ln for ln in lines)
    tasks = store.load_tasks(sweep.run_dir)
    assert len(tasks[tasks["kind"].eq("task")]) == len(cells) * 2 * N_IMAGES * AUGMENTATIONS
    assert not list((sweep.run_dir / "cells").glob("*.tmp"))


def test_the_child_gets_a_typed_spec_with_the_plugin_and_options(tmp_path, images):
    sweep, cells = fake_sweep(tmp_path / "run", images, options={"FAKE": {"sleep_s": 0.01}})
    run_all(sweep, cells[:1])
    spec = CellSpec.read(next((sweep.run_dir / "cells").glob("*.spec.json")))
    assert spec.plugins == [FAKE]
    assert spec.job.options == {
        "sleep_s": 0.01, "fail": False, "hang": False, "die": False, "sleeps": []
    }
    assert spec.the_cell == cells[0]


@pytest.mark.slow
def test_interleaved_order_runs_round_robin(tmp_path, images):
    sweep, cells = fake_sweep(tmp_path / "run", images, order="interleaved")
    units = list(plan_units(cells, Target(2, 2), "interleaved", dict, 2))
    assert [u.cell for u in units] == cells + cells
    assert run_all(sweep, cells) == 0
    assert len(store.load_runs(sweep.run_dir)) == 2 * len(cells)


@pytest.mark.parametrize(
    ("option", "status", "error"),
    [
        ("fail", "failed", "the fake strategy was told to fail"),
        ("die", "failed", "child exited with status 3"),
        ("hang", "timeout", "timeout"),
    ],
)
def test_a_bad_run_is_recorded_and_the_sweep_goes_on(tmp_path, images, option, status, error):
    sweep, cells = fake_sweep(
        tmp_path / "run",
        images,
        options={"FAKE": {option: True}},
        # A child starts in seconds when torch is installed (albumentations imports it), so
        # only the hanging run gets a short timeout.
        cell_timeout_s=1.5 if option == "hang" else 60,
        workers=[1],
        saving=[True],
        warmup=0,
        repeats=1,
    )
    assert run_all(sweep, cells) == len(cells)
    runs = store.load_runs(sweep.run_dir)
    assert list(runs["status"]) == [status] * len(cells)
    assert error in runs["error"].iloc[0]


@pytest.mark.slow
def test_resume_runs_only_what_is_missing(tmp_path, images):
    sweep, cells = fake_sweep(tmp_path / "run", images, repeats=1)
    run_all(sweep, cells)
    sweep, cells = fake_sweep(tmp_path / "run", images, repeats=3)
    units = plan_units(cells, Target(3, 3), "sequential", sweep.stored, 2)
    assert [u.repeats for u in units] == [(1, 2)] * len(cells)
    run_all(sweep, cells)
    runs = store.load_runs(sweep.run_dir)
    assert sorted(runs.groupby("cell_id")["repeat"].apply(sorted).tolist()) == [[0, 1, 2]] * len(
        cells
    )


def test_a_signal_while_a_child_starts_kills_it_and_is_raised(tmp_path, monkeypatch):
    """The window where an interrupted sweep once left a child running: the signal arrives
    inside Popen, after the fork and before the parent knows the pid."""
    real, started = subprocess.Popen, []

    def signalled_popen(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        started.append(real(["sleep", "60"], start_new_session=True))
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler runs here, still inside "Popen"
        return started[-1]

    monkeypatch.setattr(runner.subprocess, "Popen", signalled_popen)
    with interruptible(), pytest.raises(Interrupted), open(tmp_path / "log", "w") as log:
        runner.start_child(tmp_path / "spec.json", log)
    assert started[0].poll() == -signal.SIGKILL, "the child that started must be killed"


def test_signals_inside_held_wait_for_the_outermost_block():
    with interruptible():
        with pytest.raises(Interrupted) as raised:
            with held() as signals:
                with held():
                    os.kill(os.getpid(), signal.SIGTERM)
                    time.sleep(0.05)
                assert signals == [signal.SIGTERM], "held, not raised, inside the block"
        assert raised.value.signum == signal.SIGTERM

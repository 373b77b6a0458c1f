"""Every strategy does the same work as sequential: same pixels, same number of outputs; and
the strategies' own rules (P_Q's savers, P_DYN's chunks, P_SHM's clean-up)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from _optional import require_strategy
from _tiny import AUGMENTATIONS, N_IMAGES
from _tiny import config as tiny_config

from experiments import strategies
from experiments.strategies import dyn, shm
from experiments.strategies.pq import savers_for
from experiments.workload import Job, list_images
from harness.config import Config
from harness.measure.verify import run_digest, verify_runs
from harness.plan.cells import plan_cells, runnable

# Every discovered strategy; P_DASK starts a cluster per call, tests/test_dask.py covers it.
REGISTRY = strategies.registry()
PARALLEL = sorted(set(REGISTRY) - {"sequential", "P_DASK"})
FORK = multiprocessing.get_context("fork")


def test_registry_lists_the_strategies():
    assert {
        *("sequential", "P_1", "P_2", "P_Q", "P_SHM", "P_DYN", "P_T", "P_Q2", "P_DASK"),
        *("P_TORCH", "P_JOBLIB"),
    } <= set(REGISTRY)
    for name, strategy in REGISTRY.items():
        assert strategy.name == name
        assert strategy.summary
        assert strategy.min_workers >= 1
    assert REGISTRY["P_Q"].saving_only and REGISTRY["P_Q"].min_workers == 2
    assert REGISTRY["P_T"].in_process and not REGISTRY["P_1"].in_process


CASES = [(name, w) for name in PARALLEL for w in (2, 3) if REGISTRY[name].min_workers <= w]


@pytest.mark.parametrize(("name", "workers"), CASES, ids=[f"{n}-W{w}" for n, w in CASES])
def test_digest_matches_sequential(images, reference, name, workers):
    require_strategy(name)
    assert run_digest(name, workers, images, tiny_config()) == reference


def test_digest_is_a_sha256(reference):
    assert len(reference) == 64 and int(reference, 16) >= 0


def test_sequential_digest_is_repeatable(images, reference):
    assert run_digest("sequential", 1, images, tiny_config()) == reference


def test_other_seed_gives_other_digest(images, reference):
    assert run_digest("sequential", 1, images, tiny_config(seed=1)) != reference


def test_parallel_strategy_with_other_seed_follows_the_seed(images):
    config = tiny_config(seed=7)
    assert run_digest("P_2", 2, images, config) == run_digest("sequential", 1, images, config)


def test_verify_runs_skip_pq_below_its_minimum():
    got = [run[:3] for run in verify_runs(tiny_config(workers=[1, 2]))]
    assert ("P_Q", 1, (160, 80)) not in got
    assert got[0] == ("sequential", 1, (160, 80))
    assert ("P_Q", 2, (160, 80)) in got


# ---------------------------------------------------------------- run(): outputs written


def _job(images: Path, out: Path, saving: bool) -> Job:
    out.mkdir()
    return Job(images, out, AUGMENTATIONS, 0, saving, "jpg", 1)


RUNS = [("sequential", 1)] + CASES


@pytest.mark.parametrize(("name", "workers"), RUNS, ids=[f"{n}-W{w}" for n, w in RUNS])
def test_run_with_saving_writes_every_output(images, tmp_path, name, workers):
    require_strategy(name)
    job = _job(images, tmp_path / "out", saving=True)
    phases = strategies.get(name).call(job, workers, FORK)
    n = len(list_images(images))
    written = sorted(p.name for p in job.out_dir.iterdir())
    assert len(written) == n * AUGMENTATIONS
    assert written == sorted(
        f"img{i:05d}_aug{k:05d}.jpg" for i in range(n) for k in range(AUGMENTATIONS)
    )
    assert all((job.out_dir / f).stat().st_size > 0 for f in written)
    assert phases.tasks == n * AUGMENTATIONS
    assert phases.augment > 0
    assert phases.read > 0


NOSAVE = [(n, w) for n, w in RUNS if not REGISTRY[n].saving_only]


@pytest.mark.parametrize(("name", "workers"), NOSAVE, ids=[f"{n}-W{w}" for n, w in NOSAVE])
def test_run_without_saving_writes_nothing(images, tmp_path, name, workers):
    require_strategy(name)
    job = _job(images, tmp_path / "out", saving=False)
    phases = strategies.get(name).call(job, workers, FORK)
    assert list(job.out_dir.iterdir()) == []
    assert phases.tasks == N_IMAGES * AUGMENTATIONS


def test_pq_run_without_saving_writes_nothing(images, tmp_path):
    job = _job(images, tmp_path / "out", saving=False)
    strategies.get("P_Q").call(job, 2, FORK)
    assert list(job.out_dir.iterdir()) == []


@pytest.mark.parametrize("name", ["P_Q", "P_Q2"])
def test_queue_strategies_report_saver_time_separately(images, tmp_path, name):
    job = _job(images, tmp_path / "out", saving=True)
    phases = strategies.get(name).call(job, 3, FORK)
    assert set(phases.extra) >= set(strategies.get(name).phases) == {"queue_put"}
    assert phases.save > 0


@pytest.mark.parametrize("name", ["P_Q2", "P_SHM"])
def test_a_failed_write_raises(images, tmp_path, name):
    job = Job(images, tmp_path / "missing", AUGMENTATIONS, 0, True, "jpg")
    with pytest.raises(OSError, match="cannot write"):
        strategies.get(name).call(job, 2, FORK)


@pytest.mark.parametrize(
    ("n_tasks", "workers", "chunksize"), [(1000, 8, 7), (200, 2, 6), (200, 8, 1), (3, 4, 1)]
)
def test_dyn_chunksize_rule(n_tasks, workers, chunksize):
    assert dyn.chunksize_for(n_tasks, workers) == chunksize


# ---------------------------------------------------------------- P_Q's savers rule


@pytest.mark.parametrize(
    ("workers", "savers"),
    [(2, 1), (3, 1), (4, 1), (5, 2), (8, 2), (9, 2), (10, 3), (16, 3), (17, 4), (32, 5), (64, 7)],
)
def test_pq_savers_for(workers, savers):
    assert savers_for(workers) == savers


@pytest.mark.parametrize("workers", range(2, 130))
def test_pq_leaves_at_least_one_augmenter(workers):
    assert 1 <= savers_for(workers) < workers


# ---------------------------------------------------------------- plan_cells skips


def test_skip_reason():
    assert REGISTRY["P_1"].skip_reason(1, False) is None
    assert REGISTRY["P_2"].skip_reason(1, True) is None
    assert REGISTRY["P_Q"].skip_reason(2, True) is None
    assert "only saves" in REGISTRY["P_Q"].skip_reason(2, False)
    assert "at least 2 workers" in REGISTRY["P_Q"].skip_reason(1, True)


def test_plan_cells_skips_pq_for_no_saving_and_one_worker():
    config = tiny_config(workers=[1, 2], strategies=["P_1", "P_2", "P_Q"], saving=[True, False])
    cells = plan_cells(config)
    assert len(cells) == 2 * (1 + 3 * 2)
    by_key = {(c.strategy, c.workers, c.saving): c for c in cells}
    assert len(by_key) == len(cells)
    for saving in (True, False):
        base = by_key[("sequential", 1, saving)]
        assert base.skip is None and base.is_baseline
    assert "needs at least 2 workers" in by_key[("P_Q", 1, True)].skip
    assert "only saves" in by_key[("P_Q", 2, False)].skip
    assert by_key[("P_Q", 1, False)].skip  # skipped, whichever reason comes first
    assert by_key[("P_Q", 2, True)].skip is None
    for name in ("P_1", "P_2"):
        for w in (1, 2):
            for saving in (True, False):
                assert by_key[(name, w, saving)].skip is None
    todo = runnable(cells)
    assert len(todo) == len(cells) - 3
    assert all(c.skip is None for c in todo)
    # run order: per saving mode, the baseline first
    assert [c.saving for c in cells] == [True] * 7 + [False] * 7
    assert cells[0].is_baseline and cells[7].is_baseline


def test_plan_cell_ids_are_unique_and_readable():
    cells = plan_cells(tiny_config(workers=[1, 2]))
    ids = [c.id for c in cells]
    assert len(set(ids)) == len(ids)
    assert "P_Q-w2-save-160x80" in ids
    assert "sequential-w1-nosave-160x80" in ids


def test_plan_cells_weak_uses_point_sizes():
    config = Config.model_validate(
        {
            "name": "w",
            "kind": "weak",
            "images": {"size": [80, 80]},
            "saving": [True],
            "points": [{"workers": 2, "size": [160, 80]}, {"workers": 4, "size": [160, 160]}],
        }
    )
    cells = plan_cells(config)
    assert (cells[0].strategy, cells[0].width, cells[0].height) == ("sequential", 80, 80)
    assert {(c.workers, c.width, c.height) for c in cells[1:]} == {(2, 160, 80), (4, 160, 160)}


# ---------------------------------------------------------------- P_SHM: no leaked shared memory

needs_dev_shm = pytest.mark.skipif(not shm.DEV_SHM.is_dir(), reason="needs Linux /dev/shm")


def shm_blocks(pid: int) -> list[Path]:
    return sorted(shm.DEV_SHM.glob(f"{shm.SHM_PREFIX}{pid}-*"))


@needs_dev_shm
def test_shm_leaves_no_block_after_a_run(images, tmp_path):
    shm.STRATEGY.call(Job(images, tmp_path, AUGMENTATIONS, 0, True, "jpg"), 2, FORK)
    assert shm_blocks(os.getpid()) == []


@needs_dev_shm
def test_shm_unlinks_when_a_task_raises(images, tmp_path):
    with pytest.raises(OSError):
        shm.STRATEGY.call(Job(images, tmp_path / "missing", AUGMENTATIONS, 0, True, "jpg"), 2, FORK)
    assert shm_blocks(os.getpid()) == []


@needs_dev_shm
def test_shm_cleanup_removes_a_killed_process_blocks(tmp_path):
    block = shm.DEV_SHM / shm.block_name(999_999_999)
    block.write_bytes(b"x")
    shm.STRATEGY.cleanup(999_999_999)
    assert not block.exists()


# Run under the watchdog hook, as every measured run and `verify` are: the one detector.
KILL_SCRIPT = """
import multiprocessing, sys
from pathlib import Path
from experiments.strategies import shm
from experiments.workload import Job, init_process
from harness.measure import hooks
from harness.measure.watchdog import Watchdog
init_process(1)
job = Job(Path(sys.argv[1]), Path(sys.argv[2]), 2000, 0, True)
with hooks.around([Watchdog()]):
    shm.STRATEGY.call(job, 2, multiprocessing.get_context("fork"))
"""


def wait_for(predicate, timeout: float = 20.0):  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := predicate():
            return found
        time.sleep(0.01)
    raise AssertionError("timed out waiting")


def busiest_worker(pid: int) -> psutil.Process:
    """The pool worker with the most CPU time: surely past its initializer and holding tasks."""
    workers = [
        c for c in psutil.Process(pid).children() if "resource_tracker" not in " ".join(c.cmdline())
    ]
    return max(workers, key=lambda c: sum(c.cpu_times()[:2]))


@needs_dev_shm
def test_shm_unlinks_when_a_worker_is_killed(images, tmp_path):
    """SIGKILL one pool worker mid-run: the watchdog raises WorkerDied (no hang) and run()'s
    finally unlinks the block."""
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(images), str(tmp_path)],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(lambda: len(list(tmp_path.iterdir())) >= 20)  # both workers are augmenting
        busiest_worker(proc.pid).send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # its resource tracker too: clean up by hand
            proc.wait()
        leaked = shm_blocks(proc.pid)
        for block in leaked:
            block.unlink()
    assert proc.returncode != 0
    assert "WorkerDied" in err
    assert leaked == []
    assert (
        "leaked shared_memory" not in err
    )  # run()'s finally unlinked it, not the resource tracker

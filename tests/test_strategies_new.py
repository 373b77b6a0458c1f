"""P_SHM, P_DYN, P_T, P_Q2: the sequential digest, outputs on/off, and no leaked shared memory."""

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
from _tiny import AUGMENTATIONS, N_IMAGES, config

from experiments import strategies
from experiments.strategies import dyn, shm
from experiments.workload import Job
from harness.verify import run_digest

NEW = ["P_SHM", "P_DYN", "P_T", "P_Q2"]
FORK = multiprocessing.get_context("fork")
DEV_SHM = Path("/dev/shm")




def shm_blocks(pid: int) -> list[Path]:
    return sorted(DEV_SHM.glob(f"{shm.SHM_PREFIX}{pid}-*"))


@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("name", NEW)
def test_digest_matches_sequential(images, reference, name, workers):
    assert run_digest(name, workers, images, config()) == reference


@pytest.mark.parametrize("saving", [True, False])
@pytest.mark.parametrize("name", NEW)
def test_outputs_written_only_when_saving(images, tmp_path, name, saving):
    if saving is False and strategies.get(name).SAVING_ONLY:
        pytest.skip(f"{name} only saves")
    job = Job(images, tmp_path, AUGMENTATIONS, 0, saving, "jpg")
    phases = strategies.get(name).run(job, 2, FORK)
    assert len(list(tmp_path.iterdir())) == (N_IMAGES * AUGMENTATIONS if saving else 0)
    assert phases.tasks == N_IMAGES * AUGMENTATIONS
    assert phases.read > 0


def test_q2_reports_saver_and_queue_time(images, tmp_path):
    phases = strategies.get("P_Q2").run(Job(images, tmp_path, AUGMENTATIONS, 0, True, "jpg"), 3, FORK)
    assert phases.save > 0 and "queue_put" in phases.extra


def test_q2_failed_write_raises(images, tmp_path):
    job = Job(images, tmp_path / "missing", AUGMENTATIONS, 0, True, "jpg")
    with pytest.raises(OSError, match="cannot write"):
        strategies.get("P_Q2").run(job, 2, FORK)


@pytest.mark.parametrize(("n_tasks", "workers", "chunksize"), [(1000, 8, 7), (200, 2, 6), (200, 8, 1), (3, 4, 1)])
def test_dyn_chunksize_rule(n_tasks, workers, chunksize):
    assert dyn.chunksize_for(n_tasks, workers) == chunksize


@pytest.mark.skipif(not DEV_SHM.is_dir(), reason="needs Linux /dev/shm")
def test_shm_leaves_no_block_after_a_run(images, tmp_path):
    shm.run(Job(images, tmp_path, AUGMENTATIONS, 0, True, "jpg"), 2, FORK)
    assert shm_blocks(os.getpid()) == []


@pytest.mark.skipif(not DEV_SHM.is_dir(), reason="needs Linux /dev/shm")
def test_shm_unlinks_when_a_task_raises(images, tmp_path):
    job = Job(images, tmp_path / "missing", AUGMENTATIONS, 0, True, "jpg")
    with pytest.raises(OSError):
        shm.run(job, 2, FORK)
    assert shm_blocks(os.getpid()) == []


KILL_SCRIPT = """
import multiprocessing, sys
from pathlib import Path
from experiments.strategies import shm
from experiments.workload import Job, init_process
init_process(1)
shm.run(Job(Path(sys.argv[1]), Path(sys.argv[2]), 2000, 0, True), 2, multiprocessing.get_context("fork"))
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
    workers = [c for c in psutil.Process(pid).children() if "resource_tracker" not in " ".join(c.cmdline())]
    return max(workers, key=lambda c: sum(c.cpu_times()[:2]))


@pytest.mark.skipif(not DEV_SHM.is_dir(), reason="needs Linux /dev/shm")
def test_shm_unlinks_when_a_worker_is_killed(images, tmp_path):
    """SIGKILL one pool worker mid-run: run() must raise WorkerDied (not hang) and unlink the block."""
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(images), str(tmp_path)],
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
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
    assert "leaked shared_memory" not in err  # run()'s finally unlinked it, not the resource tracker


def test_threads_are_not_counted_as_an_extra_busy_process():
    from harness.checks import processes_for

    assert processes_for("P_T", 2, main_works=True) == 2  # its main-process CPU is the threads' own
    assert processes_for("P_1", 2, main_works=True) == 3
    assert processes_for("sequential", 1, main_works=True) == 1

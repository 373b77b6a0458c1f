"""A worker that dies at any moment (during pool start-up, or idle waiting for work)
fails its run within 5 s, for every process-pool strategy, under `verify` as in a measured run,
and nothing the run started is left running. Each death is a real SIGKILL, injected where each
executor starts or idles its workers (tests/_kill_injection.py); the watchdog
(harness/measure/watchdog.py) is the one detector. The seconds from kill to failure are recorded
as the property `detection_s` (pytest --junitxml), the source of docs/FAULTS.md's table."""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.pool
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import yaml
from _kill_injection import MARKER_ENV, Kill, idle_kill, idle_pool_kill, startup_kill
from _optional import require_strategy
from _tiny import config

from experiments import pools, strategies
from harness import cli
from harness.measure.verify import run_digest
from harness.measure.watchdog import WorkerDied
from harness.rundir import store

# Every strategy whose workers are processes it starts and that a death would hang: the
# contract says so (not in-process, no executor restarting workers); plugins join in.
IN_SCOPE = sorted(
    name
    for name, s in strategies.registry().items()
    if not s.in_process and not s.restarts_workers
)
WITH_SAVERS = [n for n in IN_SCOPE if (s := strategies.get(n).schedule) and s.savers]
DEADLINE_S = 5.0  # the bound asked: the run fails within 5 s of the death
BUSY_S = 2 * DEADLINE_S  # main is busy this long after an idle kill: only a watchdog ends it


def fails_at(strategy: str, images: Path) -> float:
    """Run the strategy as `verify` does; the time.monotonic() at which it raised WorkerDied.
    Nothing the run started may outlive it (a resource tracker is kept for the process)."""
    before = {p.pid for p in psutil.Process().children()}
    with pytest.raises(WorkerDied):
        run_digest(strategy, 2, images, config())
    failed = time.monotonic()
    deadline = failed + DEADLINE_S  # a process sent SIGTERM takes a moment to end
    while (left := _running(before)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"processes of the failed run still running: {left}"
    return failed


def _running(before: set[int]) -> list[str]:
    found = []
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):  # ended meanwhile
            command = " ".join(child.cmdline())
            if child.pid not in before and child.status() != psutil.STATUS_ZOMBIE and (
                "resource_tracker" not in command
            ):
                found.append(f"{child.pid} {command[:80]}")
    return found


def test_the_scope_is_every_process_pool_strategy():
    assert {"P_1", "P_2", "P_Q", "P_Q2", "P_SHM", "P_DYN", "P_TORCH", "P_JOBLIB"} <= set(IN_SCOPE)
    assert {"P_Q", "P_Q2"} <= set(WITH_SAVERS)


@pytest.mark.parametrize("strategy", IN_SCOPE)
@pytest.mark.slow
def test_death_during_pool_startup_fails_the_run(
    strategy, images, tmp_path, monkeypatch, record_property
):
    """The first worker is killed as it starts (a pool's or the DataLoader's before its
    initializer; loky's while its interpreter boots): before the watchdog's first poll, and
    with no task lost. The run must still fail."""
    require_strategy(strategy)
    marker = tmp_path / "killed"
    monkeypatch.setenv(MARKER_ENV, str(marker))
    monkeypatch.setattr(*startup_kill(strategy))
    failed = fails_at(strategy, images)
    assert marker.exists(), "the injection did not fire"
    record_property("detection_s", failed - float(marker.read_text()))
    assert failed - float(marker.read_text()) < DEADLINE_S


def _assert_fails_fast(
    strategy: str, images: Path, kills: list[Kill], record: Callable[[str, object], None]
) -> None:
    failed = fails_at(strategy, images)
    assert kills, "the injection did not fire"
    record("detection_s", failed - kills[0].at)
    assert failed - kills[0].at < DEADLINE_S


@pytest.mark.parametrize("strategy", IN_SCOPE)
@pytest.mark.slow
def test_idle_worker_death_fails_the_run(strategy, images, monkeypatch, record_property):
    """Once the executor started its workers and they wait for work, before main hands any
    out, one is killed; main then stays busy."""
    require_strategy(strategy)
    kills: list[Kill] = []
    monkeypatch.setattr(*idle_kill(strategy, kills, BUSY_S))
    _assert_fails_fast(strategy, images, kills, record_property)


def _saver(pool: multiprocessing.pool.Pool, before: set[int]) -> int:
    """A saver process: a child this run started that is neither a pool worker nor a Manager's
    server."""
    workers = {p.pid for p in pool._pool}
    found = [
        p.pid
        for p in multiprocessing.active_children()
        if p.pid not in workers | before and "Manager" not in p.name
    ]
    assert found, "no saver process to kill"
    return found[0]


@pytest.mark.parametrize("strategy", WITH_SAVERS)
@pytest.mark.slow
def test_idle_saver_death_fails_the_run(strategy, images, monkeypatch, record_property):
    """A saver waiting on its queue is killed: nothing replaces it, so its queue would never be
    read again. The watchdog sees it exit by SIGKILL."""
    before = {p.pid for p in multiprocessing.active_children()}
    kills: list[Kill] = []
    monkeypatch.setattr(*idle_pool_kill(lambda pool: _saver(pool, before), kills, BUSY_S))
    _assert_fails_fast(strategy, images, kills, record_property)


@pytest.mark.slow
def test_measured_run_with_a_startup_death_fails(images, tmp_path, monkeypatch):
    """The same start-up deaths inside a measured run's cell processes, one per cell (the
    injection is loaded there as a plugin): each strategy's run fails with WorkerDied, the sweep
    goes on, exit status 1."""
    for name in IN_SCOPE:
        require_strategy(name)
    monkeypatch.setenv(MARKER_ENV, str(tmp_path / "killed"))
    plugin = os.path.join(os.path.dirname(__file__), "_kill_injection.py")
    cfg = {
        "name": "deaths",
        "kind": "strong",
        "images": {"input_dir": str(images)},
        "augmentations_per_image": 3,
        "strategies": IN_SCOPE,
        "saving": [True],
        "workers": [2],
        "repeats": 1,
        "order": "sequential",  # the plain path; paired rounds have tests of their own
        "warmup": 0,
        "cell_timeout_s": 60,  # a missed death would otherwise wait for 300 s
        "plugins": [plugin],
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert cli.main(["run", str(path), "--out", str(out)]) == 1
    runs = store.load_runs(out).set_index("strategy")
    assert runs.loc["sequential", "status"] == "ok"
    for name in IN_SCOPE:
        assert runs.loc[name, "status"] == "failed", name
        assert "WorkerDied" in runs.loc[name, "error"], (name, runs.loc[name, "error"])
    assert len(list(tmp_path.glob("killed.*"))) == len(IN_SCOPE)


PICKLED: list[int] = []  # SlowToPickle objects pickled so far, in the pool's task handler
SECOND_PICKLING = threading.Event()


class SlowToPickle:
    """A task argument that takes 0.5 s to pickle and pickles to 1 MB, more than a pipe holds."""

    def __reduce__(self) -> tuple:
        PICKLED.append(1)
        if len(PICKLED) == 2:
            SECOND_PICKLING.set()
        time.sleep(0.5)
        return (bytes, (b"x" * 2**20,))


def _hold(_: object) -> None:
    time.sleep(30)


def test_a_pool_ends_while_its_task_handler_pickles_a_task():
    """The hang a killed P_1 worker caused (the cell ran into its timeout): the pool is told to
    end while its task handler pickles the next task, and the pipe is empty for that moment.
    The task must still be drained once sent, or terminate() waits forever."""
    pool = pools.Pool(1, context=multiprocessing.get_context("fork"))
    pool.map_async(_hold, [SlowToPickle() for _ in range(3)], chunksize=1)
    assert SECOND_PICKLING.wait(10), "the second task never started pickling"
    ending = threading.Thread(target=pool.terminate, daemon=True)
    ending.start()
    ending.join(15)
    assert not ending.is_alive(), "Pool.terminate() hung on a task sent after the drain"

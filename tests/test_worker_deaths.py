"""Issue 12: a worker that dies at any moment (during pool start-up, or idle waiting for work)
fails its run within seconds, for every process-pool strategy, under `verify` as in a measured
run. Each death is a real SIGKILL; the watchdog (harness/watchdog.py) is the one detector."""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import os
import signal
import time

import pytest
import yaml
from _kill_injection import MARKER_ENV, dying_worker
from _tiny import config

from experiments import strategies
from harness import cli, store
from harness.verify import run_digest
from harness.watchdog import WorkerDied

# Every strategy whose workers are processes it starts and that a death would hang: the
# contract says so (not in-process, no executor restarting workers); plugins join in.
IN_SCOPE = sorted(
    name
    for name, s in strategies.registry().items()
    if not s.in_process and not s.restarts_workers
)
# The injection patches multiprocessing.pool. The DataLoader's workers (torch's own loop) and
# loky's (fresh interpreters) are out of its reach: their deaths at start-up and while idle are
# not tested yet (a kill mid-run is, in tests/test_practitioners.py).
NOT_INJECTABLE = {"P_TORCH", "P_JOBLIB"}
INJECTABLE = [name for name in IN_SCOPE if name not in NOT_INJECTABLE]
WITH_SAVERS = [n for n in INJECTABLE if (s := strategies.get(n).schedule) and s.savers]
DEADLINE_S = 5.0  # the bound: the run fails within 5 s of the death
IDLE_S = 0.3  # every worker has started and waits for work by then


def fails_fast(strategy: str, images) -> float:  # noqa: ANN001
    """Run the strategy as `verify` does; the seconds until it raised WorkerDied."""
    start = time.monotonic()
    with pytest.raises(WorkerDied):
        run_digest(strategy, 2, images, config())
    return time.monotonic() - start


def test_the_scope_is_every_process_pool_strategy():
    assert {"P_1", "P_2", "P_Q", "P_Q2", "P_SHM", "P_DYN"} <= set(IN_SCOPE)
    assert {"P_Q", "P_Q2"} <= set(WITH_SAVERS)


@pytest.mark.parametrize("strategy", INJECTABLE)
def test_death_during_pool_startup_fails_the_run(strategy, images, tmp_path, monkeypatch):
    """The first pool worker is killed before its initializer ran: before the watchdog's
    first poll, and with no task lost. The run must still fail."""
    monkeypatch.setenv(MARKER_ENV, str(tmp_path / "killed"))
    monkeypatch.setattr(multiprocessing.pool, "worker", dying_worker)
    assert fails_fast(strategy, images) < DEADLINE_S
    assert (tmp_path / "killed").exists(), "the injection did not fire"


def _kill_while_idle(monkeypatch, pick) -> list[int]:  # noqa: ANN001
    """After the pool started, while every process waits for work and main has not yet handed
    any out, SIGKILL the process pick(pool, children before the run) chooses; main then stays
    busy for a while."""
    real_init = multiprocessing.pool.Pool.__init__
    killed: list[int] = []
    before = {p.pid for p in multiprocessing.active_children()}

    def init_then_kill(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        real_init(self, *args, **kwargs)
        if killed:
            return
        time.sleep(IDLE_S)
        killed.append(pick(self, before))
        os.kill(killed[-1], signal.SIGKILL)
        time.sleep(2 * DEADLINE_S)  # main busy: only the watchdog can end this early

    monkeypatch.setattr(multiprocessing.pool.Pool, "__init__", init_then_kill)
    return killed


@pytest.mark.parametrize("strategy", INJECTABLE)
def test_idle_pool_worker_death_fails_the_run(strategy, images, monkeypatch):
    killed = _kill_while_idle(monkeypatch, lambda pool, before: pool._pool[0].pid)
    assert fails_fast(strategy, images) < DEADLINE_S + IDLE_S
    assert killed


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
def test_idle_saver_death_fails_the_run(strategy, images, monkeypatch):
    """A saver waiting on its queue is killed: nothing replaces it, so its queue would never be
    read again. The watchdog sees it exit by SIGKILL."""
    killed = _kill_while_idle(monkeypatch, _saver)
    assert fails_fast(strategy, images) < DEADLINE_S + IDLE_S
    assert killed


def test_measured_run_with_a_startup_death_fails(images, tmp_path, monkeypatch):
    """The same start-up death inside a measured run's cell process (the injection is loaded
    there as a plugin): that run fails with WorkerDied, the sweep goes on, exit status 1."""
    monkeypatch.setenv(MARKER_ENV, str(tmp_path / "killed"))
    plugin = os.path.join(os.path.dirname(__file__), "_kill_injection.py")
    cfg = {
        "name": "deaths",
        "kind": "strong",
        "images": {"input_dir": str(images)},
        "augmentations_per_image": 3,
        "strategies": ["P_2"],
        "saving": [True],
        "workers": [2],
        "repeats": 1,
        "warmup": 0,
        "plugins": [plugin],
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert cli.main(["run", str(path), "--out", str(out)]) == 1
    runs = store.load_runs(out).set_index("strategy")
    assert runs.loc["sequential", "status"] == "ok"
    assert runs.loc["P_2", "status"] == "failed"
    assert "WorkerDied" in runs.loc["P_2", "error"]
    assert (tmp_path / "killed").exists()

"""Real SIGKILLs of the processes a strategy starts, at the moments the watchdog once missed.

Each strategy's executor starts its workers its own way, so each has its own place to patch:
multiprocessing.Pool's `worker`, the DataLoader's `_worker_loop` (inherited by its forked
workers), and loky's `Popen._launch` (its workers are fresh interpreters: they are killed from
the parent, as soon as they exist).

Used two ways: imported by tests/test_worker_deaths.py (in-process, under `verify`'s code path),
and loaded as a plugin (`plugins: [tests/_kill_injection.py]`) so that a measured run's cell
process kills its strategy's first worker during start-up. The plugin acts only in a cell process
(harness/measure/child.py) and only while AUGSCALE_TEST_KILL_MARKER names a file: exactly one
worker per cell dies, the replacement the pool starts lives.
"""

from __future__ import annotations

import json
import multiprocessing.pool
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from experiments.contract import Strategy
from experiments.strategies import base_name
from experiments.workload import Phases

MARKER_ENV = "AUGSCALE_TEST_KILL_MARKER"
STILL_S = 0.3  # a worker whose CPU time has not moved for this long is waiting for work
Patch = tuple[object, str, Callable[..., Any]]  # setattr's arguments


def kill_first(pid: int) -> None:
    """SIGKILL process pid if this is the first process to create the marker file (exactly one
    does), writing the time of the kill into it (time.monotonic(): one clock for every process)."""
    marker = os.environ.get(MARKER_ENV)
    if not marker:
        return
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, repr(time.monotonic()).encode())
    os.close(fd)
    os.kill(pid, signal.SIGKILL)


def dying(entry: Callable[..., Any]) -> Callable[..., Any]:
    """A worker's entry function, except that the first worker to run it SIGKILLs itself as it
    starts, before its initializer: a death during start-up."""

    def die_first(*args: object, **kwargs: object) -> object:
        kill_first(os.getpid())
        return entry(*args, **kwargs)

    return die_first


def killed_at_launch(launch: Callable[..., None]) -> Callable[..., None]:
    """loky's Popen._launch, except that the first worker launched is SIGKILLed by the parent as
    soon as it exists, while its interpreter starts and before the next worker is launched."""

    def launch_then_kill(popen: Any, process: object) -> None:
        launch(popen, process)
        kill_first(popen.pid)

    return launch_then_kill


def startup_kill(strategy: str) -> Patch:
    """Where to patch so that the first worker `strategy` starts dies during start-up."""
    if strategy == "P_TORCH":
        from torch.utils.data._utils import worker  # lazy: torch is optional, and slow to import

        return worker, "_worker_loop", dying(worker._worker_loop)
    if strategy == "P_JOBLIB":
        from joblib.externals.loky.backend.popen_loky_posix import Popen  # lazy: joblib optional

        return Popen, "_launch", killed_at_launch(Popen._launch)
    return multiprocessing.pool, "worker", dying(multiprocessing.pool.worker)


@dataclass
class Kill:
    pid: int
    at: float  # time.monotonic() just after the SIGKILL


def wait_still(pid: int, timeout_s: float = 60.0) -> None:
    """Return once process pid has used no CPU for STILL_S: started, and waiting for work."""
    process, last, still_since = psutil.Process(pid), -1.0, time.monotonic()
    deadline = still_since + timeout_s
    while time.monotonic() < deadline:
        used = sum(process.cpu_times()[:2])
        if used != last:
            last, still_since = used, time.monotonic()
        elif time.monotonic() - still_since >= STILL_S:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} never stopped using CPU")


def killing_idle(
    method: Callable[..., Any],
    pick: Callable[[Any], int],
    kills: list[Kill],
    busy_s: float,
    after: bool = False,
) -> Callable[..., Any]:
    """An executor's method, except that on its first call, before it (or after it: `after`),
    the process pick(executor) chooses is SIGKILLed once it waits for work; the calling thread
    then stays busy for busy_s, so that only a watchdog can end the run earlier."""

    def kill_once(executor: Any) -> None:
        if kills:
            return
        pid = pick(executor)
        wait_still(pid)
        os.kill(pid, signal.SIGKILL)
        kills.append(Kill(pid, time.monotonic()))
        time.sleep(busy_s)

    def kill_then_call(executor: Any, *args: object, **kwargs: object) -> object:
        if not after:
            kill_once(executor)
            return method(executor, *args, **kwargs)
        found = method(executor, *args, **kwargs)
        kill_once(executor)
        return found

    return kill_then_call


def _first_loky_worker(executor: Any) -> int:
    executor._ensure_executor_running()  # loky starts its workers with the first task: start
    return next(iter(executor._processes))  # them now, with no task given out yet


def idle_kill(strategy: str, kills: list[Kill], busy_s: float) -> Patch:
    """Where to patch so that one worker of `strategy` is SIGKILLed after its executor started
    every worker and before main has handed out any work (main then stays busy busy_s)."""
    if strategy == "P_TORCH":
        from torch.utils.data.dataloader import (  # lazy: torch is optional
            _MultiProcessingDataLoaderIter as Loader,
        )

        # Its workers are up once the iterator is made; its first index goes out here.
        method = killing_idle(Loader._try_put_index, lambda it: it._workers[0].pid, kills, busy_s)
        return Loader, "_try_put_index", method
    if strategy == "P_JOBLIB":
        from joblib.externals.loky.process_executor import (  # lazy: joblib is optional
            ProcessPoolExecutor,
        )

        method = killing_idle(ProcessPoolExecutor.submit, _first_loky_worker, kills, busy_s)
        return ProcessPoolExecutor, "submit", method
    return idle_pool_kill(lambda pool: pool._pool[0].pid, kills, busy_s)


def idle_pool_kill(pick: Callable[[Any], int], kills: list[Kill], busy_s: float) -> Patch:
    """The same for multiprocessing.Pool, whose workers are up once it is made; pick(pool)."""
    Pool = multiprocessing.pool.Pool
    return Pool, "__init__", killing_idle(Pool.__init__, pick, kills, busy_s, after=True)


def _cell_strategy() -> str | None:
    """The strategy of this cell process (measure/child.py, whose argument is the cell's spec);
    None in any other process (the parent sweep, pytest)."""
    if Path(sys.argv[0]).name != "child.py":
        return None
    return base_name(json.loads(Path(sys.argv[-1]).read_text())["cell"]["strategy"])


_strategy = _cell_strategy()
if _strategy is not None and os.environ.get(MARKER_ENV):
    os.environ[MARKER_ENV] += f".{os.getpid()}"  # one death per cell
    setattr(*startup_kill(_strategy))


def _run(job: object, workers: int, ctx: object) -> Phases:
    return Phases()


STRATEGY = Strategy(
    name="KILL_INJECTION",
    summary="not measured: this plugin kills a strategy's first worker during start-up in "
    "cell processes",
    run=_run,
    in_process=True,
)

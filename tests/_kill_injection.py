"""Real SIGKILLs of the processes a strategy starts, at the moments the watchdog once missed.

Used two ways: imported by tests/test_worker_deaths.py (in-process, under `verify`'s code path),
and loaded as a plugin (`plugins: [tests/_kill_injection.py]`) so that a measured run's child
process kills its first pool worker during start-up. The plugin acts only in a cell process
(harness/child.py) and only while AUGSCALE_TEST_KILL_MARKER names a file not yet made: exactly
one worker dies, the replacement the pool starts lives.
"""

from __future__ import annotations

import multiprocessing.pool
import os
import signal
import sys
from pathlib import Path

from experiments.contract import Strategy
from experiments.workload import Phases

MARKER_ENV = "AUGSCALE_TEST_KILL_MARKER"
_real_worker = multiprocessing.pool.worker


def first_to_claim(marker: str | None) -> bool:
    """True in exactly one process: the one that creates the marker file."""
    if not marker:
        return False
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def dying_worker(*args: object, **kwargs: object) -> object:
    """multiprocessing.pool.worker, but the first pool worker SIGKILLs itself as it starts,
    before its initializer: a death during pool start-up."""
    if first_to_claim(os.environ.get(MARKER_ENV)):
        os.kill(os.getpid(), signal.SIGKILL)
    return _real_worker(*args, **kwargs)


if Path(sys.argv[0]).name == "child.py":  # a cell process: never the parent sweep or pytest
    multiprocessing.pool.worker = dying_worker


def _run(job: object, workers: int, ctx: object) -> Phases:
    return Phases()


STRATEGY = Strategy(
    name="KILL_INJECTION",
    summary="not measured: this plugin kills a pool worker during start-up in cell processes",
    run=_run,
    in_process=True,
)

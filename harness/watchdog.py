"""The one dead-worker detector, for measured runs, `verify` and the tests alike: watches the
processes a strategy starts during one call, from a thread of the calling process.

multiprocessing.Pool replaces a worker that dies (SIGKILL, the OOM killer) and waits forever for
the task it lost. A replacement shows as a child process vanishing and a new one appearing
mid-run (a Pool never does that otherwise: it starts workers first and only ends them at the
close). The watchdog then sends SIGUSR1 to the cell process, whose handler raises WorkerDied in
the main thread, so the run fails at once with a clear message instead of hanging until the
cell's timeout. It also samples the peak resident memory of the main process and its largest child.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import psutil

INTERVAL_S = 0.05  # a poll reads /proc/self/task/*/children: ~0.01 ms, ~0.1% of one core at 20 Hz
RSS_EVERY = 5  # polls between memory samples (psutil, ~0.02 ms per process)


class WorkerDied(RuntimeError):
    """A worker process died mid-run; multiprocessing.Pool would otherwise wait forever for its
    task."""


class Watchdog:
    """A hook (harness/hooks.py): enter just before the call, leave just after."""

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.died: list[int] = []
        self.peak_main_mb = 0.0
        self.peak_child_mb = 0.0
        self.cpu_s = 0.0  # CPU time of the watchdog thread itself: its whole cost to the run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Watchdog:
        self._previous = signal.signal(signal.SIGUSR1, self._raise)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        signal.signal(signal.SIGUSR1, self._previous)

    @property
    def peak_rss_mb(self) -> float:
        return self.peak_main_mb + self.peak_child_mb

    def columns(self) -> dict[str, float]:
        return {"peak_rss_mb": self.peak_rss_mb}

    def _raise(self, signum: int, frame: object) -> None:
        raise WorkerDied(
            f"a worker process (pid {', '.join(map(str, self.died))}) died during the run "
            "(killed by a signal or the OOM killer); the pool replaced it and its task was lost"
        )

    def _watch(self) -> None:
        start = time.thread_time()
        try:
            self._poll_until_stopped()
        finally:
            self.cpu_s = time.thread_time() - start

    def _poll_until_stopped(self) -> None:
        seen: set[int] = set()
        lost: set[int] = set()
        polls = 0
        while not self._stop.wait(INTERVAL_S):
            pids = child_pids()
            if polls % RSS_EVERY == 0:
                self._sample_rss(pids)
            polls += 1
            lost |= seen - pids
            if lost and pids - seen and not self.died:
                self.died = sorted(lost)
                os.kill(os.getpid(), signal.SIGUSR1)
            seen = pids

    def _sample_rss(self, pids: set[int]) -> None:
        try:
            self.peak_main_mb = max(self.peak_main_mb, self.me.memory_info().rss / 2**20)
        except psutil.Error:
            pass
        for pid in pids:
            try:
                self.peak_child_mb = max(
                    self.peak_child_mb, psutil.Process(pid).memory_info().rss / 2**20
                )
            except psutil.Error:
                pass


def child_pids() -> set[int]:
    """Direct children of this process. Every thread has its own list (Pool's handler thread
    forks the replacement workers), so all are read; psutil's scan of /proc is the fallback."""
    pids: set[int] = set()
    try:
        for task in Path("/proc/self/task").iterdir():
            pids.update(int(p) for p in (task / "children").read_text().split())
    except OSError:
        return {c.pid for c in psutil.Process().children()}
    return pids

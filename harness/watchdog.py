"""Watches the processes a strategy starts, during one timed run, from a thread of the cell process.

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

import psutil

INTERVAL_S = 0.25


class WorkerDied(RuntimeError):
    pass


class Watchdog:
    def __init__(self) -> None:
        self.me = psutil.Process()
        self.died: list[int] = []
        self.peak_main_mb = 0.0
        self.peak_child_mb = 0.0
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

    def _raise(self, signum: int, frame: object) -> None:
        raise WorkerDied(f"a worker process (pid {', '.join(map(str, self.died))}) died during the run "
                         "(killed by a signal or the OOM killer); the pool replaced it and its task was lost")

    def _watch(self) -> None:
        seen: set[int] = set()
        lost: set[int] = set()
        while not self._stop.wait(INTERVAL_S):
            pids = {c.pid for c in self._sample()}
            lost |= seen - pids
            if lost and pids - seen and not self.died:
                self.died = sorted(lost)
                os.kill(os.getpid(), signal.SIGUSR1)
            seen = pids

    def _sample(self) -> list[psutil.Process]:
        try:
            self.peak_main_mb = max(self.peak_main_mb, self.me.memory_info().rss / 2**20)
            children = self.me.children()
        except psutil.Error:
            return []
        for child in children:
            try:
                self.peak_child_mb = max(self.peak_child_mb, child.memory_info().rss / 2**20)
            except psutil.Error:
                pass
        return children

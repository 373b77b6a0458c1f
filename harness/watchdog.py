"""The one dead-worker detector, for measured runs, `verify` and the tests alike: watches the
processes a strategy starts during one call, from a thread of the calling process.

multiprocessing.Pool replaces a worker that dies (SIGKILL, the OOM killer) and waits forever for
the task it lost; a saver or any other lone process that dies leaves its queue unread. Three
rules, each from what the OS says, none from a strategy's name, see a death at any moment:

1. every fork of this process reports itself, from the child, through a pipe (an at-fork hook),
   so even a worker that dies before the first poll is known. A fork made by a Pool's worker
   handler thread is a replacement: a worker exited while the pool was running its work;
2. a child forked during the call that has exited but is not yet reaped (a zombie: a saver,
   a Manager) is peeked at without reaping it (waitid WNOWAIT): killed by a signal other than
   SIGTERM (which Pool.terminate sends) or exited with a status other than 0 is a death;
3. for children made without a fork of this process (the spawn start method, Dask's nanny): a
   child vanishing and a new one appearing mid-run (a pool never does that otherwise).

On a death the watchdog sends SIGUSR1 to this process, whose handler raises WorkerDied in the
main thread, so the run fails within a poll or two instead of hanging until the cell's timeout.
A strategy whose executor restarts dead workers and redoes their tasks (the contract's
`restarts_workers`: Dask's nanny) is not failed: its deaths are counted (`worker_restarts`).
It also samples the peak resident memory of the main process and its largest child.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import struct
import threading
import time
from pathlib import Path

import psutil

INTERVAL_S = 0.05  # a poll reads /proc/self/task/*/children: ~0.01 ms, ~0.1% of one core at 20 Hz
RSS_EVERY = 5  # polls between memory samples (psutil, ~0.02 ms per process)
POOL_HANDLER = "_handle_workers"  # multiprocessing.Pool's thread that replaces exited workers
BIRTH = struct.Struct("=iiB")  # a forked child's pid, its parent's pid, forked by a pool handler
_births_fd: int | None = None  # the write end of the pipe of the watch in progress


class WorkerDied(RuntimeError):
    """A worker process died mid-run; multiprocessing.Pool would otherwise wait forever for its
    task."""


def _report_birth() -> None:
    """At-fork hook, in the child: tell the watching parent this process exists, and whether a
    pool's handler thread made it (a replacement)."""
    if _births_fd is None:
        return
    replacement = POOL_HANDLER in threading.current_thread().name
    with contextlib.suppress(OSError):  # the watch ended, or the pipe is full: nothing to tell
        os.write(_births_fd, BIRTH.pack(os.getpid(), os.getppid(), replacement))


os.register_at_fork(after_in_child=_report_birth)


class Watchdog:
    """A hook (harness/hooks.py): enter just before the call, leave just after.

    restarts: the strategy's executor restarts dead workers and redoes their tasks; count the
    deaths (worker_restarts) instead of failing the run."""

    def __init__(self, restarts: bool = False) -> None:
        self.me = psutil.Process()
        self.restarts = restarts
        self.died: list[int] = []  # dead pids (0: a pool worker whose pid was not seen)
        self.peak_main_mb = 0.0
        self.peak_child_mb = 0.0
        self.cpu_s = 0.0  # CPU time of the watchdog thread itself: its whole cost to the run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Watchdog:
        global _births_fd
        self._read, write = os.pipe()
        for fd in (self._read, write):
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        self._outer, _births_fd = _births_fd, write
        # Children that had died before the call (left unreaped by an earlier one) are not its.
        dead_before = {pid for pid in child_pids() if _died(pid, any_status=True)}
        self._deaths = _Deaths(os.getpid(), self._read, dead_before)
        self._previous = signal.signal(signal.SIGUSR1, self._raise)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        global _births_fd
        self._stop.set()
        self._thread.join()
        signal.signal(signal.SIGUSR1, self._previous)
        write, _births_fd = _births_fd, self._outer
        for fd in (self._read, write):
            os.close(fd)

    @property
    def peak_rss_mb(self) -> float:
        return self.peak_main_mb + self.peak_child_mb

    def columns(self) -> dict[str, float]:
        found = {"peak_rss_mb": self.peak_rss_mb}
        if self.restarts:  # a worker that vanished counts even if its restart came after the call
            found["worker_restarts"] = float(len(set(self.died) | self._deaths.lost))
        return found

    def _raise(self, signum: int, frame: object) -> None:
        pids = ", ".join(str(p) for p in self.died if p) or "not seen"
        raise WorkerDied(
            f"a worker process (pid {pids}) died during the run (killed by a signal, the OOM "
            "killer or a crash); its work was lost"
        )

    def _watch(self) -> None:
        start = time.thread_time()
        try:
            self._poll_until_stopped()
        finally:
            self.cpu_s = time.thread_time() - start

    def _poll_until_stopped(self) -> None:
        deaths = self._deaths
        polls = 0
        while not self._stop.wait(INTERVAL_S):
            pids = child_pids()
            if polls % RSS_EVERY == 0:
                self._sample_rss(pids)
            polls += 1
            new = deaths.poll(pids) - set(self.died)
            if not new:
                continue
            self.died = sorted({*self.died, *new})
            if not self.restarts:
                os.kill(os.getpid(), signal.SIGUSR1)
                return

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


class _Deaths:
    """The three rules of the module docstring, applied at every poll."""

    def __init__(self, me: int, births: int, dead_before: set[int]) -> None:
        self.me, self.births, self.dead_before = me, births, dead_before
        self.forked: set[int] = set()  # every child this process forked during the watch
        self.seen: set[int] = set()  # children at the previous poll
        self.lost: set[int] = set()  # children seen once and gone since
        self.replacements = 0

    def poll(self, pids: set[int]) -> set[int]:
        """Pids of children found dead so far (0 stands for a replaced worker never seen)."""
        self._read_births()
        pids = pids - self.dead_before
        dead = {pid for pid in self.forked if _died(pid)}
        if self.replacements:
            dead |= (self.forked - pids) or {0}
        self.lost |= self.seen - pids
        if self.lost and pids - self.seen - self.forked:
            dead |= self.lost
        self.seen = pids
        return dead

    def _read_births(self) -> None:
        """Drain the pipe; every record is written whole (9 bytes < PIPE_BUF) and read whole."""
        while True:
            try:
                data = os.read(self.births, 64 * BIRTH.size)
            except BlockingIOError:
                return
            if not data:
                return
            for pid, parent, replacement in BIRTH.iter_unpack(data):
                if parent == self.me:
                    self.forked.add(pid)
                    self.replacements += replacement


def _died(pid: int, any_status: bool = False) -> bool:
    """True for an exited, unreaped child that was killed (not by SIGTERM) or exited non-zero
    (any_status: that exited at all); the zombie is left for its owner to reap."""
    try:
        found = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    if found is None or found.si_pid == 0:
        return False
    if any_status:
        return True
    if found.si_code == os.CLD_EXITED:
        return found.si_status != 0
    return found.si_status != signal.SIGTERM


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

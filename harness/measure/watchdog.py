"""The one dead-worker detector, for measured runs, `verify` and the tests alike: watches the
processes a strategy starts during one call, from a thread of the calling process.

multiprocessing.Pool replaces a worker that dies (SIGKILL, the OOM killer) and waits forever for
the task it lost; a saver or any other lone process that dies leaves its queue unread. Four
rules, each from what the OS says, none from a strategy's name, see a death at any moment:

1. every fork of this process reports itself, from the child, through a pipe (an at-fork hook),
   so even a worker that dies before the first poll is known. A fork made by a Pool's worker
   handler thread is a replacement: a worker exited while the pool was running its work;
2. a child forked during the call that has exited but is not yet reaped (a zombie: a saver,
   a Manager) is peeked at without reaping it (waitid WNOWAIT): killed by a signal other than
   SIGTERM (which Pool.terminate sends) or exited with a status other than 0 is a death;
3. for children made without a fork of this process (the spawn start method, Dask's nanny): a
   child vanishing and a new one appearing mid-run (a pool never does that otherwise);
4. a child started during the call (forked, or made by fork + exec as loky makes its workers,
   which runs no at-fork hook) that this process reaps (os.waitpid, which multiprocessing's and
   loky's process objects call) is judged by the status the reaper got, as in rule 2. So a
   worker reaped before a poll could peek at it is still a death: multiprocessing reaps exited
   children whenever it starts a process, loky's manager thread reaps a dead worker at once.

On a death the watchdog sends SIGUSR1 to this process, whose handler raises WorkerDied in the
main thread, so the run fails within a poll or two instead of hanging until the cell's timeout.
It sends it again at every poll until the call ends, because code that catches every exception
may swallow one (torch's profiler hook around each DataLoader item does); the handler does not
raise again while one is on its way, so as not to cut short the clean-up it runs.
Executors that watch their own workers (the DataLoader's SIGCHLD handler, loky's manager thread)
may raise first, or turn the WorkerDied into an error of their own: an exception that leaves the
call after a death the watchdog saw (rules 2 and 4 are checked once more on the way out) becomes
WorkerDied, with the executor's own first line appended, whoever raised it.
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
import sys
import threading
import time

import psutil

# Every poll takes CPU from the work it watches (cold /proc reads, the GIL): at 5 Hz a death is
# still seen within half a second, and the thread's cost stays small beside 1 ms tasks.
INTERVAL_S = 0.2
POOL_HANDLER = "_handle_workers"  # multiprocessing.Pool's thread that replaces exited workers
BIRTH = struct.Struct("=iiB")  # a forked child's pid, its parent's pid, forked by a pool handler
_births_fd: int | None = None  # the write end of the pipe of the watch in progress
_reaps: list[tuple[int, int]] | None = None  # (pid, exit code) reaped during the watch in progress
_real_waitpid = os.waitpid


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


def _noting_waitpid(pid: int, options: int) -> tuple[int, int]:
    """os.waitpid, noting each child it reaps while a watch is in progress (rule 4)."""
    found = _real_waitpid(pid, options)
    reaped, status = found
    if _reaps is not None and reaped > 0 and (os.WIFEXITED(status) or os.WIFSIGNALED(status)):
        _reaps.append((reaped, os.waitstatus_to_exitcode(status)))
    return found


os.register_at_fork(after_in_child=_report_birth)
os.waitpid = _noting_waitpid  # looked up at call time by multiprocessing and loky


class Watchdog:
    """A hook (harness/measure/hooks.py): enter just before the call, leave just after.

    restarts: the strategy's executor restarts dead workers and redoes their tasks; count the
    deaths (worker_restarts) instead of failing the run."""

    def __init__(self, restarts: bool = False) -> None:
        self.me = psutil.Process()
        self.restarts = restarts
        self.died: list[int] = []  # dead pids (0: a pool worker whose pid was not seen)
        self.peak_main_mb = 0.0
        self.peak_child_mb = 0.0
        self.cpu_s = 0.0  # CPU time of the watchdog thread itself: its whole cost to the run
        self._raised = False  # the SIGUSR1 handler raised WorkerDied
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Watchdog:
        global _births_fd, _reaps
        self._read, write = os.pipe()
        for fd in (self._read, write):
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        self._outer, _births_fd = _births_fd, write
        self._outer_reaps, _reaps = _reaps, []
        # Children that had died before the call (left unreaped by an earlier one) are not its.
        before = child_pids()
        dead_before = {pid for pid in before if _died(pid, any_status=True)}
        self._deaths = _Deaths(os.getpid(), self._read, _reaps, before, dead_before)
        self._previous = signal.signal(signal.SIGUSR1, self._raise)
        self._thread.start()
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        global _births_fd, _reaps
        failing = isinstance(exc, Exception) and not self.restarts
        try:  # the SIGUSR1 handler may raise WorkerDied at any line here: clean up regardless
            self._stop.set()
            self._thread.join()
            if failing:  # one last look: the executor may have raised and reaped before a poll
                self._note(self._deaths.by_status())
            elif exc is None:  # a call shorter than a poll, or a death since the last one
                self._note(self._deaths.poll(child_pids()))
        finally:
            signal.signal(signal.SIGUSR1, self._previous)
            write, _births_fd = _births_fd, self._outer
            _reaps = self._outer_reaps
            for fd in (self._read, write):
                os.close(fd)
        if failing and self.died and not isinstance(exc, WorkerDied):
            raise self._error(exc) from exc
        if exc is None and self.died and not self.restarts:
            raise self._error()

    @property
    def peak_rss_mb(self) -> float:
        return self.peak_main_mb + self.peak_child_mb

    def columns(self) -> dict[str, float]:
        found = {"peak_rss_mb": self.peak_rss_mb}
        if self.restarts:  # a worker that vanished counts even if its restart came after the call
            found["worker_restarts"] = float(len(set(self.died) | self._deaths.lost))
        return found

    def _raise(self, signum: int, frame: object) -> None:
        # Not while this WorkerDied is on its way (or an executor's error wrapping it): that
        # would cut short the clean-up it runs. Once raised, again only from code that handles
        # no exception: the first was swallowed, and the run goes on as if nothing happened.
        handling = sys.exc_info()[1]
        if _caused_by_death(handling) or (self._raised and handling is not None):
            return
        self._raised = True
        raise self._error()

    def _error(self, raised: BaseException | None = None) -> WorkerDied:
        """The run's error; `raised`: what the executor raised on its own, in its first line."""
        pids = ", ".join(str(p) for p in self.died if p) or "not seen"
        text = (
            f"a worker process (pid {pids}) died during the run (killed by a signal, the OOM "
            "killer or a crash); its work was lost"
        )
        if raised is not None:
            first = (str(raised).strip().splitlines() or [""])[0]
            text += f"; the executor raised {type(raised).__name__}: {first}"
        return WorkerDied(text)

    def _note(self, dead: set[int]) -> None:
        self.died = sorted({*self.died, *dead})

    def _watch(self) -> None:
        start = time.thread_time()
        try:
            self._poll_until_stopped()
        finally:
            self.cpu_s = time.thread_time() - start
            self._sample_rss(set())  # after the call: a call shorter than a poll still has one

    def _poll_until_stopped(self) -> None:
        deaths = self._deaths
        while not self._stop.wait(INTERVAL_S):
            pids = child_pids()
            self._sample_rss(pids)
            self._note(deaths.poll(pids))
            if self.died and not self.restarts:  # at every poll: one may be swallowed
                os.kill(os.getpid(), signal.SIGUSR1)

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
    """The four rules of the module docstring, applied at every poll."""

    def __init__(
        self,
        me: int,
        births: int,
        reaps: list[tuple[int, int]],
        before: set[int],
        dead_before: set[int],
    ) -> None:
        self.me, self.births, self.reaps = me, births, reaps
        self.before, self.dead_before = before, dead_before  # children when the call began
        self.forked: set[int] = set()  # every child this process forked during the watch
        self.seen: set[int] = set()  # children at the previous poll
        self.lost: set[int] = set()  # children seen once and gone since
        self.reaped_dead: set[int] = set()  # children reaped during the watch that had died
        self.reaps_read = 0  # records of `reaps` read so far
        self.replacements = 0

    def poll(self, pids: set[int]) -> set[int]:
        """Pids of children found dead so far (0 stands for a replaced worker never seen)."""
        dead = self.by_status()
        pids = pids - self.dead_before
        if self.replacements:
            dead |= (self.forked - pids) or {0}
        self.lost |= self.seen - pids
        if self.lost and pids - self.seen - self.forked:
            dead |= self.lost
        self.seen = pids
        return dead

    def by_status(self) -> set[int]:
        """Rules 2 and 4 alone: children whose exit status says they died."""
        self._read_births()
        new = self.reaps[self.reaps_read :]  # other threads only append: a slice is consistent
        self.reaps_read += len(new)
        self.reaped_dead |= {pid for pid, code in new if _is_death(code)} - self.before
        return self.reaped_dead | {pid for pid in self.forked if _died(pid)}

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


def _caused_by_death(exc: BaseException | None) -> bool:
    """exc is a WorkerDied, or was raised while handling one (its cause or context)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, WorkerDied):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


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
    return _is_death(found.si_status if found.si_code == os.CLD_EXITED else -found.si_status)


def _is_death(exit_code: int) -> bool:
    """Killed by a signal other than SIGTERM (which Pool.terminate sends), or exited non-zero.
    exit_code as multiprocessing gives it: -N for signal N."""
    return exit_code not in (0, -signal.SIGTERM)


def child_pids() -> set[int]:
    """Direct children of this process. Every thread has its own list (Pool's handler thread
    forks the replacement workers), so all are read; psutil's scan of /proc is the fallback."""
    pids: set[int] = set()
    try:
        threads = os.listdir("/proc/self/task")
    except OSError:
        return {c.pid for c in psutil.Process().children()}
    for tid in threads:
        try:
            fd = os.open(f"/proc/self/task/{tid}/children", os.O_RDONLY)
        except FileNotFoundError:  # the thread ended since the listing
            continue
        except OSError:
            return {c.pid for c in psutil.Process().children()}
        try:
            pids.update(map(int, os.read(fd, 1 << 16).split()))
        finally:
            os.close(fd)
    return pids

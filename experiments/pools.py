"""The one place multiprocessing strategies make their processes: cv2 threads, CPU pinning, extras.

With placement "none" (job.options, see PoolOptions), no extra initializer and no slot counter,
make_pool is the study's `ctx.Pool(W, initializer=init_process, initargs=(cv2_threads,))`, as a
`Pool` that differs from multiprocessing's only in how it ends after a worker was killed.
Otherwise every worker takes a distinct slot from a shared counter in its initializer, pins itself
to plan[slot % len] (see experiments/placement.py) and then runs the strategy's own initializer.
A pool worker that dies mid-run is caught by the harness's watchdog
(harness/measure/watchdog.py), the one dead-worker detector, which raises in the main thread so
every `finally` here runs.
"""

from __future__ import annotations

import multiprocessing.pool
import os
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from multiprocessing.sharedctypes import Synchronized
from typing import Literal

from pydantic import BaseModel, ConfigDict

from experiments.batching import Batch
from experiments.placement import cpu_plan
from experiments.workload import Job, Phases, init_process

SLOT: int | None = None  # this worker's slot, set by the pool initializer
LOCK_WAIT_S = 1.0  # how long terminate() waits for a queue lock a dead worker may hold
DRAIN_POLL_S = 0.05  # how often the drain looks whether the task handler has ended


class Pool(multiprocessing.pool.Pool):
    """multiprocessing's Pool, except in how it ends after a worker was killed.

    - terminate() cannot hang on a dead worker's lock. An idle worker waits for work holding
      the task queue's read lock; a worker returning a result holds the result queue's write
      lock. Killed then (SIGKILL, the OOM killer), it never releases it, and Pool.terminate,
      which takes both, would wait forever. Here each is waited for LOCK_WAIT_S at most, then
      replaced by a lock of this process alone: the pool is being torn down by then, and only
      this process still uses its side of the queues.
    - terminate() cannot hang on a task sent after it began: the task handler's output is
      thrown away until the handler ends (see _drain).
    - an exception raised while the pool is being made (the watchdog's WorkerDied arrives as a
      signal, at any line) ends what was made, instead of leaving a pool whose handler thread
      keeps replacing workers in this process."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        try:
            super().__init__(*args, **kwargs)
        except BaseException:
            self._end_half_made()
            raise

    def _end_half_made(self) -> None:
        if getattr(self, "_terminate", None) is not None:  # made but for the last lines
            self.terminate()
            return
        handler = getattr(self, "_worker_handler", None)
        if handler is not None:
            handler._state = multiprocessing.pool.TERMINATE
            self._change_notifier.put(None)
        for process in getattr(self, "_pool", []):
            if process.exitcode is None:
                process.terminate()

    @staticmethod
    def _help_stuff_finish(inqueue, task_handler, size) -> None:  # noqa: ANN001 (CPython's)
        _take_or_replace(inqueue, "_rlock")
        threading.Thread(
            target=_drain, args=(inqueue._reader, task_handler), daemon=True, name="pool-drain"
        ).start()

    @classmethod
    def _terminate_pool(cls, taskqueue, inqueue, outqueue, *rest) -> None:  # noqa: ANN001
        if getattr(outqueue, "_wlock", None) is not None:
            _take_or_replace(outqueue, "_wlock")
            outqueue._wlock.release()
        super()._terminate_pool(taskqueue, inqueue, outqueue, *rest)


def _drain(reader: Connection, task_handler: threading.Thread) -> None:
    """Throw away what the task handler still sends, until it ends. CPython drains only while
    the pipe has data, so a task being pickled when the pool is told to end is sent after the
    drain, to workers that are gone, and the task handler never ends: a killed worker hung
    P_1, whose tasks carry the pixels. Raw reads: a worker killed mid-read leaves half a
    message, and reading by messages would then wait for bytes that never come."""
    try:
        while task_handler.is_alive():
            if reader.poll(DRAIN_POLL_S):
                os.read(reader.fileno(), 1 << 20)
    except OSError:  # the pool closed its queues: nothing is left to send
        pass


def _take_or_replace(queue: object, name: str) -> None:
    """Acquire queue.<name>, or, if a dead worker holds it, give the queue a new, acquired one."""
    if not getattr(queue, name).acquire(timeout=LOCK_WAIT_S):
        fresh = threading.Lock()
        fresh.acquire()
        setattr(queue, name, fresh)


class PoolOptions(BaseModel):
    """Options of every strategy built on make_pool. The config's top-level `placement:` fills
    `placement` for each strategy whose options have it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    placement: Literal["none", "close", "spread"] = "none"


class BatchedPoolOptions(PoolOptions):
    """PoolOptions of a strategy that hands out its tasks in chunks: `batch`
    (experiments/batching.py)."""

    batch: Batch = "own"


def placement_of(job: Job) -> str:
    return str(job.options.get("placement", "none"))


def new_counter(ctx: BaseContext) -> Synchronized:
    """A shared slot counter: each pool worker takes the next value when it starts."""
    return ctx.Value("i", 0)


def pin(cpu: int | None) -> None:
    """Pin this process to one CPU; None leaves it where the OS puts it."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def make_pool(
    ctx: BaseContext,
    workers: int,
    job: Job,
    initializer_extra: Callable[..., None] | None = None,
    initargs_extra: tuple = (),
    *,
    plan: list[int] | None = None,
    phases: Phases | None = None,
) -> Pool:
    """A Pool of `workers` processes set up for job (cv2 threads, placement), plus an extra
    initializer.

    plan: CPUs by slot, default cpu_plan(workers, placement); ignored when placement is "none".
    phases: if given, creating the pool is a `startup` span, summed in phases.extra["startup"].
    """
    if phases is None:
        return _new_pool(ctx, workers, job, initializer_extra, initargs_extra, plan)
    t0 = time.perf_counter()
    with phases.span("startup"):
        pool = _new_pool(ctx, workers, job, initializer_extra, initargs_extra, plan)
    phases.extra["startup"] = phases.extra.get("startup", 0.0) + time.perf_counter() - t0
    return pool


def _new_pool(
    ctx: BaseContext,
    workers: int,
    job: Job,
    initializer_extra: Callable[..., None] | None,
    initargs_extra: tuple,
    plan: list[int] | None,
) -> Pool:
    if placement_of(job) == "none":
        plan = None
    elif plan is None:
        plan = cpu_plan(workers, placement_of(job))
    if plan is None and initializer_extra is None:
        return Pool(workers, init_process, (job.cv2_threads,), context=ctx)
    initargs = (job.cv2_threads, new_counter(ctx), plan, initializer_extra, initargs_extra)
    return Pool(workers, _init_worker, initargs, context=ctx)


def _init_worker(
    cv2_threads: int,
    slots: Synchronized,
    plan: list[int] | None,
    extra: Callable[..., None] | None,
    extra_args: tuple,
) -> None:
    global SLOT
    with slots.get_lock():
        SLOT = slots.value
        slots.value += 1
    if plan:
        pin(plan[SLOT % len(plan)])
    init_process(cv2_threads)
    if extra is not None:
        extra(*extra_args)


def split_plan(job: Job, workers: int, n_savers: int) -> tuple[list[int] | None, list[int | None]]:
    """(plan for the W - savers pool workers, CPU of each saver): savers take the plan's last
    slots."""
    plan = cpu_plan(workers, placement_of(job))
    if plan is None:
        return None, [None] * n_savers
    return plan[: workers - n_savers], plan[workers - n_savers :]


def start_process(
    ctx: BaseContext, job: Job, cpu: int | None, target: Callable[..., None], *args: object
) -> BaseProcess:
    """A started process (e.g. a saver) set up like a pool worker: pinned to cpu, cv2 threads."""
    process = ctx.Process(target=_run_set_up, args=(cpu, job.cv2_threads, target, args))
    process.start()
    return process


def _run_set_up(
    cpu: int | None, cv2_threads: int, target: Callable[..., None], args: tuple
) -> None:
    pin(cpu)
    init_process(cv2_threads)
    target(*args)

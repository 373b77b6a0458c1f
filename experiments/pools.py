"""The one place multiprocessing strategies make their pool: cv2 threads, CPU pinning, extras.

With job.placement "none", no extra initializer and no slot counter, make_pool is exactly the
study's `ctx.Pool(W, initializer=init_process, initargs=(cv2_threads,))`. Otherwise every worker
takes a distinct slot from a shared counter in its initializer, pins itself to plan[slot % len]
(see experiments/placement.py) and then runs the strategy's own initializer.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from multiprocessing.context import BaseContext
from multiprocessing.pool import AsyncResult, Pool
from multiprocessing.sharedctypes import Synchronized

from experiments.placement import cpu_plan
from experiments.workload import Job, Phases, init_process

POLL_S = 0.1
SLOT: int | None = None  # this worker's slot, set by the pool initializer


class WorkerDied(RuntimeError):
    """A pool worker exited mid-run; Pool would otherwise wait forever for its task."""


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
    slots: Synchronized | None = None,
    phases: Phases | None = None,
) -> Pool:
    """A Pool of `workers` processes set up for job (cv2 threads, placement) plus an extra initializer.

    plan: CPUs by slot, default cpu_plan(workers, job.placement); ignored when placement is "none".
    slots: pass a counter from new_counter() to watch for replaced workers with get_watching().
    phases: if given, the seconds spent creating the pool go to phases.extra["startup"].
    """
    t0 = time.perf_counter()
    pool = _new_pool(ctx, workers, job, initializer_extra, initargs_extra, plan, slots)
    if phases is not None:
        phases.extra["startup"] = phases.extra.get("startup", 0.0) + time.perf_counter() - t0
    return pool


def _new_pool(
    ctx: BaseContext,
    workers: int,
    job: Job,
    initializer_extra: Callable[..., None] | None,
    initargs_extra: tuple,
    plan: list[int] | None,
    slots: Synchronized | None,
) -> Pool:
    if job.placement == "none":
        plan = None
    elif plan is None:
        plan = cpu_plan(workers, job.placement)
    if plan is None and initializer_extra is None and slots is None:
        return ctx.Pool(workers, initializer=init_process, initargs=(job.cv2_threads,))
    slots = slots if slots is not None else new_counter(ctx)
    initargs = (job.cv2_threads, slots, plan, initializer_extra, initargs_extra)
    return ctx.Pool(workers, initializer=_init_worker, initargs=initargs)


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
    """(plan for the W - savers pool workers, CPU of each saver): savers take the plan's last slots."""
    plan = cpu_plan(workers, job.placement)
    if plan is None:
        return None, [None] * n_savers
    return plan[: workers - n_savers], plan[workers - n_savers :]


def get_watching(result: AsyncResult, slots: Synchronized, workers: int) -> list:
    """result.get(), but raise WorkerDied as soon as the pool has had to start a replacement worker."""
    while not result.ready():
        if slots.value > workers:
            raise WorkerDied(f"a pool worker died mid-run ({slots.value - workers} replaced)")
        result.wait(POLL_S)
    return result.get()

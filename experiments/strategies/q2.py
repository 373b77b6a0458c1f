"""P_Q2: P_Q's saver design done right. Same saver count (pq.savers_for), but

- one bounded multiprocessing.Queue shared by all savers (one pipe hop, no Manager server
  process in the middle; any idle saver takes the next image), given to the pool workers
  through the pool initializer, as multiprocessing queues must be;
- images read once by main and kept by each worker from the initializer (as in P_DYN), so
  tasks are (i, k) indices, dispatched with P_DYN's chunksize rule.

A Queue.put only hands the image to a feeder thread, so the pool is closed and joined (each
worker flushes its queue on exit) before the savers get their stop markers.
"""

from __future__ import annotations

from multiprocessing.context import BaseContext

import numpy as np

from experiments.contract import Schedule, Strategy
from experiments.pools import make_pool, split_plan, start_process
from experiments.strategies._shared import read_all
from experiments.strategies.dyn import chunksize_for
from experiments.strategies.pq import (  # the same saver loop; only the queue differs
    SAVER_STRATEGY,
    augment_to_queue,
    merge_savers,
    save_from_queue,
    savers_for,
    savers_note,
)
from experiments.workload import Job, Phases

QUEUE_SLOTS_PER_WORKER = 2  # bounds the augmented images waiting in memory

_images: list[np.ndarray] = []
_job: Job | None = None
_queue = None


def keep(images: list[np.ndarray], job: Job, queue) -> None:  # noqa: ANN001 (a ctx.Queue)
    """Pool initializer: images, job and the savers' queue stay in this worker."""
    global _images, _job, _queue
    _images, _job, _queue = images, job, queue


def task(ik: tuple[int, int]) -> tuple:
    i, k = ik
    return augment_to_queue(_images[i], _job, i, k, _queue)


def run(job: Job, workers: int, ctx: BaseContext) -> Phases:
    n_savers = savers_for(workers)
    phases = Phases()
    images = read_all(job, phases)
    tasks = [(i, k) for i in range(len(images)) for k in range(job.augmentations)]
    queue, totals = ctx.Queue(QUEUE_SLOTS_PER_WORKER * workers), ctx.Queue()
    plan, saver_cpus = split_plan(job, workers, n_savers)
    savers = [start_process(ctx, job, cpu, save_from_queue, queue, totals) for cpu in saver_cpus]
    try:
        phases.merge(_augment(job, workers - n_savers, ctx, images, tasks, queue, plan, phases))
        with phases.span("join"):
            for _ in savers:
                queue.put(None)
            saved = [totals.get() for _ in savers]
            for s in savers:
                s.join()
    finally:
        for s in savers:
            if s.is_alive():  # only after a failure: the normal path has joined them
                s.terminate()
    merge_savers(phases, saved)
    return phases


def _augment(
    job: Job,
    n: int,
    ctx: BaseContext,
    images: list,
    tasks: list,
    queue,  # noqa: ANN001 (a ctx.Queue)
    plan: list[int] | None,
    phases: Phases,
) -> list:
    with make_pool(ctx, n, job, keep, (images, job, queue), plan=plan, phases=phases) as pool:
        with phases.span("dispatch"):
            chunksize = chunksize_for(len(tasks), n)
            results = list(pool.imap_unordered(task, tasks, chunksize=chunksize))
            pool.close()
            pool.join()  # workers exit normally, flushing their queue feeder threads
    return results


STRATEGY = Strategy(
    name="P_Q2",
    summary="savers fed by one multiprocessing.Queue (no Manager); "
    "images given to workers once (saving only)",
    run=run,
    **SAVER_STRATEGY,
    schedule=Schedule(chunksize=chunksize_for, savers=savers_for),
    notes=(savers_note("P_Q2"),),
)

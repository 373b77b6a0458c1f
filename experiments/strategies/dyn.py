"""P_DYN: dynamic load balancing. Tasks are (i, k) indices fed through Pool.imap_unordered in
small chunks, so a worker that drew cheap augmentations takes more tasks.

Chunksize rule: chunksize = max(1, n_tasks // (W * 16)), i.e. on average each worker gets at
least 16 chunks. The cost of one task varies ~50x with the transforms its seed picks; with many
small chunks per worker, the imbalance left at the end is at most about one chunk, about 1/16
of a worker's share, while the per-chunk hand-off (~0.1 ms) stays far below a task's cost.

Images: main reads each once and hands the list to the pool initializer, which keeps it in a
worker global; with fork they are inherited copy-on-write, with spawn/forkserver they are
pickled once per worker, never per task.
"""

from __future__ import annotations

from multiprocessing.context import BaseContext

import numpy as np

from experiments.batching import batch_size
from experiments.contract import Schedule, Strategy
from experiments.pools import BatchedPoolOptions, make_pool
from experiments.strategies._shared import read_all
from experiments.workload import Job, Phases, augment_and_save

CHUNKS_PER_WORKER = 16

_images: list[np.ndarray] = []
_job: Job | None = None


def chunksize_for(n_tasks: int, workers: int) -> int:
    return max(1, n_tasks // (workers * CHUNKS_PER_WORKER))


def keep(images: list[np.ndarray], job: Job) -> None:
    """Pool initializer: the images and job stay in this worker for every task."""
    global _images, _job
    _images, _job = images, job


def task(ik: tuple[int, int]) -> tuple:
    i, k = ik
    return augment_and_save(_images[i], _job, i, k)


def run(job: Job, workers: int, ctx: BaseContext) -> Phases:
    phases = Phases()
    images = read_all(job, phases)
    tasks = [(i, k) for i in range(len(images)) for k in range(job.augmentations)]
    phases.batch = batch_size(job, len(tasks), workers, chunksize_for)
    with make_pool(ctx, workers, job, keep, (images, job), phases=phases) as pool:
        with phases.span("dispatch"):
            phases.merge(pool.imap_unordered(task, tasks, chunksize=phases.batch))
    return phases


STRATEGY = Strategy(
    name="P_DYN",
    summary="images inherited by workers once; (i, k) via imap_unordered, "
    "chunksize = n_tasks // (16 W)",
    run=run,
    options=BatchedPoolOptions,
    schedule=Schedule(chunksize=chunksize_for),
)

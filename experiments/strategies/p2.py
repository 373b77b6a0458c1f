"""P_2 (study §4.2.2, Algorithm 3): Pool(W).starmap over file paths; every task reads its own
image. Its chunks are CPython's (`batch: own`) unless the `batch` option says otherwise."""

from __future__ import annotations

from multiprocessing.context import BaseContext

from experiments.batching import batch_size
from experiments.contract import Schedule, Strategy, pool_chunksize
from experiments.pools import BatchedPoolOptions, make_pool
from experiments.workload import Job, Phases, list_images, read_augment_save


def run(job: Job, workers: int, ctx: BaseContext) -> Phases:
    phases = Phases()
    paths = list_images(job.input_dir)
    args = [(path, job, i, k) for i, path in enumerate(paths) for k in range(job.augmentations)]
    phases.batch = batch_size(job, len(args), workers, pool_chunksize)
    with make_pool(ctx, workers, job, phases=phases) as pool, phases.span("dispatch"):
        results = pool.starmap(read_augment_save, args, chunksize=phases.batch)
    phases.merge(results)
    return phases


STRATEGY = Strategy(
    name="P_2",
    summary="Pool.starmap over file paths; each task reads its own image",
    run=run,
    options=BatchedPoolOptions,
    schedule=Schedule(reads="task"),
)

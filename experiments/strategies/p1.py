"""P_1 (study §4.2.1, Algorithm 2): the main process reads every image once, then
Pool(W).starmap over tasks that carry the image data (pickled into every task)."""

from __future__ import annotations

from multiprocessing.context import BaseContext

from experiments.batching import batch_size
from experiments.contract import Schedule, Strategy, pool_chunksize
from experiments.pools import BatchedPoolOptions, make_pool
from experiments.strategies._shared import read_all
from experiments.workload import Job, Phases, augment_and_save


def run(job: Job, workers: int, ctx: BaseContext) -> Phases:
    phases = Phases()
    images = read_all(job, phases)
    args = [(image, job, i, k) for i, image in enumerate(images) for k in range(job.augmentations)]
    phases.batch = batch_size(job, len(args), workers, pool_chunksize)
    with make_pool(ctx, workers, job, phases=phases) as pool, phases.span("dispatch"):
        results = pool.starmap(augment_and_save, args, chunksize=phases.batch)
    phases.merge(results)
    return phases


STRATEGY = Strategy(
    name="P_1",
    summary="main reads each image once; Pool.starmap over tasks carrying the pixels",
    run=run,
    options=BatchedPoolOptions,
    schedule=Schedule(),
    notes=(
        "P_1 reads every image in the main process before the pool starts: "
        "its read time is serial.",
    ),
)

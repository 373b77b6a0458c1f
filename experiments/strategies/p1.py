"""P_1 (study §4.2.1, Algorithm 2): the main process reads every image once, then
Pool(W).starmap over tasks that carry the image data (pickled into every task)."""

from __future__ import annotations

from multiprocessing.context import BaseContext

from experiments.contract import Strategy
from experiments.pools import PoolOptions, make_pool
from experiments.workload import (
    Job,
    Phases,
    augment_and_save,
    list_images,
    read_rgb,
    timed,
)


def run(job: Job, workers: int, ctx: BaseContext) -> Phases:
    phases = Phases()
    images = []
    for path in list_images(job.input_dir):
        image, read = timed(read_rgb, path)
        images.append(image)
        phases.read += read
    args = [(image, job, i, k) for i, image in enumerate(images) for k in range(job.augmentations)]
    with make_pool(ctx, workers, job, phases=phases) as pool:
        results = pool.starmap(augment_and_save, args)
    phases.merge(results)
    return phases


STRATEGY = Strategy(
    name="P_1",
    summary="main reads each image once; Pool.starmap over tasks carrying the pixels",
    run=run,
    options=PoolOptions,
    notes=(
        "P_1 reads every image in the main process before the pool starts: "
        "its read time is serial.",
    ),
)

"""The baseline: one process reads each image, augments, saves."""

from __future__ import annotations

from multiprocessing.context import BaseContext

from experiments.contract import Strategy
from experiments.workload import Job, Phases, augment_and_save, list_images, read_rgb, timed


def run(job: Job, workers: int, ctx: BaseContext) -> Phases:
    phases = Phases()
    for i, path in enumerate(list_images(job.input_dir)):
        image, read = timed(read_rgb, path)
        for k in range(job.augmentations):
            _, aug, sv = augment_and_save(image, job, i, k)
            phases.add(read if k == 0 else 0.0, aug, sv)
    return phases


STRATEGY = Strategy(
    name="sequential",
    summary="one process reads each image, augments it, saves",
    run=run,
    in_process=True,
)

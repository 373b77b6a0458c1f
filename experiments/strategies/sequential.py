"""The baseline: one process reads each image, augments, saves."""

from __future__ import annotations

from multiprocessing.context import BaseContext

from experiments.contract import Strategy
from experiments.workload import Job, Phases, augment_and_save, list_images


def run(job: Job, workers: int, ctx: BaseContext) -> Phases:
    phases = Phases()
    for i, path in enumerate(list_images(job.input_dir)):
        image = phases.read_in_main(path)
        for k in range(job.augmentations):
            phases.add(augment_and_save(image, job, i, k))
    return phases


STRATEGY = Strategy(
    name="sequential",
    summary="one process reads each image, augments it, saves",
    run=run,
    in_process=True,
)

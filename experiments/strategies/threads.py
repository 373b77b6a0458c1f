"""P_T: W threads of one process (ThreadPoolExecutor). Main reads each image once; the threads
share the arrays. OpenCV releases the GIL in its kernels, so threads overlap there; the Python
parts of albumentations do not. Every thread seeds its own Compose per task (workload.augment),
so no random state is shared between threads. It has no placement option (one process).
Tasks go to the threads one at a time (`batch: own`) or in batches (experiments/batching.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from multiprocessing.context import BaseContext

import numpy as np
from pydantic import BaseModel, ConfigDict

from experiments.batching import Batch, batch_size, in_batches
from experiments.contract import Schedule, Strategy, one_at_a_time
from experiments.strategies._shared import read_all
from experiments.workload import Job, Phases, augment_and_save


class ThreadOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    batch: Batch = "own"


def run(job: Job, workers: int, ctx: BaseContext) -> Phases:
    phases = Phases()
    images = read_all(job, phases)
    tasks = [(i, k) for i in range(len(images)) for k in range(job.augmentations)]
    size = phases.batch = batch_size(job, len(tasks), workers, one_at_a_time)
    with (
        ThreadPoolExecutor(workers, thread_name_prefix="augscale") as pool,
        phases.span("dispatch"),
    ):
        if size == 1:
            phases.merge(pool.map(lambda ik: augment_and_save(images[ik[0]], job, *ik), tasks))
        else:
            for rows in pool.map(lambda batch: _batch(images, job, batch), in_batches(tasks, size)):
                phases.merge(rows)
    return phases


def _batch(images: list[np.ndarray], job: Job, batch: list[tuple[int, int]]) -> list[tuple]:
    return [augment_and_save(images[i], job, i, k) for i, k in batch]


STRATEGY = Strategy(
    name="P_T",
    summary="ThreadPoolExecutor(W) in one process; main reads each image once, threads share it",
    run=run,
    in_process=True,  # its workers are threads of the main process
    options=ThreadOptions,
    schedule=Schedule(chunksize=one_at_a_time, pool=False),
)

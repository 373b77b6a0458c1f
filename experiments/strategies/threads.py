"""P_T: W threads of one process (ThreadPoolExecutor). Main reads each image once; the threads
share the arrays. OpenCV releases the GIL in its kernels, so threads overlap there; the Python
parts of albumentations do not. Every task builds its own seeded Compose (workload.augment), so
no random state is shared between threads. It has no placement option (one process)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from multiprocessing.context import BaseContext

from experiments.contract import Schedule, Strategy, one_at_a_time
from experiments.strategies._shared import read_all
from experiments.workload import Job, Phases, augment_and_save


def run(job: Job, workers: int, ctx: BaseContext) -> Phases:
    phases = Phases()
    images = read_all(job, phases)
    tasks = [(i, k) for i in range(len(images)) for k in range(job.augmentations)]
    with (
        ThreadPoolExecutor(workers, thread_name_prefix="augscale") as pool,
        phases.span("dispatch"),
    ):
        phases.merge(pool.map(lambda ik: augment_and_save(images[ik[0]], job, *ik), tasks))
    return phases


STRATEGY = Strategy(
    name="P_T",
    summary="ThreadPoolExecutor(W) in one process; main reads each image once, threads share it",
    run=run,
    in_process=True,  # its workers are threads of the main process
    schedule=Schedule(chunksize=one_at_a_time, pool=False),
)

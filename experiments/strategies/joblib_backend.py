"""P_JOBLIB: joblib.Parallel(n_jobs=W, backend="loky") over the (i, k) tasks, as a practitioner's
offline augmentation script does it (an optional dependency: the `joblib` extra). The main
process reads every image once; each task is delayed(task)(image, job, i, k).

joblib's defaults are what practitioners get, so they stay: automatic batching, and arrays over
1 MB memory-mapped from a temporary folder (/dev/shm when it has room) instead of pickled.

Options (config: `options: {P_JOBLIB: {...}}`, or a variant `{P_JOBLIB: {reuse: true}}`):
  batch_size  joblib's batch_size ("auto", or tasks per batch)
  max_nbytes  joblib's threshold for memory-mapping an argument array ("1M", a number of bytes,
              or null to pickle every image)
  reuse       loky keeps its worker processes between calls. By default every run shuts them
              down at its end, so worker start-up is in the run's time and the workers' CPU
              in t_cpu_s, as with the other pools. With reuse, session() starts them once per
              cell, outside the timed region, and ends them after the cell.

loky starts a worker by fork + exec of a fresh interpreter, which imports this project: each
worker runs workload.init_process once, on its first task. With W = 1 joblib runs the tasks in
the calling process itself.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from experiments.contract import Schedule, Strategy
from experiments.strategies._shared import read_all
from experiments.workload import Job, Phases, augment_and_save, init_process

MEMMAP_FOLDER = "joblib_memmapping_folder_{pid}_*"  # joblib's temporary folders of process pid

_ready = False  # this worker ran init_process
Size = Annotated[str, Field(pattern=r"^\d+[KMG]?$")]  # joblib's "1M"


class JoblibOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    batch_size: Literal["auto"] | Annotated[int, Field(gt=0)] = "auto"
    max_nbytes: Annotated[int, Field(ge=0)] | Size | None = "1M"
    reuse: StrictBool = False


def task(image: Any, job: Job, i: int, k: int) -> tuple:
    """One task in a loky worker, which sets itself up on its first task."""
    global _ready
    if not _ready:
        init_process(job.cv2_threads)
        _ready = True
    return augment_and_save(image, job, i, k)


def ready(cv2_threads: int) -> None:
    global _ready
    init_process(cv2_threads)
    _ready = True


def parallel(job: Job, workers: int) -> Any:
    import joblib  # lazy: an optional dependency

    opts = JoblibOptions(**job.options)
    return joblib.Parallel(
        n_jobs=workers, backend="loky", batch_size=opts.batch_size, max_nbytes=opts.max_nbytes
    )


def shutdown() -> None:
    """End loky's reusable executor and its workers, waiting for them (so their CPU counts),
    and remove joblib's memory-mapping folders (terminate() does both for joblib's executor)."""
    from joblib.externals.loky import get_reusable_executor  # lazy: an optional dependency

    executor = get_reusable_executor(reuse=True)  # the current one, or a new one never started
    if hasattr(executor, "terminate"):
        executor.terminate()
    else:
        executor.shutdown(wait=True)
    remove_folders(os.getpid())  # the last call's folder outlives terminate(); no worker uses it


@contextlib.contextmanager
def joblib_session(job: Job, workers: int, ctx: BaseContext | None = None) -> Iterator[None]:
    """joblib imported outside the timed region; with reuse also loky's W workers, started
    (and set up) once for the cell."""
    from joblib import delayed  # lazy: an optional dependency

    if not JoblibOptions(**job.options).reuse:
        yield None
        return
    try:
        parallel(job, workers)(delayed(ready)(job.cv2_threads) for _ in range(workers))
        yield None
    finally:
        shutdown()


def run(job: Job, workers: int, ctx: BaseContext, session: None = None) -> Phases:
    from joblib import delayed  # lazy: an optional dependency

    phases = Phases()
    images = read_all(job, phases)
    tasks = [(i, k) for i in range(len(images)) for k in range(job.augmentations)]
    try:
        with phases.span("dispatch"):
            rows = parallel(job, workers)(
                delayed(task)(images[i], job, i, k) for i, k in tasks
            )
    finally:
        if not JoblibOptions(**job.options).reuse:
            with phases.span("join"):
                shutdown()
    phases.merge(rows)
    return phases


def remove_folders(pid: int) -> None:
    """After the harness killed process `pid`: joblib's memory-mapping folders it left."""
    for root in {Path("/dev/shm"), Path(tempfile.gettempdir())}:
        for folder in root.glob(MEMMAP_FOLDER.format(pid=pid)):
            shutil.rmtree(folder, ignore_errors=True)


STRATEGY = Strategy(
    name="P_JOBLIB",
    summary='joblib.Parallel(n_jobs=W, backend="loky"); main reads each image once, '
    "arrays over 1 MB memory-mapped",
    run=run,
    options=JoblibOptions,
    session=joblib_session,
    cleanup=remove_folders,
    schedule=Schedule(exact=False),
    requires=("joblib",),
    extra="joblib",
    notes=(
        "P_JOBLIB's replay bound uses Pool.map's chunks; joblib's automatic batching sizes "
        "its batches from their measured duration instead, so the bound is approximate.",
        "P_JOBLIB: loky starts each worker as a fresh interpreter that imports albumentations "
        "and OpenCV; without reuse that start-up is inside every run. (albumentations would "
        "also import torch where it is installed; the harness turns that off in every "
        "process, so no result depends on the torch extra.)",
    ),
)

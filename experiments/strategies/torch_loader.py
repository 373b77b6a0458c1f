"""P_TORCH: the PyTorch DataLoader, as a practitioner writes it (an optional dependency: the
`torch` extra). A map-style dataset over the (i, k) tasks in
DataLoader(dataset, batch_size=None, num_workers=W); item j is task divmod(j, augmentations).
Its __getitem__ reads image i itself (as P_2 does), augments it with the task's seeded Compose
and saves when saving. The worker init function applies the harness's thread settings
(workload.init_process) and torch.set_num_threads(1).

Options (config: `options: {P_TORCH: {...}}`, or a variant `{P_TORCH: {in_order: false}}`):
  in_order            deliver items in index order (the DataLoader's default; torch >= 2.6)
  prefetch_factor     items outstanding per worker
  persistent_workers  the loader and its workers live for the cell, started by session()
                      outside the timed region; a run is one epoch over the tasks
  batch               tasks per item a worker hands back (experiments/batching.py): `own` is
                      batch_size=None, one task per hand-out; a number or `auto` is batch_size
                      with a neutral collation (the items come back as a list, untouched)
  deliver             each augmented image comes back to the main process, as a training loop
                      receives it; the worker's copy of it into shared memory (what torch's
                      pickler would do) is timed as the task's hand-off, the `deliver` phase

What comes back to main is the task's trace row (and the image with deliver). torch is imported
lazily: this module imports without it, and the strategy's `requires` names the extra.
"""

from __future__ import annotations

import contextlib
import functools
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from experiments.batching import Batch, batch_size
from experiments.contract import Schedule, Strategy, one_at_a_time
from experiments.workload import (
    TASK_FIELDS,
    Job,
    Phases,
    init_process,
    list_images,
    read_augmented_task,
)

END, HANDOFF, CPU = (TASK_FIELDS.index(f) for f in ("end", "handoff", "cpu"))


class TorchOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    in_order: StrictBool = True
    prefetch_factor: int = Field(2, gt=0)
    persistent_workers: StrictBool = False
    deliver: StrictBool = False
    batch: Batch = "own"


class TaskDataset:
    """Map-style: item j is task (i, k) = divmod(j, augmentations). (torch's Dataset base class
    adds nothing a DataLoader needs, so this one does without it and imports without torch.)"""

    def __init__(self, job: Job, paths: list[Path], deliver: bool) -> None:
        self.job, self.paths, self.deliver = job, paths, deliver

    def __len__(self) -> int:
        return len(self.paths) * self.job.augmentations

    def __getitem__(self, j: int) -> Any:
        i, k = divmod(j, self.job.augmentations)
        row, out = read_augmented_task(self.paths[i], self.job, i, k)
        if not self.deliver:
            return row
        return shared(row, out)


def shared(row: tuple, image: Any) -> tuple[tuple, Any]:
    """The image as a tensor in shared memory, the copy timed and counted as the hand-off."""
    import torch  # lazy: an optional dependency, imported only where it runs

    cpu0, t0 = time.thread_time(), time.perf_counter()
    tensor = torch.from_numpy(np.ascontiguousarray(image)).share_memory_()  # rot90 gives views
    t1 = time.perf_counter()
    cpu = row[CPU] + time.thread_time() - cpu0
    return (*row[:END], t1, *row[END + 1 : HANDOFF], t1 - t0, cpu, *row[CPU + 1 :]), tensor


def init_worker(cv2_threads: int, worker_id: int) -> None:
    """DataLoader worker_init_fn: the harness's thread settings in every worker."""
    import torch  # lazy: an optional dependency

    torch.set_num_threads(1)
    init_process(cv2_threads)


@dataclass
class Loader:
    """A DataLoader and the indices of its next epoch (persistent workers keep both)."""

    loader: Any
    indices: list[int]
    n_tasks: int
    batch: int | None = None  # batch_size; None: one task per item


def make_loader(job: Job, workers: int, ctx: BaseContext | None, indices: list[int]) -> Loader:
    from torch.utils.data import DataLoader  # lazy: an optional dependency

    opts = TorchOptions(**job.options)
    dataset = TaskDataset(job, list_images(job.input_dir), opts.deliver)
    size = None if opts.batch == "own" else batch_size(job, len(dataset), workers, one_at_a_time)
    loader = DataLoader(
        dataset,
        batch_size=size,
        collate_fn=None if size is None else as_list,
        sampler=indices,
        num_workers=workers,
        worker_init_fn=functools.partial(init_worker, job.cv2_threads),
        multiprocessing_context=ctx,
        prefetch_factor=opts.prefetch_factor,
        persistent_workers=opts.persistent_workers,
        in_order=opts.in_order,
    )
    return Loader(loader, indices, len(dataset), size)


def as_list(items: list) -> list:
    """The neutral collation: a batch comes back as the list of its items, untouched."""
    return items


@contextlib.contextmanager
def torch_session(job: Job, workers: int, ctx: BaseContext) -> Iterator[Loader | None]:
    """torch imported outside the timed region; with persistent_workers also the loader, its
    workers started by an empty first epoch."""
    import torch.utils.data  # noqa: F401  (lazy: an optional dependency, slow to import)

    if not TorchOptions(**job.options).persistent_workers:
        yield None
        return
    held = make_loader(job, workers, ctx, [])
    iterator = iter(held.loader)  # starts the workers; the empty epoch hands out nothing
    try:
        yield held
    finally:
        iterator._shutdown_workers()  # persistent workers outlive epochs: end them here


def run(job: Job, workers: int, ctx: BaseContext, session: Loader | None = None) -> Phases:
    phases = Phases()
    held = session or make_loader(job, workers, ctx, [])
    held.indices[:] = range(held.n_tasks)
    if session is None:
        t0 = time.perf_counter()
        with phases.span("startup"):
            items = start(held.loader)
        phases.extra["startup"] = time.perf_counter() - t0
    else:
        items = iter(held.loader)
    phases.batch = held.batch
    try:
        with phases.span("dispatch"):
            for item in items:
                phases.merge([receive(item)] if held.batch is None else map(receive, item))
    finally:
        if session is None:  # at once, also when a worker died: nothing of the run outlives it
            items._shutdown_workers()
    if TorchOptions(**job.options).deliver:
        phases.extra["deliver"] = phases.handoff
    return phases


def start(loader: Any) -> Any:
    """iter(loader): the workers started. If that raises (the watchdog's WorkerDied, or the
    DataLoader's own check, arrives as a signal at any line), the half-made iterator is never
    returned, so nothing would end its workers, and torch's SIGCHLD handler would keep checking
    them, raising at any later moment: end them here, as torch ends a finished iterator."""
    try:
        return iter(loader)
    except BaseException as err:
        for frame, _ in traceback.walk_tb(err.__traceback__):
            made = frame.f_locals.get("self")
            if hasattr(made, "_shutdown_workers"):  # the iterator, in one of its own methods
                with contextlib.suppress(Exception):  # made before its first epoch was set up:
                    made._shutdown_workers()  # its `finally` still forgets and ends the workers
                break
        raise


def receive(item: Any) -> tuple:
    """The trace row of a received item (without batches, the DataLoader's default_convert made
    it a list); with deliver, main holds the image as a numpy array, as a training step would
    take it."""
    if isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], (list, tuple)):
        row, image = item
        image.numpy()
        return tuple(row)
    return tuple(item)


STRATEGY = Strategy(
    name="P_TORCH",
    summary="torch DataLoader(batch_size=None, num_workers=W) over (i, k) tasks; "
    "each task reads its own image",
    run=run,
    options=TorchOptions,
    session=torch_session,
    phases={"deliver": "deliver to main"},
    schedule=Schedule(chunksize=one_at_a_time, reads="task", exact=False),
    requires=("torch",),
    extra="torch",
    notes=(
        "P_TORCH's replay bound hands each task to the next free worker. The DataLoader deals "
        "tasks round-robin with at most prefetch_factor x W outstanding and, in order, refills "
        "only when main takes the next task in order, so its bound is optimistic; the gap "
        "between it and the measured speedup is what the dealing costs.",
        "P_TORCH with persistent_workers: its workers outlive each run, so their CPU time is "
        "not in t_cpu_s, and no start-up is in the run's time.",
    ),
)

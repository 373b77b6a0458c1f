"""P_SHM: the main process reads every image once into one multiprocessing.shared_memory block;
tasks carry only (i, k), and each worker attaches to the block once, in its pool initializer.

Clean-up: main is the only owner and unlinks the block in a `finally`. A worker that dies
mid-run makes Pool start a replacement and wait forever for the lost task; the harness's
watchdog raises in the main thread instead, which reaches the `finally`. If main itself is
killed, the block is named f"{SHM_PREFIX}{main pid}-..." so that the contract's cleanup(pid),
which the runner calls after killing a child, finds and removes it; Python's resource_tracker
unlinks it too.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from multiprocessing import shared_memory
from multiprocessing.context import BaseContext
from pathlib import Path

import numpy as np

from experiments import pools
from experiments.contract import Schedule, Strategy
from experiments.pools import PoolOptions
from experiments.strategies._shared import read_all
from experiments.workload import Job, Phases, augment_and_save

SHM_PREFIX = "augscale-"
DEV_SHM = Path("/dev/shm")

Layout = list[tuple[int, tuple[int, ...]]]  # (byte offset, shape) of each image in the block

_block: shared_memory.SharedMemory | None = None  # this worker's attachment
_images: list[np.ndarray] = []
_job: Job | None = None


def block_name(pid: int) -> str:
    return f"{SHM_PREFIX}{pid}-{secrets.token_hex(4)}"


def layout_of(images: list[np.ndarray]) -> Layout:
    layout, offset = [], 0
    for image in images:
        layout.append((offset, image.shape))
        offset += image.nbytes
    return layout


def views(buf: memoryview, layout: Layout) -> list[np.ndarray]:
    """Read-only numpy views of the images in the block: a task cannot change another's input."""
    out = []
    for offset, shape in layout:
        view = np.ndarray(shape, dtype=np.uint8, buffer=buf, offset=offset)
        view.flags.writeable = False
        out.append(view)
    return out


def attach(name: str, layout: Layout, job: Job) -> None:
    """Pool initializer: attach once; the views live as long as the worker."""
    global _block, _images, _job
    _block = shared_memory.SharedMemory(name=name)
    _images, _job = views(_block.buf, layout), job


def task(i: int, k: int) -> tuple:
    return augment_and_save(_images[i], _job, i, k)


def run(job: Job, workers: int, ctx: BaseContext) -> Phases:
    phases = Phases()
    images = read_all(job, phases)
    layout = layout_of(images)
    size = max(1, sum(image.nbytes for image in images))
    block = shared_memory.SharedMemory(name=block_name(os.getpid()), create=True, size=size)
    try:
        copy_in(block, images, layout)
        del images
        phases.merge(_run_pool(job, workers, ctx, block.name, layout, phases))
    finally:
        block.unlink()  # first: it cannot fail on views still alive, close() can
        with contextlib.suppress(BufferError):
            block.close()
    return phases


def copy_in(block: shared_memory.SharedMemory, images: list[np.ndarray], layout: Layout) -> None:
    for (offset, shape), image in zip(layout, images, strict=True):
        np.ndarray(shape, dtype=np.uint8, buffer=block.buf, offset=offset)[...] = image


def _run_pool(
    job: Job, workers: int, ctx: BaseContext, name: str, layout: Layout, phases: Phases
) -> list:
    n_images = len(layout)
    args = [(i, k) for i in range(n_images) for k in range(job.augmentations)]
    with pools.make_pool(ctx, workers, job, attach, (name, layout, job), phases=phases) as pool:
        with phases.span("dispatch"):
            return pool.starmap(task, args)


def remove_blocks(pid: int) -> None:
    """After the harness killed process `pid`: the blocks it could not unlink."""
    for block in DEV_SHM.glob(f"{SHM_PREFIX}{pid}-*"):
        block.unlink(missing_ok=True)


STRATEGY = Strategy(
    name="P_SHM",
    summary="main reads each image once into shared memory; tasks carry only (i, k) indices",
    run=run,
    options=PoolOptions,
    schedule=Schedule(),
    cleanup=remove_blocks,
)

"""The augmentation workload (the study's Algorithm 1, or the user's pipeline), made
deterministic per task.

Augmentation k of image i always comes from the pipeline seeded with
seed + i * augmentations_per_image + k, so every strategy and worker count does the same work
(experiments/pipeline.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np

from experiments.pipeline import Pipeline, seeded, study_pipeline

T = TypeVar("T")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class Job:
    """Everything a strategy needs for one timed call. Small, so it pickles cheaply."""

    input_dir: Path
    out_dir: Path
    augmentations: int
    seed: int
    saving: bool
    ext: str = "jpg"  # "raw" writes the RGB bytes untouched (used by `verify`); "npy" any array
    cv2_threads: int = 1
    options: dict[str, Any] = field(default_factory=dict)  # the strategy's own, validated options
    pipeline: Pipeline = field(default_factory=study_pipeline)


# One trace row per task (and per saver's part of a task), a plain tuple so that it pickles
# small: harness/schema.py TASK_COLUMNS describes each field. Times are perf_counter seconds
# (CLOCK_MONOTONIC: one clock for every process on a host); cpu is time.thread_time() of the
# thread that ran it; lane is that thread's OS id (a single-threaded worker's pid).
TASK_FIELDS = (
    "part",
    "i",
    "k",
    "lane",
    "start",
    "end",
    "read",
    "augment",
    "save",
    "handoff",
    "cpu",
    "read_cpu",
)
TASK, SAVE = 0, 1  # part: the task itself, or a saver process saving its output
PART, _I, _K, _LANE, _START, _END, READ, AUGMENT, SAVE_S, HANDOFF, CPU, READ_CPU = range(12)


@dataclass
class Phases:
    """What one timed call did: seconds summed per phase, one trace row per task, and the main
    thread's own spans (reading, pool start-up, hand-out). Cheap: a few clock reads per task."""

    read: float = 0.0
    augment: float = 0.0
    save: float = 0.0
    handoff: float = 0.0  # handing a task's output to another process (a saver's queue)
    tasks: int = 0
    batch: int | None = None  # tasks per hand-out, where the strategy hands them out in batches
    extra: dict[str, float] = field(default_factory=dict)
    rows: list[tuple] = field(default_factory=list)
    spans: list[tuple[str, int, float, float]] = field(
        default_factory=list
    )  # name, lane, start, end

    def add(self, row: tuple) -> None:
        self.rows.append(row)
        self.read += row[READ]
        self.augment += row[AUGMENT]
        self.save += row[SAVE_S]
        self.handoff += row[HANDOFF]
        self.tasks += row[PART] == TASK

    def merge(self, rows: Iterable[tuple]) -> None:
        for row in rows:
            self.add(row)

    @contextlib.contextmanager
    def span(self, name: str) -> Iterator[None]:
        """Record a span of the calling (main) thread."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.spans.append((name, threading.get_native_id(), start, time.perf_counter()))

    def read_in_main(self, path: Path) -> np.ndarray:
        """Read one image in the main thread: a `read` span, counted in phases.read."""
        with self.span("read"):
            image, seconds = timed(read_rgb, path)
        self.read += seconds
        return image


def timed(fn: Callable[..., T], *args: object) -> tuple[T, float]:
    """(fn(*args), seconds it took)."""
    t0 = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - t0


def init_process(cv2_threads: int = 1) -> None:
    """The one per-process set-up, run in every process that augments (the harness's entry
    points, pool initializers, savers, Dask workers): OpenCV's own threads. The environment
    (BLAS threads, no update check) is set once in experiments/__init__.py and inherited."""
    os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
    cv2.setNumThreads(cv2_threads)


def task_seed(job: Job, i: int, k: int) -> int:
    return job.seed + i * job.augmentations + k


def list_images(input_dir: Path) -> list[Path]:
    """Input files in sorted name order: image index i is the position in this list."""
    return sorted(
        p
        for p in Path(input_dir).iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def output_path(job: Job, i: int, k: int) -> Path:
    return job.out_dir / f"img{i:05d}_aug{k:05d}.{job.ext}"


def save(image: np.ndarray, path: Path) -> None:
    """RGB -> BGR and cv2.imwrite, as the study saves; '.raw' keeps the RGB bytes as they are,
    '.npy' any array losslessly (a pipeline whose output is not 8-bit)."""
    if path.suffix == ".raw":
        image.tofile(path)
        return
    if path.suffix == ".npy":
        np.save(path, image)
        return
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(_write_failure(path, image.nbytes))


def _write_failure(path: Path, nbytes: int) -> str:
    """cv2.imwrite says only False: find the likely cause for the error message."""
    folder = path.parent
    if not folder.is_dir():
        return f"cannot write {path}: the output folder no longer exists"
    if not os.access(folder, os.W_OK):
        return f"cannot write {path}: the output folder is not writable"
    free = shutil.disk_usage(folder).free
    if free < 2 * nbytes:
        return f"cannot write {path}: the disk is full ({free // 2**20} MiB free)"
    return f"cv2.imwrite failed for {path}"


def augment(image: np.ndarray, job: Job, i: int, k: int) -> np.ndarray:
    return seeded(job.pipeline, task_seed(job, i, k))(image=image)["image"]


def augment_and_save(image: np.ndarray, job: Job, i: int, k: int) -> tuple:
    """One task of Algorithm 1, as a trace row (TASK_FIELDS); read is 0 here."""
    return augmented_task(image, job, i, k)[0]


def augmented_task(image: np.ndarray, job: Job, i: int, k: int) -> tuple[tuple, np.ndarray]:
    """augment_and_save, also giving the augmented image: (trace row, image)."""
    cpu0, t0 = time.thread_time(), time.perf_counter()
    out = augment(image, job, i, k)
    t1 = time.perf_counter()
    if job.saving:
        save(out, output_path(job, i, k))
    t2, cpu = time.perf_counter(), time.thread_time() - cpu0
    row = (TASK, i, k, threading.get_native_id(), t0, t2, 0.0, t1 - t0, t2 - t1, 0.0, cpu, 0.0)
    return row, out


def read_augment_save(path: Path, job: Job, i: int, k: int) -> tuple:
    """One task of Algorithm 3, the worker reading its own image first, as a trace row."""
    return read_augmented_task(path, job, i, k)[0]


def read_augmented_task(path: Path, job: Job, i: int, k: int) -> tuple[tuple, np.ndarray]:
    """read_augment_save, also giving the augmented image: (trace row, image)."""
    cpu0, t0 = time.thread_time(), time.perf_counter()
    image = read_rgb(path)
    read, read_cpu = time.perf_counter() - t0, time.thread_time() - cpu0
    row, out = augmented_task(image, job, i, k)
    row = (*row[:_START], t0, row[_END], read, *row[AUGMENT:CPU], row[CPU] + read_cpu, read_cpu)
    return row, out


def expected_outputs(job: Job, n_images: int) -> int:
    return n_images * job.augmentations if job.saving else 0

"""What the harness's own instrumentation costs: a benchmark, not a test.

Instrumentation = the per-task trace (three perf_counter and two thread_time calls, the thread
id and a 12-field row returned per task, then written as JSON by the child and as one parquet
file per run by the parent) and the hooks of a measured run (harness/measure/hooks.py: the watchdog
thread's 5 Hz /proc polling and RSS samples, CPU-time and steal readings). The hooks are
switched on and off around the same strategy call, in interleaved pairs on the same images, so
machine drift hits both sides equally; the result is the median of the per-pair ratios
(on / off), with a bootstrap interval over pairs: the pairing cancels drift that two
independent medians would keep.
The trace cannot be removed without changing the code path, so its cost is bounded
separately: the per-task cost of making a row, times the task count, plus writing the rows,
against the run's wall time.
"""

from __future__ import annotations

import json
import multiprocessing
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments import strategies
from experiments.workload import TASK, Job, Phases, init_process
from harness.images import ensure_images
from harness.measure import hooks
from harness.measure.watchdog import Watchdog
from harness.rundir import store
from harness.stats import medians


@dataclass(frozen=True)
class Overhead:
    strategy: str
    workers: int
    pairs: int
    median_off_s: float
    median_on_s: float
    ratio: float  # on / off
    ratio_ci: tuple[float, float]
    row_share: float  # per-task row cost x tasks / wall time
    write_share: float  # writing one run's rows (JSON in the child, parquet in the parent) / wall
    watchdog_share: float  # the watchdog thread's CPU / (wall x workers): CPU taken from the work

    @property
    def trace_share(self) -> float:
        return self.row_share + self.write_share

    def line(self) -> str:
        lo, hi = self.ratio_ci
        return (
            f"{self.strategy} W={self.workers}: {self.pairs} interleaved pairs, "
            f"median {self.median_off_s:.3f} s bare vs {self.median_on_s:.3f} s instrumented, "
            f"median paired ratio {self.ratio:.4f} [95% CI {lo:.4f}, {hi:.4f}]; "
            f"per-task trace bound: {self.trace_share:.4%} of wall time "
            f"({self.row_share:.4%} making rows, {self.write_share:.4%} writing them); "
            "watchdog thread CPU: "
            f"{self.watchdog_share:.3%} of the workers' CPU time"
        )


def _row_cost_s(n: int = 100_000) -> float:
    """Seconds per task spent making its trace row, as workload.augment_and_save does."""
    t0 = time.perf_counter()
    for _ in range(n):
        cpu0, a = time.thread_time(), time.perf_counter()
        b = time.perf_counter()
        c, cpu = time.perf_counter(), time.thread_time() - cpu0
        (TASK, 0, 0, threading.get_native_id(), a, c, 0.0, b - a, c - b, 0.0, cpu, 0.0)  # noqa: B018
    return (time.perf_counter() - t0) / n


def _write_cost_s(phases: Phases, tmp: Path, repeats: int = 7) -> float:
    """Seconds to write one run's rows: the child's JSON line, the parent's parse and its file in
    tasks/. The median of `repeats` writes after a first one, which pays the parent's one-off
    imports (pyarrow's parquet writer) once per sweep, not once per run."""
    times = []
    for n in range(repeats + 1):
        t0 = time.perf_counter()
        text = json.dumps({"trace": [list(r) for r in phases.rows], "spans": phases.spans})
        store.write_tasks(tmp, [store.task_frame("cell", n, json.loads(text))])
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))


def _one(strategy: str, job: Job, workers: int, watched: bool) -> tuple[float, Phases, float]:
    """(wall seconds, phases, watchdog CPU seconds) of one call, with or without the watchdog."""
    ctx = multiprocessing.get_context("fork")
    found = strategies.get(strategy)
    instruments = hooks.measuring(found.in_process, found.restarts_workers) if watched else []
    with hooks.around(instruments):
        t0 = time.perf_counter()
        phases = found.call(job, workers, ctx)
        wall = time.perf_counter() - t0
    watch = next((h for h in instruments if isinstance(h, Watchdog)), None)
    return wall, phases, watch.cpu_s if watch else 0.0


def default_job(
    out_dir: Path, size: tuple[int, int] = (1000, 500), images: int = 4, augmentations: int = 25
) -> Job:
    """The study's pipeline on a few generated images: overhead without a config."""
    return Job(ensure_images(size[0], size[1], images, "jpg"), out_dir, augmentations, 0, False)


def measure(
    strategy: str = "P_1",
    workers: int = 2,
    pairs: int = 10,
    job_for: Callable[[Path], Job] = default_job,
    cv2_threads: int = 1,
) -> Overhead:
    """Instrumented against bare calls of `strategy` at W = workers, on job_for(scratch): by
    default the study's pipeline on generated images, or a config's (commands/overhead.py)."""
    init_process(cv2_threads)
    on, off, tasks, watch_cpu = [], [], 0, []
    with tempfile.TemporaryDirectory(prefix="augscale-overhead-") as tmp:
        job = job_for(Path(tmp))
        _one(strategy, job, workers, True)  # warm-up
        for n in range(pairs):
            order = (True, False) if n % 2 == 0 else (False, True)
            for watched in order:
                wall, phases, cpu = _one(strategy, job, workers, watched)
                (on if watched else off).append(wall)
                if watched:
                    watch_cpu.append(cpu / (wall * workers))
                tasks = phases.tasks
        write_s = _write_cost_s(phases, Path(tmp))
    on_a, off_a = np.array(on), np.array(off)
    ratios = on_a / off_a  # pair n: the instrumented and the bare run made back to back
    wall = float(np.median(off_a))
    return Overhead(
        strategy,
        workers,
        pairs,
        float(np.median(off_a)),
        float(np.median(on_a)),
        float(np.median(ratios)),
        medians.median_ci(ratios),
        _row_cost_s() * tasks / wall,
        write_s / wall,
        float(np.median(watch_cpu)),
    )

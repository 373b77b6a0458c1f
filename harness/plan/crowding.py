"""How much longer the sweep's tasks take when processes share the machine, for the estimate.

The same few tasks run in 1, in c = min(usable cores, the sweep's most workers) and, when the
sweep has cells above the usable cores, in o = min(2 x cores, its most workers) processes at
once: each process runs its own copy of the list, all released together at a barrier. Without
contention c processes take as long as one, and o take o / c as long; what they take beyond
that is the factor (`Crowding`) by which the estimate stretches a parallel cell. Memory
bandwidth, shared caches and the scheduler's time-slicing are all in it. Each figure is the
least of ROUNDS rounds, the process counts interleaved within a round.
"""

from __future__ import annotations

import math
import queue
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from typing import Any

import numpy as np

from experiments.workload import Job, augment, init_process

# Two rounds of 0.5 s scatter visibly from one probe to the next at large images; four rounds of
# 1.5 s scatter less, for 6 s more per image size (docs/ESTIMATE.md).
ROUNDS = 4
SECONDS = 1.5  # of tasks per process, at one process
MAX_TASKS = 12
WAIT_S = 300.0  # a process that does not reach the barrier or finish by then breaks the probe


@dataclass(frozen=True)
class Crowding:
    """Measured elapsed over contention-free elapsed: at c processes and at o processes."""

    at_cores: float = 1.0
    beyond: float = 1.0

    def factor(self, workers: int, cores: int) -> float:
        """For a cell of `workers`: 1 at one, rising linearly to `at_cores` at the usable
        cores, `beyond` above them."""
        if workers > cores:
            return self.beyond
        if workers <= 1 or cores <= 1:
            return 1.0
        return 1.0 + (self.at_cores - 1.0) * (workers - 1) / (cores - 1)


def measure(
    job: Job,
    image: np.ndarray,
    tasks: list[tuple[int, int]],
    task_s: float,
    cores: int,
    most_workers: int,
    ctx: BaseContext,
) -> Crowding:
    """Time `tasks` (in a random order; about SECONDS of them are used) in 1, c and o
    processes; Crowding() when the sweep has nothing above one worker to stretch."""
    full = min(cores, most_workers)
    over = min(2 * cores, most_workers) if most_workers > cores else 0
    if full < 2 and not over:
        return Crowding()
    picks = tasks[: max(2, min(MAX_TASKS, math.ceil(SECONDS / max(task_s, 1e-6))))]
    counts = [n for n in (1, full, over) if n]
    best = dict.fromkeys(counts, math.inf)
    try:
        for _ in range(ROUNDS):
            for n in counts:
                best[n] = min(best[n], elapsed(n, job, image, picks, ctx))
    except RuntimeError as err:  # the estimate goes on without it; the sweep would fail loudly
        print(f"Warning: the estimate leaves out contention: {err}", file=sys.stderr)
        return Crowding()
    # Never below 1: processes sharing the machine cannot beat one alone; less is noise.
    at_cores = max(1.0, best[full] / best[1])
    beyond = max(1.0, best[over] / best[1] * full / over) if over else at_cores
    return Crowding(round(at_cores, 3), round(beyond, 3))


def elapsed(
    n: int, job: Job, image: np.ndarray, picks: list[tuple[int, int]], ctx: BaseContext
) -> float:
    """Seconds from releasing n processes, each running every task in `picks`, to the last
    one's end."""
    barrier, ends = ctx.Barrier(n + 1), ctx.Queue()
    procs = [ctx.Process(target=_run, args=(barrier, ends, job, image, picks)) for _ in range(n)]
    for p in procs:
        p.start()
    try:
        barrier.wait(WAIT_S)
        t0 = time.perf_counter()
        last = max(ends.get(timeout=WAIT_S) for _ in procs)
    except (queue.Empty, threading.BrokenBarrierError) as err:
        raise RuntimeError(f"a process of the crowding probe did not finish: {err!r}") from None
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
    return last - t0


def _run(
    barrier: Any, ends: Any, job: Job, image: np.ndarray, picks: list[tuple[int, int]]
) -> None:
    init_process(job.cv2_threads)
    augment(image, job, *picks[0])  # untimed: first-call allocations
    barrier.wait(WAIT_S)
    for i, k in picks:
        augment(image, job, i, k)
    ends.put(time.perf_counter())


def describe(crowds: dict[str, Crowding], cores: int) -> str | None:
    """One line for the plan: what sharing the machine costs at each size that was probed,
    x1.00 included (the estimate then assumes no cost, and says so)."""
    parts = [
        f"{size}: x{c.at_cores:.2f} at {cores}"
        + (f", x{c.beyond:.2f} above" if c.beyond != c.at_cores else "")
        for size, c in crowds.items()
    ]
    if not parts:
        return None
    return (
        "Sharing the machine stretches parallel cells (tasks timed alone and in several "
        "processes at once): " + "; ".join(parts)
    )

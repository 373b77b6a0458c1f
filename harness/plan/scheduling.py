"""The scheduling model both the plan's estimate and the replay bound use: per-task costs in
(i, k) order handed out under a strategy's contract `Schedule` to W ideal cores.

Chunks of chunksize(n, W) go, in order, to the next free worker; a saver pipeline (P_Q-like)
runs its augmenters so, then each saver saves what reaches it in arrival order; a strategy that
reads in main has a serial head of every image's read; one that starts a pool pays start-up per
worker. Nothing here contends (see harness/analysis/replay.py for what that leaves out).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from experiments.contract import Schedule


@dataclass(frozen=True)
class Costs:
    """Per-task seconds in (i, k) order, from the sequential run's trace."""

    i: np.ndarray  # image index of each task
    k: np.ndarray  # augmentation index of each task
    work: np.ndarray  # the task's time on its lanes: augment (+ save)
    save: np.ndarray  # the save part of work
    read: dict[int, float]  # main's read of image i
    t_seq: float  # the sequential run's wall time


def replay(
    schedule: Schedule, costs: Costs, workers: int, startup_per_worker: float, handout: float
) -> float:
    """Predicted wall seconds of one run on `workers` ideal cores."""
    savers = schedule.savers(workers) if schedule.savers else 0
    augmenters = max(1, workers - savers)
    reads = np.array([costs.read.get(int(i), 0.0) for i in costs.i])
    per_task = costs.work - (costs.save if savers else 0.0) + handout
    if schedule.reads == "task":
        per_task = per_task + reads
    head = sum(costs.read.values()) if schedule.reads == "main" else 0.0
    head += startup_per_worker * workers if schedule.pool else 0.0
    done = _chunked(per_task, augmenters, schedule.chunksize(len(per_task), augmenters))
    if savers:
        done = _saved(done, costs, savers)
    return head + (float(done.max()) if len(done) else 0.0)


def _chunked(costs: np.ndarray, workers: int, chunksize: int) -> np.ndarray:
    """Finish time of every task when chunks go, in order, to the next free worker."""
    free = [(0.0, w) for w in range(workers)]
    finish = np.zeros(len(costs))
    for start in range(0, len(costs), chunksize):
        t, w = heapq.heappop(free)
        for n in range(start, min(start + chunksize, len(costs))):
            t += costs[n]
            finish[n] = t
        heapq.heappush(free, (t, w))
    return finish


def _saved(augmented: np.ndarray, costs: Costs, savers: int) -> np.ndarray:
    """Saver j saves the tasks with k % savers == j in the order they arrive."""
    finish = np.zeros(len(augmented))
    for j in range(savers):
        mine = np.flatnonzero(costs.k % savers == j)
        t = 0.0
        for n in mine[np.argsort(augmented[mine], kind="stable")]:
            t = max(t, augmented[n]) + costs.save[n]
            finish[n] = t
    return np.maximum(finish, augmented)

"""P_Q (study §4.2.3, Algorithm 4): max(1, ceil(sqrt(W)) - 1) saver processes fed through
Manager queues; the other W - savers processes augment. Saving only, as in the study."""

from __future__ import annotations

import math
import threading
import time
from multiprocessing.context import BaseContext
from pathlib import Path

import numpy as np

from experiments.contract import Schedule, Strategy, queue_memory_mb
from experiments.pools import PoolOptions, make_pool, split_plan, start_process
from experiments.strategies._shared import read_all
from experiments.workload import SAVE, TASK, Job, Phases, augment, output_path, save


def savers_for(workers: int) -> int:
    """The study's rule: #savers = max(1, ceil(sqrt(#workers)) - 1)."""
    return max(1, math.ceil(math.sqrt(workers)) - 1)


def save_from_queue(queue, totals) -> None:  # noqa: ANN001 (proxies)
    """Save until the None sentinel, one trace row (part SAVE) per image. After a failed write
    it keeps draining its queue, so the augmenting workers never block on it, and reports the
    error instead of its rows."""
    rows, error = [], None
    while (item := queue.get()) is not None:
        if error:
            continue
        image, path, i, k = item
        cpu0, t0 = time.thread_time(), time.perf_counter()
        try:
            save(image, Path(path))
        except OSError as err:
            error = str(err)
        t1 = time.perf_counter()
        lane = threading.get_native_id()
        rows.append(
            (SAVE, i, k, lane, t0, t1, 0.0, 0.0, t1 - t0, 0.0, time.thread_time() - cpu0, 0.0)
        )
    totals.put((rows, error))


def augment_to_queue(
    image: np.ndarray,
    job: Job,
    i: int,
    k: int,
    queue,  # noqa: ANN001 (a Manager queue proxy, or a ctx.Queue)
) -> tuple:
    """Augment, then hand the output to a saver: a trace row whose handoff is the put."""
    cpu0, t0 = time.thread_time(), time.perf_counter()
    out = augment(image, job, i, k)
    t1 = time.perf_counter()
    if job.saving:
        queue.put((out, str(output_path(job, i, k)), i, k))
    t2, cpu = time.perf_counter(), time.thread_time() - cpu0
    return (TASK, i, k, threading.get_native_id(), t0, t2, 0.0, t1 - t0, 0.0, t2 - t1, cpu, 0.0)


def merge_savers(phases: Phases, saved: list[tuple[list, str | None]]) -> None:
    """The savers' rows into phases (raising the first failed write); the augmenters' hand-off
    is the strategy's `queue_put` phase."""
    if errors := [e for _, e in saved if e]:
        raise OSError(errors[0])
    for rows, _ in saved:
        phases.merge(rows)
    phases.extra["queue_put"] = phases.handoff


def run(job: Job, workers: int, ctx: BaseContext) -> Phases:
    n_savers = savers_for(workers)
    phases = Phases()
    with ctx.Manager() as manager:
        queues = [manager.Queue() for _ in range(n_savers)]
        images = read_all(job, phases)
        args = [
            (image, job, i, k, queues[k % n_savers])
            for i, image in enumerate(images)
            for k in range(job.augmentations)
        ]
        totals = ctx.Queue()
        plan, saver_cpus = split_plan(job, workers, n_savers)
        savers = [
            start_process(ctx, job, cpu, save_from_queue, q, totals)
            for q, cpu in zip(queues, saver_cpus, strict=True)
        ]
        with make_pool(ctx, workers - n_savers, job, plan=plan, phases=phases) as pool:
            with phases.span("dispatch"):
                results = pool.starmap(augment_to_queue, args)
        with phases.span("join"):
            for q in queues:
                q.put(None)
            saved = [totals.get() for _ in savers]
            for s in savers:
                s.join()
    phases.merge(results)
    merge_savers(phases, saved)
    return phases


def savers_note(name: str) -> str:
    return (
        f"{name}: save is the savers' time, queue put the augmenting workers' hand-off to them; "
        "W counts augmenters and savers."
    )


# What every strategy with saver processes declares (P_Q2 shares it).
SAVER_STRATEGY = {
    "saving_only": True,
    "min_workers": 2,
    "phases": {"queue_put": "queue put"},
    "options": PoolOptions,
    "memory_mb": queue_memory_mb,
}

STRATEGY = Strategy(
    name="P_Q",
    summary="savers fed through Manager queues; W - savers processes augment (saving only)",
    run=run,
    **SAVER_STRATEGY,
    schedule=Schedule(savers=savers_for),
    notes=(
        "P_Q reads every image in the main process before the pool starts: "
        "its read time is serial.",
        savers_note("P_Q"),
    ),
)

"""P_Q (study §4.2.3, Algorithm 4): max(1, ceil(sqrt(W)) - 1) saver processes fed through
Manager queues; the other W - savers processes augment. Saving only, as in the study."""

from __future__ import annotations

import math
import time
from multiprocessing.context import BaseContext
from pathlib import Path

import numpy as np

from experiments.contract import Strategy, queue_memory_mb
from experiments.pools import PoolOptions, make_pool, split_plan, start_process
from experiments.workload import (
    Job,
    Phases,
    augment,
    list_images,
    output_path,
    read_rgb,
    save,
    timed,
)


def savers_for(workers: int) -> int:
    """The study's rule: #savers = max(1, ceil(sqrt(#workers)) - 1)."""
    return max(1, math.ceil(math.sqrt(workers)) - 1)


def save_from_queue(queue, totals) -> None:  # noqa: ANN001 (proxies)
    """Save until the None sentinel. After a failed write it keeps draining its queue, so the
    augmenting workers never block on it, and reports the error instead of its time."""
    spent, error = 0.0, None
    while (item := queue.get()) is not None:
        if error:
            continue
        image, path = item
        t0 = time.perf_counter()
        try:
            save(image, Path(path))
        except OSError as err:
            error = str(err)
        spent += time.perf_counter() - t0
    totals.put((spent, error))


def augment_to_queue(
    image: np.ndarray,
    job: Job,
    i: int,
    k: int,
    queue,  # noqa: ANN001 (a Manager queue proxy)
) -> tuple[float, float, float]:
    out, aug = timed(augment, image, job, i, k)
    if not job.saving:
        return 0.0, aug, 0.0
    _, put = timed(queue.put, (out, str(output_path(job, i, k))))
    return 0.0, aug, put


def run(job: Job, workers: int, ctx: BaseContext) -> Phases:
    n_savers = savers_for(workers)
    phases = Phases()
    with ctx.Manager() as manager:
        queues = [manager.Queue() for _ in range(n_savers)]
        images = []
        for path in list_images(job.input_dir):
            image, read = timed(read_rgb, path)
            images.append(image)
            phases.read += read
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
            results = pool.starmap(augment_to_queue, args)
        for q in queues:
            q.put(None)
        saved = [totals.get() for _ in savers]
        for s in savers:
            s.join()
    if errors := [e for _, e in saved if e]:
        raise OSError(errors[0])
    phases.merge(results)
    phases.extra["queue_put"] = phases.save
    phases.save = sum(t for t, _ in saved)
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
    notes=(
        "P_Q reads every image in the main process before the pool starts: "
        "its read time is serial.",
        savers_note("P_Q"),
    ),
)

"""How many tasks a strategy hands a worker at once: its `batch` option.

At the study's ~80 ms a task one task per hand-out costs nothing; at the 1-3 ms of an
ImageNet-style pipeline the hand-out (pickling, a queue round trip, waking a worker) is a
visible share of every task. So strategies hand tasks out in batches:

    own    the strategy's own rule, unchanged (P_1 and P_2: CPython's Pool.starmap chunks,
           P_DYN: n / (16 W), threads, the DataLoader and Dask: one task at a time)
    auto   the rule below, from the per-task seconds the harness calibrated for the sweep
    n      n tasks per hand-out

The auto rule: a batch holds about BATCH_S of work, so a hand-out (~0.1 ms) costs well under
1% of it, but each worker still gets at least BATCHES_PER_WORKER batches, so the imbalance
left when the last batches finish is a small share of a worker's part.

The batch changes only who does which task when: every task keeps its seed, so the pixels
are the same at any batch size (`verify` checks it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from pydantic import PlainSerializer, PlainValidator

from experiments.workload import Job

T = TypeVar("T")

BATCH_S = 0.02  # work per batch the auto rule aims at
BATCHES_PER_WORKER = 16  # the fewest batches a worker gets under the auto rule



def _batch(value: Any) -> str | int:
    if value in ("own", "auto") or (type(value) is int and value >= 1):
        return value
    raise ValueError(f"must be 'own', 'auto' or a whole number >= 1, not {value!r}")


Batch = Annotated[Any, PlainValidator(_batch), PlainSerializer(lambda v: v)]


def auto_size(n_tasks: int, workers: int, task_s: float | None) -> int:
    """The auto rule: about BATCH_S of work, and at least BATCHES_PER_WORKER batches a worker.
    Without a per-task time only the second half applies."""
    most = max(1, n_tasks // (max(1, workers) * BATCHES_PER_WORKER))
    if not task_s or task_s <= 0:
        return most
    return max(1, min(most, math.ceil(BATCH_S / task_s)))


def batch_size(job: Job, n_tasks: int, workers: int, own: Callable[[int, int], int]) -> int:
    """The tasks per hand-out this job's `batch` option asks for ("own" if it has none)."""
    value = job.options.get("batch", "own")
    if value == "own":
        return own(n_tasks, workers)
    if value == "auto":
        return auto_size(n_tasks, workers, None)
    return int(value)


def in_batches(items: Sequence[T], size: int) -> list[list[T]]:
    """items in consecutive batches of `size` (the last one shorter)."""
    return [list(items[j : j + size]) for j in range(0, len(items), size)]

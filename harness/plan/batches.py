"""The `batch: auto` option resolved for one cell: experiments/batching.py's rule fed with the
per-task seconds the sweep's calibration measured (harness/plan/estimate.py)."""

from __future__ import annotations

from typing import Any

from experiments import strategies
from experiments.batching import auto_size
from harness.plan.estimate import Costs, size_key
from harness.schema import Cell


def task_seconds(cell: Cell, costs: Costs) -> float | None:
    """A task's calibrated seconds in this cell: augmenting, its read where the task reads,
    its save where the cell saves; None where the calibration has nothing for its size."""
    key = size_key(cell.width, cell.height)
    if key not in costs.augment_s:
        return None
    schedule = strategies.get(strategies.base_name(cell.strategy)).schedule
    reads = schedule is not None and schedule.reads == "task"
    seconds = costs.augment_s[key] + (costs.read_s.get(key, 0.0) if reads else 0.0)
    return seconds + (costs.save_s.get(key, 0.0) if cell.saving else 0.0)


def resolved(options: dict[str, Any], cell: Cell, costs: Costs, n_tasks: int) -> dict[str, Any]:
    """options with `batch: auto` replaced by the number of tasks it means for this cell."""
    if options.get("batch") != "auto":
        return options
    size = auto_size(n_tasks, cell.workers, task_seconds(cell, costs))
    return {**options, "batch": size}

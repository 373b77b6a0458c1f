"""A rough duration estimate for the plan, from a short calibration on this machine.

Model: a task costs c_aug (+ c_save when saving) seconds per megapixel, measured here on a few
seeded augmentations; a cell of W workers on P cores takes n_tasks * cost / min(W, P) plus
process start-up. It is rough: a dozen calibration tasks, whose cost varies ~50x, and no
contention, so it can be off either way (measured here: 10-40% high on the shipped configs).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from experiments.workload import Job, augment, save
from harness.images import checkerboard
from harness.plan import Cell

CALIBRATION_SIZE = (1000, 500)
CALIBRATION_TASKS = 12
STARTUP_S_PER_PROCESS = 0.05


@dataclass(frozen=True)
class Costs:
    augment_s_per_mp: float
    save_s_per_mp: float


def calibrate(fmt: str = "jpg", seed: int = 0) -> Costs:
    w, h = CALIBRATION_SIZE
    image = checkerboard(w, h)
    with tempfile.TemporaryDirectory() as tmp:
        job = Job(Path(tmp), Path(tmp), CALIBRATION_TASKS, seed, True, fmt)
        t0 = time.perf_counter()
        outs = [augment(image, job, 0, k) for k in range(CALIBRATION_TASKS)]
        t1 = time.perf_counter()
        for k, out in enumerate(outs):
            save(out, Path(tmp) / f"{k}.{fmt}")
        t2 = time.perf_counter()
    mp = w * h / 1e6 * CALIBRATION_TASKS
    return Costs((t1 - t0) / mp, (t2 - t1) / mp)


def cell_seconds(cell: Cell, n_images: int, augmentations: int, costs: Costs, cores: int) -> float:
    """Estimated seconds for one timed run of the cell."""
    per_mp = costs.augment_s_per_mp + (costs.save_s_per_mp if cell.saving else 0.0)
    work = n_images * augmentations * cell.width * cell.height / 1e6 * per_mp
    return work / min(cell.workers, cores) + STARTUP_S_PER_PROCESS * (
        cell.workers if cell.workers > 1 else 0
    )

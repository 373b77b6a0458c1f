"""The dimensioning experiment (`python -m harness dimension CONFIG [--processes 6] [--runs 4]
[--run RUN_DIR]`): where the variance of the config's baseline and of one cell at W = usable
cores lives (harness/stats/levels.py), and whether the vCPUs differ.

The two cells alternate, process by process, each process a fresh child through the runner
(`run_unit`) with the config's warm-up and `runs` recorded runs. Then the baseline runs in one
process pinned to each usable CPU in turn, twice over in mirrored order (0 1 .. 1 0), so a
drift does not pass for a difference between CPUs. The result is printed, and with --run kept
as `dimension.json` in that run folder (of the same workload), whose report shows it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.workload import init_process
from harness import machine
from harness.config import Config
from harness.measure.interrupt import interruptible
from harness.measure.runner import run_unit
from harness.measure.seeds import check_run
from harness.measure.sweep import Sweep
from harness.plan import inputs
from harness.plan.cells import Cell, Unit
from harness.plan.estimate import calibrate
from harness.rundir.dimension_file import CellLevels, Dimension, PinnedRun
from harness.schema import BASELINE, utc_now
from harness.stats.levels import Levels, levels
from harness.stats.pairing import midpoints
from harness.stats.precision import Target


def cells_of(config: Config, cores: int) -> list[Cell]:
    """The baseline and the config's first strategy at the largest W <= cores (its size), in the
    config's first saving mode."""
    saving = config.saving[0]
    points = [(w, size) for w, size in config.sweep if w <= cores] or config.sweep[:1]
    workers, (width, height) = points[-1]
    name = next(n for n in config.labels if n != BASELINE)
    return [
        Cell(BASELINE, 1, saving, *config.base_size),
        Cell(name, workers, saving, width, height),
    ]


def measure(
    config: Config,
    config_path: str,
    processes: int,
    runs: int,
    run_dir: Path | None = None,
    say: Callable[[str], None] = print,
) -> Dimension:
    init_process(config.cv2_threads)  # as `run` does: no OpenCV thread pool before a fork
    found = inputs.inspect(config, config_path)
    config = inputs.with_folder_size(config, found)
    if run_dir is not None:
        check_run(run_dir, config)
    cores, started = machine.usable_cores(), utc_now()
    cells = cells_of(config, cores)
    with tempfile.TemporaryDirectory(prefix="augscale-dimension-") as tmp:
        found = inputs.prepare(config, found, Path(tmp))
        costs = calibrate(config, found.n_images)
        sweep = Sweep(
            config, Path(tmp), found.dirs, found.n_images, costs, cores, Target(runs, runs)
        )
        with interruptible():
            rows = _alternate(sweep, cells, processes, runs, say)
            pinned = _pinned(sweep, cells[0], runs, say)
    return Dimension(
        config_name=config.name,
        processes=processes,
        runs=runs,
        cells=[_cell_levels(cell, rows, costs.child_s, config) for cell in cells],
        pinned=pinned,
        host=machine.host_info(),
        git_commit=machine.git_commit(),
        started_at=started,
        ended_at=utc_now(),
    )


def _alternate(
    sweep: Sweep, cells: list[Cell], processes: int, runs: int, say: Callable[[str], None]
) -> pd.DataFrame:
    rows = []
    for p in range(processes):
        for cell in cells if p % 2 == 0 else cells[::-1]:
            done = run_unit(sweep, Unit(cell, tuple(range(runs))), lambda line: None)
            rows += [{**r, "process": p} for r in done]
            walls = ", ".join(f"{r['wall_s']:.3f}" for r in done if r["status"] == "ok")
            say(f"  process {p + 1}, {cell.id}: {walls}")
    return pd.DataFrame(rows)


def _cell_levels(cell: Cell, rows: pd.DataFrame, child_s: float, config: Config) -> CellLevels:
    mine = rows[rows["cell_id"].eq(cell.id) & rows["status"].eq("ok")]
    mine = mine.assign(mid=midpoints(mine))
    by_process = [g for _, g in mine.groupby("process")]
    found: Levels = levels(
        [list(g["wall_s"]) for g in by_process], [float(g["mid"].min()) for g in by_process]
    )
    run_s = float(mine["wall_s"].median())
    process_s = child_s + run_s * config.warmup_runs * config.warmup_tasks
    return CellLevels(
        cell_id=cell.id,
        median_s=run_s,
        within=found.within,
        between=found.between,
        drift=found.drift,
        runs_per_process=found.runs_per_process(process_s, run_s),
    )


def _pinned(sweep: Sweep, base: Cell, runs: int, say: Callable[[str], None]) -> list[PinnedRun]:
    cpus = sorted(os.sched_getaffinity(0))
    found = []
    for cpu in cpus + cpus[::-1]:
        with _only(cpu):
            done = run_unit(sweep, Unit(base, tuple(range(runs))), lambda line: None)
        walls = [r["wall_s"] for r in done if r["status"] == "ok"]
        found.append(PinnedRun(cpu=cpu, median_s=float(np.median(walls)) if walls else None))
        say(f"  baseline pinned to CPU {cpu}: {', '.join(f'{w:.3f}' for w in walls)}")
    return found


@contextlib.contextmanager
def _only(cpu: int) -> Iterator[None]:
    """This process (and so the child it starts, and the child's pool) on one CPU."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)

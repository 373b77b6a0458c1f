"""The control plane: a config expanded into cells (strategy x workers-or-point x saving), the
cells into units (one child process each), and the plan printed with its estimated duration."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from experiments import strategies
from harness.config import Config
from harness.schema import BASELINE, Cell

__all__ = ["Cell", "Unit", "plan_cells", "plan_units", "print_plan", "runnable"]


@dataclass(frozen=True)
class Unit:
    """One child process: a cell and the repeats it records (after its warm-up)."""

    cell: Cell
    repeats: tuple[int, ...]

    @property
    def tag(self) -> str:
        return f"{self.cell.id}.r{'-'.join(map(str, self.repeats))}"


def plan_cells(config: Config) -> list[Cell]:
    """Every cell of the sweep in run order: per saving mode, the baseline, then by workers."""
    cells: list[Cell] = []
    bw, bh = config.base_size
    for saving in config.saving:
        cells.append(Cell(BASELINE, 1, saving, bw, bh))
        for workers, (w, h) in config.sweep:
            for name in config.labels:
                if not config.runs_at(name, workers):
                    continue  # a variant that lists its own worker counts
                skip = strategies.get(name).skip_reason(workers, saving)
                cells.append(Cell(name, workers, saving, w, h, skip))
    return cells


def runnable(cells: list[Cell]) -> list[Cell]:
    return [c for c in cells if c.skip is None]


def plan_units(
    cells: list[Cell], repeats: int, order: str, done: set[tuple[str, int]]
) -> list[Unit]:
    """The children to start, skipping (cell, repeat) pairs already done.

    sequential: one child per cell runs all its missing repeats.
    interleaved: one child per (cell, repeat), round-robin over cells, so drift on a shared
    machine spreads evenly over the cells (each child does its own warm-up).
    """
    todo = {c: tuple(r for r in range(repeats) if (c.id, r) not in done) for c in cells}
    if order == "sequential":
        return [Unit(c, rs) for c, rs in todo.items() if rs]
    return [Unit(c, (r,)) for r in range(repeats) for c in cells if r in todo[c]]


def print_plan(
    config: Config,
    cells: list[Cell],
    run_estimate: Callable[[Cell], float],
    done: set[tuple[str, int]],
) -> None:
    """The cells, each run's estimate, and the total over the children still to start."""
    todo = runnable(cells)
    units = plan_units(todo, config.repeats, config.order, done)
    per = (
        "each (cell, repeat) in a fresh process with its own warm-up"
        if config.order == "interleaved"
        else "each cell in a fresh process"
    )
    print(
        f"Plan for {config.name} ({config.kind} scaling): {len(todo)} cells x {config.repeats} "
        f"recorded runs after {config.warmup} warm-up, {per}"
    )
    for cell in cells:
        if cell.skip:
            print(f"  skip {cell.id:<34} {cell.skip}")
        else:
            print(f"  run  {cell.id:<34} ~{run_estimate(cell):7.1f} s per run")
    total = sum(run_estimate(u.cell) * (config.warmup + len(u.repeats)) for u in units)
    left = f" for the {len(units)} unit(s) left" if done else ""
    print(
        f"Estimated duration{left}: {duration(total)} (rough: calibrated here on a few tasks, "
        "whose cost varies a lot; contention is not modelled)"
    )


def duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"

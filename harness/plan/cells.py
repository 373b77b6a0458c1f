"""The control plane: a config expanded into cells (strategy x workers-or-point x saving), and
the cells into units (one child process each); the plan and its estimate are sweep_plan.py."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from experiments import strategies
from harness.config import Config
from harness.errors import HarnessError
from harness.schema import BASELINE, Cell
from harness.stats import precision
from harness.stats.precision import Target, stop_reason
from harness.sweep_rules import Order

__all__ = ["Cell", "Stored", "Unit", "plan_cells", "plan_units", "runnable"]


@dataclass(frozen=True)
class Unit:
    """One child process: a cell and the repeat numbers it may record (after its warm-up), in
    order. It records them until the stop rule (harness.stats.precision) gives a stop reason;
    `optional` units are beyond `min`, so a limit that cuts the cell skips them."""

    cell: Cell
    repeats: tuple[int, ...]
    optional: bool = False
    round: int | None = None  # in paired rounds (harness/plan/rounds.py): its round
    position: int | None = None  # and its place in the round's sequence

    @property
    def where(self) -> dict[str, int]:
        """The round and position a run of this unit stores ({} outside paired rounds)."""
        return {} if self.round is None else {"round": self.round, "position": self.position}

    @property
    def tag(self) -> str:
        return f"{self.cell.id}.r{'-'.join(map(str, self.repeats))}"


class Stored(NamedTuple):
    """A cell's runs so far: its ok wall times, and the repeat numbers that are ok."""

    walls: tuple[float, ...] = ()
    ok: frozenset[int] = frozenset()


def time_slicing(cell: Cell, cores: int) -> bool:
    """More workers than usable cores: the cell measures the OS scheduler sharing them."""
    return cell.workers > cores


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
    cells: list[Cell],
    target: Target,
    order: Order | str,
    stored: Callable[[], dict[str, Stored]],
    cores: int,
) -> Iterator[Unit]:
    """The children to start, lazily: a cell whose stored runs already satisfy the stop rule gets
    none, and repeats already ok are not run again.

    sequential: one child per cell records runs until the stop rule holds (up to `max`).
    interleaved: rounds of one child per (cell, repeat), round-robin over the cells, so drift on
    a shared machine spreads evenly over them (each child does its own warm-up); from round
    `min` on a round holds only the cells that still want runs, judged from the stored runs.
    """
    if not Order(order).child_per_run:
        now = stored()
        for cell in cells:
            have = now.get(cell.id, Stored())
            if _wants(cell, have, target, cores):
                yield Unit(cell, tuple(r for r in range(target.max) if r not in have.ok))
        return
    for r in range(target.max):
        now = stored()
        for cell in cells:
            have = now.get(cell.id, Stored())
            if r not in have.ok and _wants(cell, have, target, cores):
                yield Unit(cell, (r,), optional=len(have.walls) >= target.min)


def _wants(cell: Cell, have: Stored, target: Target, cores: int) -> bool:
    return not stop_reason(have.walls, target, time_slicing(cell, cores))


def expected_runs(cell: Cell, target: Target, cores: int) -> float:
    return precision.expected_runs(target, time_slicing(cell, cores))


def planned_runs(
    cell: Cell, target: Target, cores: int, runs: str, level: float = math.inf
) -> float:
    """A cell's runs when it stops as `expected`, at its `max`, or at `min`; a cell at
    W <= cores stops at `level` if the sweep's `spend` runs out first (Plan.level)."""
    if runs == "min" or time_slicing(cell, cores):
        return target.min
    wanted = target.max if runs == "max" else expected_runs(cell, target, cores)
    return max(target.min, min(wanted, level))


def describe_repeats(target: Target, cores: int) -> str:
    if target.fixed:
        return f"{target.min} recorded runs each"
    spend = (
        f"; the sweep spends at most {target.spend:g} run-equivalents per cell"
        if target.spend is not None
        else ""
    )
    return (
        f"runs until the median's 95% interval is within +-{target.ci:.0%} "
        f"({target.min} to {target.max} per cell; cells above {cores} usable cores stop at "
        f"{target.min}{spend})"
    )


def describe_warmup(config: Config) -> str:
    share = "" if config.warmup_tasks == 1 else f" of {config.warmup_tasks:.0%} of the tasks"
    per = "each (cell, repeat)" if config.order.child_per_run else "each cell"
    return f"{config.warmup_runs} warm-up run(s){share} before {per}, in a fresh process"


def parse_duration(text: str) -> float:
    """Seconds in '45m', '2h', '1h30m', '90s' or '600'; a one-line error otherwise."""
    number = r"(\d+(?:\.\d+)?)"
    match = re.fullmatch(rf"\s*(?:{number}h)?\s*(?:{number}m)?\s*(?:{number}s?)?\s*", text)
    if not text.strip() or not match or not any(match.groups()):
        raise HarnessError(
            "--budget", None, f"{text!r} is not a duration", "write it as 45m, 2h, 1h30m or 600s"
        )
    h, m, sec = (float(g) if g else 0.0 for g in match.groups())
    return h * 3600 + m * 60 + sec


def duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"

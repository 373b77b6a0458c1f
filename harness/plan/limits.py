"""The limits of a sweep, checked before each run beyond a cell's min: `--budget` (its wall time)
and `repeats: {spend: N}` (its machine time). A limit cuts a cell that still wants runs; the
cell's stop reason is then the limit's name, and meta.json lists the cells each one cut."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from harness.plan.cells import Cell, Stored, time_slicing
from harness.plan.sweep_plan import Plan
from harness.stats.precision import Target, stop_reason


@dataclass
class Budget:
    """`--budget`: no run beyond a cell's `min` once the sweep is projected to overrun."""

    seconds: float
    started: float = field(default_factory=time.monotonic)
    cut: set[str] = field(default_factory=set)  # the cells it cut
    name: str = "budget"

    def cuts(self, plan: Plan, cell: Cell, walls: tuple, next_s: float, speed: float) -> bool:
        """Would one more run of next_s (estimated) plus every cell's runs still owed up to
        min (this cell owes none) overrun, at `speed` (actual over estimated seconds so far)?"""
        others = replace(plan, cells=[c for c in plan.todo if c.id != cell.id])
        owed = others.seconds("min")
        projected = time.monotonic() - self.started + speed * (owed + next_s)
        return projected > self.seconds


@dataclass
class Spend:
    """`repeats: {spend: N}`: the sweep's machine time stays within N run-equivalents per cell,
    each cell weighted by its run time (Plan.spent; analysis reports it afterwards as
    run_equivalents). A cell at W <= cores gets its next run only if every other cell still
    aiming at the stop rule's interval could have as many, and the time-slicing cells their
    min: the runs beyond min are shared out evenly, and a cell that stops early leaves its
    share to the others."""

    cut: set[str] = field(default_factory=set)  # the cells it cut
    name: str = "spend"

    def cuts(self, plan: Plan, cell: Cell, walls: tuple, next_s: float, speed: float) -> bool:
        now = {**plan.stored, cell.id: Stored(tuple(walls))}
        times = run_times(plan, now)
        level = len(walls) + 1
        runs = {c.id: _share(plan, c, now.get(c.id, Stored()), level) for c in plan.todo}
        runs[cell.id] = level
        return plan.overspent(times, runs)


Limit = Budget | Spend


def limits_for(target: Target, budget_s: float | None) -> list[Limit]:
    """The limits a sweep checks: its budget, if given, then its spend, if the stop rule has
    one."""
    limits: list[Limit] = [Budget(budget_s)] if budget_s is not None else []
    return limits + ([Spend()] if target.spend is not None and not target.fixed else [])


def cutting(
    limits: Sequence[Limit], plan: Plan, cell: Cell, walls: tuple, next_s: float, speed: float
) -> Limit | None:
    """The first limit that cuts the cell before one more run of next_s (estimated)."""
    return next((lim for lim in limits if lim.cuts(plan, cell, walls, next_s, speed)), None)


def _share(plan: Plan, cell: Cell, have: Stored, level: int) -> float:
    """The runs a cell counts with when another cell asks for its run number `level`."""
    rule, runs = plan.target, len(have.walls)
    if time_slicing(cell, plan.cores):
        return max(runs, rule.min)
    if not stop_reason(have.walls, rule, False):
        return max(runs, rule.min, min(level, rule.max))
    return runs


def run_times(plan: Plan, stored: dict[str, Stored]) -> dict[str, float]:
    """Each cell's run time: the median of its runs so far, else its estimate scaled by how the
    measured cells compared with theirs."""
    cells = plan.todo
    measured = {c.id: float(np.median(stored[c.id].walls)) for c in cells if _has_runs(c, stored)}
    ratios = [measured[c.id] / plan.run_estimate(c) for c in cells if c.id in measured]
    scale = float(np.median(ratios)) if ratios else 1.0
    return {c.id: measured.get(c.id, plan.run_estimate(c) * scale) for c in cells}


def _has_runs(cell: Cell, stored: dict[str, Stored]) -> bool:
    return bool(stored.get(cell.id, Stored()).walls)

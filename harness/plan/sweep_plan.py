"""The plan of a sweep: its cells, each run's estimated seconds, the stop rule and the runs
already stored. The plan printed before a sweep and the limits checked during it (plan/limits.py)
both ask it: how long, how many runs per cell, and what the sweep spends."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from harness.config import Config
from harness.errors import HarnessError
from harness.plan.cells import (
    Cell,
    Stored,
    describe_repeats,
    describe_warmup,
    duration,
    planned_runs,
    runnable,
    time_slicing,
)
from harness.plan.estimate import Costs, cell_seconds
from harness.plan.rounds import split, visits
from harness.schema import BASELINE
from harness.stats.precision import Target


@dataclass(frozen=True)
class Plan:
    """What the plan of a sweep is made of; `cells` may include skipped ones."""

    config: Config
    cells: list[Cell]
    run_estimate: Callable[[Cell], float]  # estimated seconds of one recorded run
    cores: int  # usable cores: above them a cell is time-slicing
    target: Target  # the stop rule, `max` perhaps capped by a budget
    child_s: float = 0.0  # starting one child process
    stored: dict[str, Stored] = field(default_factory=dict)  # each cell's ok runs so far

    @classmethod
    def calibrated(
        cls,
        config: Config,
        cells: list[Cell],
        n_images: int,
        costs: Costs,
        cores: int,
        stored: dict[str, Stored] | None = None,
    ) -> Plan:
        """The plan with run times estimated from the calibration's costs."""

        def run_estimate(cell: Cell) -> float:
            return cell_seconds(cell, n_images, config.augmentations_per_image, costs, cores)

        return cls(config, cells, run_estimate, cores, config.target, costs.child_s, stored or {})

    @property
    def todo(self) -> list[Cell]:
        return runnable(self.cells)

    def children(self, runs: float) -> float:
        """Child processes that record `runs` runs of a cell: one per run when interleaved or
        in rounds."""
        return runs if self.config.order.child_per_run else min(runs, 1)

    def machine_runs(self, runs: float) -> float:
        """A cell's machine time for `runs` recorded runs and their children's warm-ups, in
        recorded runs."""
        warm = self.config.warmup_runs * self.config.warmup_tasks
        return runs + warm * self.children(runs)

    def spent(self, times: dict[str, float], runs: dict[str, float]) -> float:
        """The spend rule's measure: the machine time of each cell's runs, over the cells it
        counts; `repeats: {spend: N}` keeps it within N times the sum of their run times."""
        return sum(times[c] * self.machine_runs(runs[c]) for c in times)

    def overspent(self, times: dict[str, float], runs: dict[str, float]) -> bool:
        return self.spent(times, runs) > self.target.spend * sum(times.values())

    def level(self) -> float:
        """The runs every cell at W <= cores can have before the sweep spends more than `spend`
        allows, once the time-slicing cells have their min; inf without spend. The spend is
        linear in those runs (at one or more), so two points find where it meets the cap."""
        todo, target = self.todo, self.target
        aiming = [c for c in todo if not time_slicing(c, self.cores)]
        if target.spend is None or target.fixed or not aiming:
            return math.inf
        times = {c.id: self.run_estimate(c) for c in todo}

        def spent_at(level: float) -> float:
            runs = {c.id: target.min if time_slicing(c, self.cores) else level for c in todo}
            return self.spent(times, runs)

        one, slope = spent_at(1), spent_at(2) - spent_at(1)
        return 1 + (target.spend * sum(times.values()) - one) / slope

    def seconds(self, runs: str = "expected") -> float:
        """Estimated seconds for what is left: each cell's `expected` runs (or its `max`, or its
        `min`), less those stored, plus the warm-ups of the children that record them."""
        level, total = self.level(), 0.0
        for cell in self.todo:
            planned = self.planned(cell, runs, level)
            left = max(0, planned - len(self.stored.get(cell.id, Stored()).walls))
            run_s = self.run_estimate(cell)
            total += run_s * self.machine_runs(left) + self.child_s * self.children(left)
        return total

    def planned(self, cell: Cell, runs: str = "expected", level: float = math.inf) -> float:
        """A cell's planned runs (cells.planned_runs); in paired rounds the baseline has as many
        visits per round as its group's round holds, for as many rounds as its group's cells run,
        one that closes the last round and, with `slicing_last`, one before the time-slicing
        cells in each round they run in."""
        if not self.config.order.paired or cell.strategy != BASELINE:
            return planned_runs(cell, self.target, self.cores, runs, level)
        group = [c for c in self.todo if c.saving == cell.saving and c.strategy != BASELINE]
        rounds = max(
            (planned_runs(c, self.target, self.cores, runs, level) for c in group), default=0
        )
        total = rounds * visits(len(group), self.config.baseline_every) + (rounds > 0)
        if split(group, self.cores, self.config.slicing_last):  # a visit before them
            slicing = [c for c in group if time_slicing(c, self.cores)]
            total += max(planned_runs(c, self.target, self.cores, runs, level) for c in slicing)
        return total

    def per_cell(self) -> dict[str, dict[str, float]]:
        """Per runnable cell: the estimated seconds of one run and the runs it is expected to
        take (what meta.json keeps, so the estimate can be checked cell by cell afterwards)."""
        level = self.level()
        return {
            cell.id: {
                "run_s": round(self.run_estimate(cell), 2),
                "runs": round(self.planned(cell, "expected", level), 1),
            }
            for cell in self.todo
        }

    def print(self) -> dict:
        """The cells, each run's estimate, and the total for what is left; returns the estimate:
        `expected_s`, `max_s` and `cells` (per_cell)."""
        config = self.config
        print(
            f"Plan for {config.name} ({config.kind} scaling, {config.order.words}): "
            f"{len(self.todo)} cells, "
            f"{describe_repeats(self.target, self.cores)}; {describe_warmup(config)}"
        )
        per_cell = self.per_cell()
        for cell in self.cells:
            if cell.skip:
                print(f"  skip {cell.id:<34} {cell.skip}")
            else:
                run_s, runs = self.run_estimate(cell), per_cell[cell.id]["runs"]
                print(f"  run  {cell.id:<34} ~{run_s:7.1f} s per run, ~{runs:g} runs")
        expected, most = self.seconds("expected"), self.seconds("max")
        left = " for what is left" if self.stored else ""
        upto = f" (up to {duration(most)} if every cell runs to max)" if most > expected else ""
        print(
            f"Estimated duration{left}: {duration(expected)}{upto} (calibrated here on a sample "
            "of the sweep's own tasks, timed alone and in parallel)"
        )
        return {"expected_s": expected, "max_s": most, "cells": per_cell}

    def fit(self, seconds: float) -> Plan:
        """The plan with `max` lowered until every cell running to it fits the budget; an error
        naming the time needed and the costliest cells when even `min` runs do not fit."""
        target = self.target
        need = self.seconds("min")
        if need > seconds:
            raise _too_short(self, seconds, need)
        for most in range(target.max, target.min - 1, -1):
            capped = replace(self, target=replace(target, max=most))
            if capped.seconds("max") <= seconds:
                return capped
        return replace(self, target=replace(target, max=target.min))


def _too_short(plan: Plan, seconds: float, need: float) -> HarnessError:
    target = plan.target
    costs = {
        c.id: plan.run_estimate(c) * planned_runs(c, target, plan.cores, "min") for c in plan.cells
    }
    worst = sorted(costs, key=costs.__getitem__, reverse=True)[:3]
    return HarnessError(
        "--budget",
        None,
        f"{duration(seconds)} is too short: {target.min} run(s) per cell need about "
        f"{duration(need)}; the costliest cells are "
        + ", ".join(f"{c} (~{duration(costs[c])})" for c in worst),
        f"give --budget {math.ceil(need / 60)}m or more, or fewer workers, strategies or "
        "pixels in the config",
    )

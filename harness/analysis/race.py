"""A race's answer (`order: race`), replayed from its run folder: per saving mode how the race
ended, who was dropped when and why, the survivors ranked with their ratio to the best, and the
recommendation: the fewest workers within the margin of the best."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.config import Config
from harness.pairing import ratio_interval, rounds_run
from harness.plan.cells import Cell, plan_cells, runnable
from harness.plan.race import Standing, relative_times, standing
from harness.plan.rounds import groups
from harness.racing import blocks


@dataclass(frozen=True)
class Ranked:
    cell: Cell
    ratio: float  # T / T_best, each over its baseline; Hodges-Lehmann over the stage's rounds
    low: float
    high: float


@dataclass(frozen=True)
class Answer:
    saving: bool
    standing: Standing
    ranking: list[Ranked]
    pick: Cell | None  # the fewest workers within the margin of the best
    rounds: int

    @property
    def verdict(self) -> str:
        return self.standing.ended or "undecided"


def answers(runs: pd.DataFrame, config: Config, cores: int) -> list[Answer]:
    """One answer per saving mode that raced."""
    if runs.empty or "round" not in runs or runs["round"].isna().all():
        return []
    rounds = rounds_run(runs)
    rules, found = config.race_rules, []
    for base, members in groups(runnable(plan_cells(config))):
        state = standing(members, runs, rounds, rules, cores)
        ranking = _ranking(runs, state)
        found.append(Answer(base.saving, state, ranking, _pick(ranking, rules.margin), rounds))
    return found


def _ranking(runs: pd.DataFrame, state: Standing) -> list[Ranked]:
    times = relative_times(runs)
    wide = blocks(times[times["round"].ge(state.start)], [c.id for c in state.alive])
    if wide.empty or state.best not in wide:
        return [Ranked(c, float("nan"), float("nan"), float("nan")) for c in state.alive]
    ranked = [Ranked(c, *ratio_interval(wide[c.id] / wide[state.best])[:3]) for c in state.alive]
    return sorted(ranked, key=lambda r: (r.ratio, r.cell.workers))


def _pick(ranking: list[Ranked], margin: float) -> Cell | None:
    """The fewest workers among the survivors whose centre is within the margin of the best."""
    close = [r for r in ranking if r.ratio <= 1 + margin]
    return min(close, key=lambda r: (r.cell.workers, r.ratio)).cell if close else None

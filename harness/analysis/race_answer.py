"""A race's answer (`order: race`), replayed from its run folder: per saving mode how the race
ended, who was dropped when and why, the survivors ranked with their ratio to the best, and the
recommendation: the fewest workers within the margin of the best."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from harness.analysis.scaling import SAVING_LABEL
from harness.config import Config
from harness.plan.cells import Cell, duration, plan_cells, runnable
from harness.plan.race_rounds import Standing, relative_times, standing
from harness.plan.rounds import groups
from harness.rundir.meta import RunMeta
from harness.schema import BASELINE
from harness.stats.pairing import ratio_interval, rounds_run
from harness.stats.racing import blocks


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
    pick: Cell | None  # the race's answer; while undecided, the fewest W near the leader
    rounds: int
    set_aside: list[Ranked] = field(default_factory=list)  # T / T_answer over stage 1's rounds

    @property
    def verdict(self) -> str:
        return self.standing.ended or "undecided"

    @property
    def decided_after(self) -> int:
        """The rounds it took to answer (all of them while undecided)."""
        ends = self.standing.stage_ends
        return ends[-1][0] if self.standing.ended and ends else self.rounds

    def after(self) -> str:
        """"12 rounds", and the rounds the answer then ran alone for its rate's precision."""
        more = self.rounds - self.decided_after
        alone = f" (then {more} of the answer alone, for its rate's interval)" if more else ""
        return f"{self.decided_after} rounds{alone}"


def answers(runs: pd.DataFrame, config: Config, cores: int) -> list[Answer]:
    """One answer per saving mode that raced."""
    if runs.empty or "round" not in runs or runs["round"].isna().all():
        return []
    rounds = rounds_run(runs)
    rules, found = config.race_rules, []
    times = relative_times(runs)
    for base, members in groups(runnable(plan_cells(config))):
        state = standing(members, runs, rounds, rules, cores)
        ranking = _ranking(times, state.alive, state.best, state.start, rounds)
        found.append(
            Answer(
                base.saving,
                state,
                ranking,
                _pick(ranking, state, rules.margin),
                rounds,
                _set_aside(times, members, state),
            )
        )
    return found


def why_undecided(answer: Answer, meta: RunMeta) -> str:
    """What ended an undecided race's rounds, as a clause ("" once it decided): every
    contender dropped, `repeats.max` rounds, an interrupt, --budget, or a run that stopped."""
    if answer.standing.ended:
        return ""
    most = meta.config.target.max
    if not answer.standing.alive:
        return "every contender was dropped"
    if answer.rounds >= most:
        return f"its rounds reached `repeats.max` ({most})"
    if signal := getattr(meta, "interrupted", None):
        return f"{signal} interrupted it; --resume goes on"
    if budget_s := meta.last_session.budget_s:
        return f"--budget ({duration(budget_s)}) left no time for another round"
    return "the run stopped before it decided; --resume goes on"


def _ranking(
    times: pd.DataFrame, cells: list[Cell], best: str | None, start: int, end: int
) -> list[Ranked]:
    """Each of `cells` against `best` over the rounds [start, end)."""
    wide = blocks(times[times["round"].between(start, end - 1)], [c.id for c in cells])
    if wide.empty or best not in wide:
        return [Ranked(c, float("nan"), float("nan"), float("nan")) for c in cells]
    ranked = [Ranked(c, *ratio_interval(wide[c.id] / wide[best])[:3]) for c in cells]
    return sorted(ranked, key=lambda r: (r.ratio, r.cell.workers))


def _set_aside(times: pd.DataFrame, members: list[Cell], state: Standing) -> list[Ranked]:
    """Stage 1's survivors it did not carry on, against its answer."""
    if not state.set_aside:
        return []
    end, _, answer = state.stage_ends[0]
    cells = [c for c in members if c.id in {answer, *state.set_aside}]
    return [r for r in _ranking(times, cells, answer, 0, end) if r.cell.id != answer]


def _pick(ranking: list[Ranked], state: Standing, margin: float) -> Cell | None:
    """The race's answer once it ended; before, the fewest workers among the survivors whose
    centre is within the margin of the best."""
    if state.answer is not None:
        return next(r.cell for r in ranking if r.cell.id == state.answer)
    close = [r for r in ranking if r.ratio <= 1 + margin]
    return min(close, key=lambda r: (r.cell.workers, r.ratio)).cell if close else None


def feeding(table: pd.DataFrame, target_rate: float) -> str:
    """Which cell feeds `target_rate` images/s with 95% confidence (the low end of its interval
    at or above it): the fewest workers, then the fastest; else how far the best falls short."""
    cells = table[table["strategy"].ne(BASELINE) & table["images_per_s"].notna()]
    if cells.empty:
        return f"no cell has a rate to compare with {target_rate:g} images/s"
    enough = cells[cells["images_per_s_ci_low"] >= target_rate]
    if not enough.empty:
        best = enough.sort_values(["workers", "images_per_s"], ascending=[True, False]).iloc[0]
        return (
            f"{best.strategy} at W = {best.workers} ({SAVING_LABEL[bool(best.saving)]}) feeds "
            f"{target_rate:g} images/s: {_rate(best)} images/s, its 95% interval above the target"
        )
    best = cells.sort_values("images_per_s", ascending=False).iloc[0]
    short = 1 - best.images_per_s / target_rate
    return (
        f"this machine cannot feed {target_rate:g} images/s with 95% confidence: the best is "
        f"{best.strategy} at W = {best.workers} ({SAVING_LABEL[bool(best.saving)]}), "
        f"{_rate(best)} images/s, {short:.0%} short"
    )


def _rate(row: pd.Series) -> str:
    return f"{row.images_per_s:.3g} [{row.images_per_s_ci_low:.3g}, {row.images_per_s_ci_high:.3g}]"

"""The race's rounds (`order: race`): who takes part in each round of paired rounds, replayed
from the stored runs so a resumed race goes on exactly where it stopped.

Per saving mode a race of its own, in two stages (`race.stage: cores`): first every strategy at
W = the largest worker count within the usable cores; once that stage ends, the strategy of
its answer (a tie's too: the tied ones are set aside) at every W of the config, to say how
many workers, until the fewest workers are settled. With `stage: all` every (strategy, W)
races at once. A stage judges its own rounds only (harness/stats/racing.py); a contender whose run
fails is dropped, and says why. Once answered, the answer alone (with the baseline's visits) runs
on until its time's interval, and so its images/s', is within +-`race.rate_ci`: the answer is
not judged again, only measured to the precision its rate is reported with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from harness.config import Race
from harness.plan.cells import Cell
from harness.plan.rounds import TakingPart
from harness.stats.medians import median_interval
from harness.stats.pairing import round_ratios
from harness.stats.racing import SETTLED, TIE, WINNER, Drop, Verdict, blocks, judge


@dataclass
class Standing:
    """A saving mode's race after some rounds: its stage, who is still in, what happened."""

    stage: int
    alive: list[Cell]
    start: int  # the stage's first round
    drops: list[Drop] = field(default_factory=list)
    ended: str = ""  # WINNER, TIE or SETTLED once the last stage ended
    # each stage's end: (rounds, how it ended, its answer)
    stage_ends: list[tuple[int, str, str | None]] = field(default_factory=list)
    alive_after: list[int] = field(default_factory=list)  # survivors after each round
    best: str | None = None
    answer: str | None = None  # once the last stage ended
    set_aside: list[str] = field(default_factory=list)  # stage 1's survivors not carried on


def first_stage(members: list[Cell], cores: int, rules: Race) -> list[Cell]:
    """Every strategy at the largest W within the cores (all of them with `stage: all`)."""
    if rules.stage == "all":
        return list(members)
    within = [c.workers for c in members if c.workers <= cores] or [c.workers for c in members]
    top = max(within)
    return [c for c in members if c.workers == top]


def standing(
    members: list[Cell], before: pd.DataFrame, rounds: int, rules: Race, cores: int
) -> Standing:
    """The race of `members` (one saving mode's contenders) after `rounds` rounds."""
    state = Standing(1, first_stage(members, cores, rules), 0)
    ran = before[before["cell_id"].isin({c.id for c in members})]
    times = relative_times(before)
    for r in range(rounds):
        _failed(state, ran, r)
        now = times[times["round"].between(state.start, r)]
        wide = blocks(now, [c.id for c in state.alive])
        workers = {c.id: c.workers for c in state.alive}
        # stage 2 asks how many workers: stage 1 already judged its strategies against each other
        settle = rules.settle_after if state.stage == 1 or rules.retie else 0
        verdict = judge(wide, rules.first_test, rules.alpha, rules.margin, workers, settle)
        state.drops += verdict.drops
        state.alive = [c for c in state.alive if c.id in verdict.survivors]
        state.best = verdict.best
        state.alive_after.append(len(state.alive))
        if verdict.ended:
            if _next_stage(state, members, verdict, r + 1, rules.carry):
                continue
            state.ended, state.answer = verdict.ended, verdict.answer
            break
    return state


def relative_times(runs: pd.DataFrame) -> pd.DataFrame:
    """Each contender's time in each round over the baseline interpolated at it (1 / its paired
    speedup), as columns contender, round, wall_s: a linear drift within a round cancels."""
    table = round_ratios(runs)
    table = table[table["ratio"].notna()]
    return pd.DataFrame(
        {"contender": table["cell_id"], "round": table["round"], "wall_s": 1 / table["ratio"]}
    )


def _failed(state: Standing, ran: pd.DataFrame, r: int) -> None:
    bad = ran[ran["round"].eq(r) & ran["status"].ne("ok")]
    for cell in [c for c in state.alive if c.id in set(bad["cell_id"])]:
        error = bad.loc[bad["cell_id"].eq(cell.id), "error"].iloc[0]
        state.drops.append(
            Drop(cell.id, r + 1 - state.start, "", float("nan"), float("nan"), error)
        )
        state.alive.remove(cell)


def _next_stage(
    state: Standing, members: list[Cell], verdict: Verdict, rounds: int, carry: str
) -> bool:
    """Into stage 2 when stage 1 ended and its strategies run at other W too: the answer's
    strategy (with `carry: tied`, every strategy of a tie)."""
    state.stage_ends.append((rounds, verdict.ended, verdict.answer))
    if state.stage != 1:
        return False
    tied = verdict.ended == TIE and carry == "tied"
    going_on = state.alive if tied else [c for c in state.alive if c.id == verdict.answer]
    names = {c.strategy for c in going_on}
    later = [c for c in members if c.strategy in names]
    if len(later) <= len(going_on):
        return False
    state.set_aside = [c.id for c in state.alive if c not in going_on]
    state.stage, state.alive, state.start = 2, later, rounds
    return True


def race_taking_part(
    rules: Race, cores: int, out_of_time: Callable[[list[Cell]], bool] = lambda alive: False
) -> TakingPart:
    """For plan_rounds: a saving mode's survivors, none once its race ended or the next round
    would not fit the budget (`out_of_time`)."""

    def taking_part(members: list[Cell], round_: int, before: pd.DataFrame) -> list[Cell]:
        state = standing(members, before, round_, rules, cores)
        going_on = for_its_rate(state, members, before, rules) if state.ended else state.alive
        if not going_on or out_of_time(going_on):
            return []
        return going_on

    return taking_part


def for_its_rate(
    state: Standing, members: list[Cell], before: pd.DataFrame, rules: Race
) -> list[Cell]:
    """The answer, while its time's 95% interval is wider than +-rate_ci; else none."""
    answer = [c for c in members if c.id == state.answer]
    if rules.rate_ci is None or not answer or before.empty:
        return []
    mine = before[before["cell_id"].eq(state.answer) & before["status"].eq("ok")]
    low, high, _ = median_interval(mine["wall_s"])
    centre = mine["wall_s"].median()
    if mine.empty or (high - low) / (2 * centre) <= rules.rate_ci:
        return []
    return answer


__all__ = [
    "SETTLED",
    "TIE",
    "WINNER",
    "Standing",
    "first_stage",
    "for_its_rate",
    "race_taking_part",
    "relative_times",
    "standing",
]

"""Paired rounds (`order: rounds`): the units of a sweep whose ratios divide runs measured
minutes, not hours, apart.

A comparison group is a saving mode's baseline and the cells its ratios divide. A round runs
every cell of a group that still wants runs once, each in its own child (with its warm-up), in a
fresh order drawn from the config's seed, the round and the saving mode. The baseline is visited
at each round's start, and after every `baseline_every` cells; the next round's first visit
closes a round, so each visit serves two rounds, and the group's last round gets a closing visit
of its own. With `slicing_last`, a round runs the cells at W <= usable cores first and the
time-slicing ones after a visit of their own, so the cells whose ratios aim at the target sit
between two visits minutes apart even when the slicing cells make the round long. Each run stores
its round and its position in it. A cell stops taking part once its per-round ratio meets the stop
rule (harness.stats.pairing), judged from the rounds before and the visit that closed them, so a
resumed sweep draws the same order for the round it was in; the baseline goes on while any cell
of its group does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd

from harness.plan.cells import Cell, Unit, time_slicing
from harness.schema import BASELINE
from harness.stats.pairing import cell_ratios, ratio_stop_reason
from harness.stats.precision import Target
from harness.variants import twin_of


def groups(cells: list[Cell]) -> list[tuple[Cell, list[Cell]]]:
    """(baseline, the cells it divides) per saving mode, in plan order; a saving mode without a
    runnable baseline has no ratio to pair, and no group."""
    out = []
    for saving in dict.fromkeys(c.saving for c in cells):
        mode = [c for c in cells if c.saving == saving]
        base = [c for c in mode if c.strategy == BASELINE]
        if base:
            out.append((base[0], [c for c in mode if c.strategy != BASELINE]))
    return out


def visits(cells: int, every: int | None) -> int:
    """The most baseline visits a round of `cells` cells opens with or has between its cells
    (its closing visit is the next round's first)."""
    if cells == 0:
        return 0
    return math.ceil(cells / (every or cells))


def split(members: list[Cell], cores: int, slicing_last: bool) -> bool:
    """Whether a round of these cells runs its time-slicing cells apart, after a visit."""
    slicing = [time_slicing(c, cores) for c in members]
    return slicing_last and any(slicing) and not all(slicing)


def visits_per_round(members: list[Cell], every: int | None, cores: int, slicing_last: bool) -> int:
    """The most visits a round of the group `members` opens with or has between its cells:
    the repeat numbers a round reserves for its baseline."""
    return visits(len(members), every) + split(members, cores, slicing_last)


def round_order(cells: list[Cell], seed: int, round_: int, saving: bool) -> list[Cell]:
    """The round's order of a group's cells: a permutation drawn from (seed, round, saving)."""
    rng = np.random.default_rng([seed, round_, int(saving)])
    return [cells[i] for i in rng.permutation(len(cells))]


def sequence(
    order: list[Cell], base: Cell, every: int | None, cores: int, slicing_last: bool
) -> list[Cell]:
    """The round's sequence of runs, visits included: with `slicing_last` (and cells of both
    kinds) the cells at W <= cores in their drawn order, then a visit and the time-slicing
    cells in theirs; else the whole order (with_visits)."""
    if not split(order, cores, slicing_last):
        return with_visits(order, base, every)
    aimed = [c for c in order if not time_slicing(c, cores)]
    slicing = [c for c in order if time_slicing(c, cores)]
    return with_visits(aimed, base, every) + with_visits(slicing, base, every)


def with_visits(order: list[Cell], base: Cell, every: int | None) -> list[Cell]:
    """The round's sequence: the baseline first and after every `every` cells but the last
    (the next round's first visit, or a closing one, follows the last)."""
    step = every or len(order)
    seq = [base]
    for i, cell in enumerate(order, 1):
        seq.append(cell)
        if i % step == 0 and i < len(order):
            seq.append(base)
    return seq


# Which of a group's cells take part in a round, from the runs of the rounds before it.
TakingPart = Callable[[list[Cell], int, pd.DataFrame], list[Cell]]


def by_ratio(target: Target, cores: int) -> TakingPart:
    """The cells whose speedup's stop rule still wants rounds (every cell with a fixed count)."""

    def taking_part(members: list[Cell], round_: int, before: pd.DataFrame) -> list[Cell]:
        ratios = cell_ratios(before)
        return [c for c in members if _wants(c, ratios.get(c.id, ()), round_, target, cores)]

    return taking_part


def by_twin_ratio(target: Target, cores: int) -> TakingPart:
    """The A/A self-test's: the cells whose speedup's stop rule wants rounds, and both twins of
    every pair whose own ratio, T_A / T_B per round, has not met that stop rule yet (the pair's
    interval is the figure an A/A run judges, within +-ci like a speedup's)."""
    speedups = by_ratio(target, cores)

    def taking_part(members: list[Cell], round_: int, before: pd.DataFrame) -> list[Cell]:
        wanting = {c.id for c in speedups(members, round_, before)}
        walls = _round_walls(before)
        for a, b in twin_pairs(members):
            none = pd.Series(dtype=float)
            both = pd.concat([walls.get(a.id, none), walls.get(b.id, none)], axis=1, join="inner")
            ratios = (both.iloc[:, 0] / both.iloc[:, 1]).to_numpy(dtype=float)
            if not target.fixed and not ratio_stop_reason(ratios, round_, target, False):
                wanting |= {a.id, b.id}
        return [c for c in members if c.id in wanting]

    return taking_part


def leaving_out(taking_part: TakingPart, cut: Callable[[], set[str]]) -> TakingPart:
    """`taking_part` without the cells a limit (--budget, `spend`) has cut: they sit out the
    rounds after, and a group whose cells are all cut ends with the visit that closes its last
    round."""

    def part(members: list[Cell], round_: int, before: pd.DataFrame) -> list[Cell]:
        gone = cut()
        return [c for c in taking_part(members, round_, before) if c.id not in gone]

    return part


def twin_pairs(members: list[Cell]) -> list[tuple[Cell, Cell]]:
    """(cell, its A/A twin) for each twin among `members` (one comparison group)."""
    by_key = {(c.strategy, c.workers): c for c in members}
    return [
        (by_key[(twin_of(c.strategy), c.workers)], c)
        for c in members
        if (twin_of(c.strategy), c.workers) in by_key
    ]


def _round_walls(runs: pd.DataFrame) -> dict[str, pd.Series]:
    """Each cell's ok wall times, indexed by round."""
    if runs.empty or "round" not in runs:
        return {}
    ok = runs[runs["status"].eq("ok") & runs["round"].notna()]
    return {cell: g.set_index("round")["wall_s"] for cell, g in ok.groupby("cell_id")}


def plan_rounds(
    cells: list[Cell],
    target: Target,
    runs: Callable[[], pd.DataFrame],
    cores: int,
    seed: int,
    every: int | None = None,
    taking_part: TakingPart | None = None,
    slicing_last: bool = False,
) -> Iterator[Unit]:
    """The children to start, lazily, round by round, up to `target.max` rounds; runs already
    stored, ok or failed, are not run again (a failed run leaves its round without that cell's
    ratio). Who takes part is `taking_part`'s call, by default the speedups' stop rule, made
    after the visit that opens the round (and closes the one before)."""
    taking_part = taking_part or by_ratio(target, cores)
    active = {base.id for base, _ in groups(cells)}
    for round_ in range(target.max + 1):
        for base, members in groups(cells):
            if base.id not in active:
                continue
            per_round = visits_per_round(members, every, cores, slicing_last)
            # optional as the round it closes: the round before needs it for its ratios
            opening = Unit(base, (round_ * per_round,), round_ > target.min, round_, 0)
            now = runs()
            if _missing(now, opening):
                yield opening
                now = runs()
            wanting = taking_part(members, round_, _before(now, round_))
            if round_ == target.max or not wanting:
                active.discard(base.id)  # the visit above closed its last round
                continue
            order = round_order(wanting, seed, round_, base.saving)
            seq = sequence(order, base, every, cores, slicing_last)
            visit = 1
            for position, cell in enumerate(seq[1:], 1):
                repeat = round_
                if cell == base:
                    repeat, visit = round_ * per_round + visit, visit + 1
                unit = Unit(cell, (repeat,), round_ >= target.min, round=round_, position=position)
                if _missing(now, unit):
                    yield unit


def _before(runs: pd.DataFrame, round_: int) -> pd.DataFrame:
    """What decides who takes part in a round: the runs of the rounds before it and the visit
    that opened it (the same on a resume in the middle of the round)."""
    if "round" not in runs:
        return runs.iloc[:0]
    return runs[runs["round"].lt(round_) | (runs["round"].eq(round_) & runs["position"].eq(0))]


def _missing(runs: pd.DataFrame, unit: Unit) -> bool:
    """Not stored yet, ok or failed: a run that failed stays failed, since re-run later it would
    pair with visits long past."""
    if runs.empty:
        return True
    done = runs["cell_id"].eq(unit.cell.id) & runs["repeat"].eq(unit.repeats[0])
    return not bool(done.any())


def _wants(cell: Cell, ratios: object, round_: int, target: Target, cores: int) -> bool:
    if target.fixed:
        return True
    return not ratio_stop_reason(ratios, round_, target, time_slicing(cell, cores))

"""How each cell's recording went: the stop rule it recorded under, why it stopped (the table's
`stop` column), and what its runs cost in machine time (run-equivalents, and what run 0 paid for
the warm-up)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from harness.analysis.cell_runs import ok_runs, ok_samples, paired
from harness.analysis.processes import usable_cores
from harness.rundir.meta import RunMeta, run_meta
from harness.schema import BASELINE, CELL_KEYS, Cell
from harness.stats.pairing import cell_ratios, ratio_stop_reason
from harness.stats.precision import BUDGET, MAX, SPEND, Target, stop_reason
from harness.sweep_rules import stop_rule

ROUNDS = "rounds"  # the stop of a baseline in paired rounds: visited while its group ran
RACED = "raced"  # a race's contender: the race's drops and answer say when and why it stopped
FIXED_DEFAULT = (3, 1.0)  # the fixed default before precision targets: 3 runs, 1 full warm-up
FIRST_RUN_MIN_LATER = 2  # later runs a cell needs for its run 0 to be compared with them


def run_target(meta: dict | RunMeta) -> Target:
    """The stop rule the run recorded under: its config's, `max` as its last budget capped it."""
    meta = run_meta(meta)
    return stop_rule(meta.config.repeats, meta.last_session.max_runs)


def stop_reasons(cells: pd.DataFrame, runs: pd.DataFrame, meta: dict | RunMeta) -> list[str]:
    """Per cell: why it stopped recording runs ("" for a fixed repeat count)."""
    meta = run_meta(meta)
    target = run_target(meta)
    if target.fixed:
        return [""] * len(cells)
    if meta.config.order.raced:
        return [ROUNDS if s == BASELINE else RACED for s in cells["strategy"]]
    cut = {c for s in meta.sessions for c in s.budget_cut}
    spent = {c for s in meta.sessions for c in s.spend_cut}
    capped = target.max < meta.config.target.max  # a budget lowered max
    samples, cores = ok_samples(runs), usable_cores(meta)
    judge = _round_judge(runs, target, cores) if paired(runs) else None
    reasons = []
    for key in cells[CELL_KEYS].itertuples(index=False, name=None):
        cell = Cell(**dict(zip(CELL_KEYS, key, strict=True)))
        if judge is not None:
            why = judge(cell)
        else:
            why = stop_reason(samples.get(key, []), target, cell.workers > cores)
        if (why == "" and cell.id in cut) or (why == MAX and capped):
            why = BUDGET
        elif why == "" and cell.id in spent:
            why = SPEND
        reasons.append(why or "unfinished")
    return reasons


def _round_judge(runs: pd.DataFrame, target: Target, cores: int) -> Callable[[Cell], str]:
    """A cell's stop reason in paired rounds: its ratio's, after the rounds it ran in."""
    ratios = cell_ratios(runs)
    rounds = runs.groupby("cell_id")["round"].nunique()

    def judge(cell: Cell) -> str:
        if cell.strategy == BASELINE:
            return ROUNDS
        slicing = cell.workers > cores
        return ratio_stop_reason(
            ratios.get(cell.id, []), int(rounds.get(cell.id, 0)), target, slicing
        )

    return judge


def run_equivalents(
    table: pd.DataFrame, runs: pd.DataFrame, meta: dict | RunMeta
) -> tuple[float, float]:
    """Machine time in run-equivalents per cell (one run = one timed call of the cell, so each
    cell weighs by its median time), as recorded, and as FIXED_DEFAULT would have cost:
    (used, fixed). A warm-up counts by its share of the tasks, once per child process: one per
    run in interleaved order and in rounds, one per session the cell ran in otherwise."""
    meta = run_meta(meta)
    warm_runs, share = meta.config.warmup_runs, meta.config.warmup_tasks
    done = table[table["time_s"].notna()].set_index(CELL_KEYS)
    if done.empty:
        return float("nan"), float("nan")
    children = _children(runs, meta).reindex(done.index, fill_value=1)
    used = (done["time_s"] * (done["n_runs"] + warm_runs * share * children)).sum()
    weight = done["time_s"].sum()
    return float(used / weight), float(sum(FIXED_DEFAULT))


def _children(runs: pd.DataFrame, meta: RunMeta) -> pd.Series:
    """Child processes each cell ran in, per CELL_KEYS."""
    if meta.config.order.child_per_run:
        return runs.groupby(CELL_KEYS).size()
    starts = sorted(s.started_at for s in meta.sessions if s.started_at)
    if len(starts) < 2:
        return runs.groupby(CELL_KEYS).size().clip(upper=1)
    when = pd.to_datetime(runs["started_at"], utc=True, errors="coerce")
    session = np.searchsorted(pd.to_datetime(starts, utc=True), when, side="right")
    return runs.assign(session=session).groupby(CELL_KEYS)["session"].nunique()


def first_run_ratios(runs: pd.DataFrame, meta: dict | RunMeta) -> pd.Series:
    """Per cell (CELL_KEYS index): its recorded run 0 / the median of its later ok runs. What a
    warm-up left for run 0 to pay: 1.0 is nothing. Only in sequential order, where run 0 is the
    first timed call after the warm-up in its child; in interleaved order and in rounds every run
    has its own warm-up, so there is no run 0 to single out (empty)."""
    if run_meta(meta).config.order.child_per_run:
        return pd.Series(dtype=float)
    ratios = {}
    for key, cell in ok_runs(runs).groupby(CELL_KEYS, sort=False):
        first, later = cell[cell["repeat"].eq(0)], cell[cell["repeat"].gt(0)]
        if len(first) == 1 and len(later) >= FIRST_RUN_MIN_LATER:
            ratios[key] = float(first["wall_s"].iat[0] / later["wall_s"].median())
    index = pd.MultiIndex.from_tuples(list(ratios), names=CELL_KEYS) if ratios else None
    return pd.Series(list(ratios.values()), index=index, dtype=float)

"""Two run folders cell by cell: did B make a cell slower or faster than A?

What two sessions may compare is what each paired within its own rounds: every cell's speedup
(efficiency for a weak run; at the same W either gives the same ratio) with its interval. Per
cell the difference test of harness.analysis.difference judges B / A, its standard error from
the two intervals and the between-session level of the config's other paired sessions on this
machine (harness.analysis.compare_levels). With fewer than three of them the level comes from
A and B alone (difference.pair_level), and the output says so.

Absolute times, and images/s, are compared too, judged the same way with the between-session
level of the paired sessions' baselines: they move with the machine's speed, so they are shown
as drift-prone, never as the verdict. The text is harness.analysis.compare_text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness.analysis import difference
from harness.analysis.cell_runs import cell_id, ok_samples, paired
from harness.analysis.compare_levels import (
    FROM_PAIR,
    Level,
    other_sessions,
    speedup_level,
    time_level,
)
from harness.analysis.processes import usable_cores
from harness.analysis.scaling import scaling_table
from harness.plan.history import siblings
from harness.rundir import store
from harness.rundir.meta import RunMeta, run_meta
from harness.schema import BASELINE, CELL_KEYS
from harness.stats import medians
from harness.stats.pairing import LEVEL, cell_ratios, ratio_interval

ESTIMATE_COLUMNS = ["a", "a_low", "a_high", "b", "b_low", "b_high"]
SPEEDUP_COLUMNS = [*CELL_KEYS, "slicing", *ESTIMATE_COLUMNS, *difference.COLUMNS]
TIME_COLUMNS = [*CELL_KEYS, *ESTIMATE_COLUMNS, "rate_a", "rate_b", *difference.COLUMNS]


@dataclass(frozen=True)
class Side:
    """One of the two run folders, loaded."""

    path: Path
    meta: RunMeta
    runs: pd.DataFrame
    table: pd.DataFrame

    @property
    def paired(self) -> bool:
        return paired(self.runs)


@dataclass(frozen=True)
class Comparison:
    """A against B: `speedups` one row per cell but the baselines (SPEEDUP_COLUMNS: A's and
    B's estimate, then the test's row), `times` one row per cell (TIME_COLUMNS), and the levels
    they were judged with: `levels` by "cells" (W <= cores), "slicing" (W above) and "times"."""

    a: Side
    b: Side
    kind: str
    cores: int
    speedups: pd.DataFrame
    times: pd.DataFrame
    levels: dict[str, Level | None]

    @property
    def quantity(self) -> str:
        return quantity(self.kind)


def quantity(kind: str) -> str:
    """What a run's speedup rows hold: the speedup (strong) or the efficiency (weak), the one
    its rounds pair."""
    return "speedup" if kind == "strong" else "efficiency"


def load_side(path: Path) -> Side:
    path = store.require_run_dir(Path(path))
    meta = run_meta(store.read_meta(path), str(path / store.META))
    runs = store.load_runs(path)
    return Side(path, meta, runs, scaling_table(runs, meta.config.kind))


def compare_runs(run_a: Path, run_b: Path, spread_from: list[Path] | None = None) -> Comparison:
    """A against B, cell by cell. The between-session levels come from the paired sessions
    among `spread_from`, by default the other run folders beside A and B."""
    a, b = load_side(run_a), load_side(run_b)
    kind, cores = a.meta.config.kind, usable_cores(a.meta)
    folders = siblings(a.path, b.path) if spread_from is None else spread_from
    sessions = other_sessions(folders, a.meta)
    levels = {
        "cells": speedup_level(sessions, cores, slicing=False),
        "slicing": speedup_level(sessions, cores, slicing=True),
        "times": time_level(sessions),
    }
    speedups, levels = speedup_rows(a, b, kind, cores, levels)
    times = time_rows(a, b, levels["times"])
    return Comparison(a, b, kind, cores, speedups, times, levels)


def speedup_rows(
    a: Side, b: Side, kind: str, cores: int, levels: dict[str, Level | None]
) -> tuple[pd.DataFrame, dict[str, Level | None]]:
    """The speedup rows, and the levels with A and B's own where the sessions gave none."""
    est_a, est_b = estimates(a, quantity(kind)), estimates(b, quantity(kind))
    keys = [k for k in est_a if k in est_b]
    group = {k: "slicing" if k[2] > cores else "cells" for k in keys}
    levels = dict(levels)
    for name in ("cells", "slicing"):
        if levels[name] is None:
            levels[name] = _pair_level([(est_a[k], est_b[k]) for k in keys if group[k] == name])
    sd = {name: level.sd if level else 0.0 for name, level in levels.items()}
    rows = [_speedup_row(k, group[k] == "slicing", est_a[k], est_b[k], sd[group[k]]) for k in keys]
    return pd.DataFrame(rows, columns=SPEEDUP_COLUMNS), levels


def estimates(side: Side, column: str) -> dict[tuple, tuple]:
    """Per cell but the baselines, in the table's order: (centre, low, high, coverage) of its
    speedup or efficiency; the coverage is the paired interval's, or the bootstrap's level."""
    ratios = cell_ratios(side.runs) if side.paired else {}
    found = {}
    for _, r in side.table[~side.table["strategy"].eq(BASELINE)].iterrows():
        key = tuple(r[k] for k in CELL_KEYS)
        coverage = LEVEL
        if side.paired:
            coverage = ratio_interval(ratios.get(cell_id(key), []))[3]
        found[key] = (r[column], r[f"{column}_ci_low"], r[f"{column}_ci_high"], coverage)
    return found


def _pair_level(pairs: list[tuple[tuple, tuple]]) -> Level | None:
    d = np.array([np.log(b[0] / a[0]) if a[0] > 0 and b[0] > 0 else np.nan for a, b in pairs])
    se = np.array([np.hypot(difference.log_se(*a), difference.log_se(*b)) for a, b in pairs])
    sd = difference.pair_level(d, se)
    return Level(sd, int(np.isfinite(d).sum()), FROM_PAIR) if np.isfinite(sd) else None


def _speedup_row(key: tuple, slicing: bool, a: tuple, b: tuple, sd: float) -> dict:
    return {
        **dict(zip(CELL_KEYS, key, strict=True)),
        "slicing": slicing,
        **dict(zip(ESTIMATE_COLUMNS, [*a[:3], *b[:3]], strict=True)),
        **difference.of_estimates(a, b, sd),
    }


def time_rows(a: Side, b: Side, level: Level | None) -> pd.DataFrame:
    """Per cell in both, in A's order: the median times with their intervals, images/s, and the
    test of B / A's time (bootstrap interval) with the baselines' between-session level."""
    times_a, times_b = ok_samples(a.runs), ok_samples(b.runs)
    rows_b = {tuple(r[k] for k in CELL_KEYS): r for _, r in b.table.iterrows()}
    sd = level.sd if level else 0.0
    rows = []
    for _, ra in a.table.iterrows():
        key = tuple(ra[k] for k in CELL_KEYS)
        if key not in rows_b or key not in times_a or key not in times_b:
            continue
        rb = rows_b[key]
        low, high = medians.ratio_ci(times_b[key], times_a[key])
        ratio = rb["time_s"] / ra["time_s"] if ra["time_s"] > 0 else np.nan
        se = difference.log_se(ratio, low, high)
        rows.append(
            {
                **dict(zip(CELL_KEYS, key, strict=True)),
                **dict(zip(ESTIMATE_COLUMNS, _interval(ra) + _interval(rb), strict=True)),
                "rate_a": ra.get("images_per_s", np.nan),
                "rate_b": rb.get("images_per_s", np.nan),
                **difference.of_ratio(ratio, se, sd),
            }
        )
    return pd.DataFrame(rows, columns=TIME_COLUMNS)


def _interval(row: pd.Series) -> list[float]:
    return [row["time_s"], row["ci_low"], row["ci_high"]]

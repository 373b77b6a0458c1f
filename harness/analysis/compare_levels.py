"""How far a session moves what `compare` compares: the between-session levels, from the other
paired run folders of A's config measured on a machine like A's (the same CPU model and core
counts), never from A and B themselves, whose difference is what is asked.

- The speedups' level is the report's (harness/analysis/session_level.py): per cell, the
  spread of the sessions' log speedups beyond their own intervals, DerSimonian and Laird's
  estimate pooled over the cells, read from each folder's `tables/<kind>.csv`. The cells at W <=
  the usable cores get one level, the time-slicing cells (W above) another.
- The times' level is the same estimate over the baselines' times (each with its interval's
  own coverage): how far the machine's speed moves from one session to the next.

Sequential-order folders are left out: their spread is the drift pairing removes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness.analysis.cell_runs import paired
from harness.analysis.difference import log_se
from harness.analysis.session_level import COLUMNS, pooled_between, table_estimates
from harness.errors import HarnessError
from harness.plan.history import MIN_SESSIONS, same_machine
from harness.rundir import store
from harness.rundir.meta import RunMeta, read_run_meta
from harness.schema import BASELINE, CELL_KEYS

FROM_SESSIONS = "sessions"  # the other paired sessions of the config
FROM_PAIR = "pair"  # A and B themselves (difference.pair_level), when too few others
NEEDED = {*CELL_KEYS, "time_s", "ci_low", "ci_high", "speedup", "speedup_ci_low", "speedup_ci_high"}


@dataclass(frozen=True)
class Level:
    """A between-session sd on the log scale (a relative sd), pooled over `cells` cells, from
    `folders` (FROM_SESSIONS) or from A and B alone (FROM_PAIR)."""

    sd: float
    cells: int
    source: str
    folders: tuple[Path, ...] = ()


def other_sessions(folders: list[Path], meta: RunMeta) -> dict[Path, pd.DataFrame]:
    """The paired run folders among `folders` of the config `meta` ran, on a machine like its
    one, each with its stored table (a folder that cannot be read is passed over)."""
    found = {}
    for folder in folders:
        try:
            other = read_run_meta(folder)
            if not _comparable(other, meta) or not paired(store.load_runs(folder)):
                continue
            table = pd.read_csv(folder / "tables" / f"{meta.config.kind}.csv")
        except (HarnessError, OSError, ValueError):
            continue
        if NEEDED <= set(table.columns):  # else a table from before intervals were stored
            found[folder] = table
    return found


def _comparable(other: RunMeta, meta: RunMeta) -> bool:
    return (
        other.config.name == meta.config.name
        and other.config.kind == meta.config.kind
        and same_machine(other.host.model_dump(), meta.host.model_dump())
    )


def speedup_level(sessions: dict[Path, pd.DataFrame], cores: int, slicing: bool) -> Level | None:
    """The speedups' level at W <= cores (or, `slicing`, above); None from fewer than
    MIN_SESSIONS sessions or without a cell seen twice."""
    frames = []
    for folder, table in sessions.items():
        cells = table[table["workers"].gt(cores) if slicing else table["workers"].le(cores)]
        frames.append(table_estimates(cells, str(folder), 1 << 30))
    return _level(frames, sessions)


def time_level(sessions: dict[Path, pd.DataFrame]) -> Level | None:
    """The level of the baselines' times; None as speedup_level."""
    frames = []
    for folder, table in sessions.items():
        base = table[table["strategy"].eq(BASELINE)]
        rows = [_time_row(r, str(folder)) for _, r in base.iterrows()]
        frames.append(pd.DataFrame(rows, columns=COLUMNS))
    return _level(frames, sessions)


def _time_row(row: pd.Series, source: str) -> dict:
    coverage = float(row.get("ci_level", 0.95))
    return {
        **{k: row[k] for k in CELL_KEYS},
        "source": source,
        "log_centre": float(np.log(row["time_s"])) if row["time_s"] > 0 else np.nan,
        "log_se": log_se(row["time_s"], row["ci_low"], row["ci_high"], coverage),
    }


def _level(frames: list[pd.DataFrame], sessions: dict[Path, pd.DataFrame]) -> Level | None:
    frames = [f.dropna(subset=["log_centre", "log_se"]) for f in frames]
    frames = [f for f in frames if not f.empty]
    if len(frames) < MIN_SESSIONS:
        return None
    sd, cells = pooled_between(pd.concat(frames, ignore_index=True))
    if cells == 0:
        return None
    sources = {f["source"].iat[0] for f in frames}
    used = tuple(p for p in sessions if str(p) in sources)
    return Level(sd, cells, FROM_SESSIONS, used)

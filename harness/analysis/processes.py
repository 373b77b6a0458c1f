"""Busy processes per cell, and oversubscription: more of them than the usable cores of the host
the run ran on (harness.machine.usable_cores_of, the rule the live machine uses too).

Whether a strategy runs in-process is given by the caller (harness.analysis.results reads it from
the strategy registry); nothing here knows a strategy by name.
"""

from __future__ import annotations

from collections.abc import Collection

import pandas as pd

from harness.analysis.cell_runs import ok_runs
from harness.machine import usable_cores_of
from harness.rundir.meta import RunMeta, run_meta
from harness.schema import BASELINE, CELL_KEYS

MAIN_BUSY_FRACTION = 0.5  # main counts as a worker when it dispatches for half the wall time


def logical_cores(meta: dict | RunMeta) -> int:
    host = run_meta(meta).host
    return int(host.logical_cores or host.physical_cores)


def usable_cores(meta: dict | RunMeta) -> int:
    """The usable cores of the host the run ran on: the oversubscription threshold."""
    meta = run_meta(meta)
    return usable_cores_of(int(meta.host.physical_cores), meta.setup.get("affinity"))


def processes_for(
    strategy: str, workers: int, main_works: bool = False, in_process: bool = False
) -> int:
    """Processes that keep a CPU busy for the whole parallel phase of one run.

    The baseline: 1. Any other strategy: its W workers (pool processes, or threads of one
    process for in-process strategies); a strategy whose W includes helper processes (savers)
    counts them in W. The main process only dispatches and waits, and helpers that only relay
    data do not count, unless measurements show the main process busy (main_works: t_dispatch_s
    above MAIN_BUSY_FRACTION of the wall time); for in-process strategies the main process's CPU
    time is the workers' own, so it never adds one.
    """
    own = 1 if strategy == BASELINE else int(workers)
    return own + (1 if main_works and not in_process else 0)


def main_busy(runs: pd.DataFrame) -> dict[tuple, bool]:
    """Per cell key: whether its main process dispatched for over MAIN_BUSY_FRACTION of the wall
    time (median over the ok runs)."""
    if "t_dispatch_s" not in runs:
        return {}
    ok = ok_runs(runs)
    share = (ok["t_dispatch_s"] / ok["wall_s"]).groupby([ok[k] for k in CELL_KEYS]).median()
    return {key: bool(value > MAIN_BUSY_FRACTION) for key, value in share.items()}


def cell_processes(
    table: pd.DataFrame, runs: pd.DataFrame | None = None, in_process: Collection[str] = (BASELINE,)
) -> pd.Series:
    """processes_for every row of a per-cell table (scaling or phase table); in_process: the
    strategies whose workers are threads of the measuring process."""
    busy = main_busy(runs) if runs is not None else {}
    keys = table[CELL_KEYS].itertuples(index=False, name=None)
    counts = [processes_for(k[0], k[2], busy.get(k, False), k[0] in in_process) for k in keys]
    return pd.Series(counts, index=table.index, dtype=int)


def oversubscribed(processes: pd.Series | int, cores: int) -> pd.Series | bool:
    """More busy processes than usable cores: the one definition of oversubscription."""
    return processes > cores

"""Where a cell's time goes: its phases per worker, pool start-up and overhead (phase_table), the
utilization of each run, and how many cores its processes kept busy (cores_busy_table).

A strategy's own phase columns and whether it runs in-process are given by the caller
(harness.analysis.results reads them from the strategy registry).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import pandas as pd

from harness.analysis.cell_runs import cell_order, ok_runs
from harness.schema import BASELINE, CELL_KEYS, WORK_PHASES

STARTUP, OVERHEAD, DISPATCH = "t_startup_s", "overhead_s", "t_dispatch_s"


def run_utilization(runs: pd.DataFrame) -> pd.Series:
    """Per run: busy seconds over capacity, (t_read + t_augment + t_save) / (wall_s * workers).

    The phase times are wall-clock per task, so time a process waits for a CPU counts as busy:
    with more processes than cores this overstates real CPU use.
    """
    present = [c for c in WORK_PHASES if c in runs]
    if not present:  # only runs that never finished: the runner stored no phase columns
        return pd.Series(float("nan"), index=runs.index)
    busy = runs[present].fillna(0).sum(axis=1)
    return busy / (runs["wall_s"] * runs["workers"])


def phase_table(
    runs: pd.DataFrame,
    extra: Mapping[str, str] | None = None,
    in_process: Collection[str] = (BASELINE,),
) -> pd.DataFrame:
    """Where the time goes, per cell: mean over ok runs of each phase's seconds per worker
    (phase sum / workers), pool start-up (wall time no worker can use), and the rest of the wall
    time as overhead/idle. The columns of one row add up to `wall_s`.

    extra: the strategies' own phase columns ({"t_hand_off_s": "hand-off"}), stacked after the
    work phases; in_process: strategies whose main-process CPU time is the workers' own, so their
    t_dispatch_s is left empty."""
    ok = ok_runs(runs)
    if not any(c in ok for c in WORK_PHASES):  # no run finished: nothing to split
        ok = ok.iloc[0:0]
    phases = [c for c in [*WORK_PHASES, *(extra or {})] if c in ok]
    per_worker = ok[phases].fillna(0).div(ok["workers"], axis=0)
    if STARTUP in ok:
        per_worker[STARTUP] = ok[STARTUP].fillna(0)
    overhead = (ok["wall_s"] - per_worker.sum(axis=1)).clip(lower=0)
    frame = pd.concat([ok[CELL_KEYS + ["wall_s"]], per_worker], axis=1).assign(
        overhead_s=overhead, utilization=run_utilization(ok)
    )
    for optional in (DISPATCH, "peak_rss_mb"):
        if optional in ok:
            frame[optional] = ok[optional]
    if DISPATCH in frame:  # in-process strategies: main's CPU is the workers' own, not dispatch
        frame.loc[ok["strategy"].isin(list(in_process)), DISPATCH] = float("nan")
    if "t_cpu_s" in ok:  # CPU seconds of all the run's processes per wall second
        frame["cores_busy"] = ok["t_cpu_s"] / ok["wall_s"]
    agg = {c: "mean" for c in frame.columns if c not in CELL_KEYS}
    if "peak_rss_mb" in frame:
        agg["peak_rss_mb"] = "max"
    return cell_order(frame.groupby(CELL_KEYS, sort=False).agg(agg).reset_index())


def phase_columns(
    table: pd.DataFrame, extra: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """(column, label) of the stacked parts of phase_table, in order, those present only."""
    labels = {**WORK_PHASES, **(extra or {})}
    parts = [(c, label) for c, label in labels.items() if c in table]
    if STARTUP in table:
        parts.append((STARTUP, "pool start-up"))
    return parts + [(OVERHEAD, "overhead/idle")]


def cores_busy_table(runs: pd.DataFrame) -> pd.DataFrame | None:
    """Per cell: cores_busy = t_cpu_s / wall_s (CPU seconds of all the run's processes per wall
    second), the median over its ok runs, and the median steal_s where the run recorded it.
    None for run folders that record no CPU time (t_cpu_s)."""
    ok = ok_runs(runs)
    if "t_cpu_s" not in ok or not ok["t_cpu_s"].notna().any():
        return None
    frame = ok[CELL_KEYS].assign(cores_busy=ok["t_cpu_s"] / ok["wall_s"])
    if "steal_s" in ok and ok["steal_s"].notna().any():
        frame["steal_s"] = ok["steal_s"]
    return cell_order(frame.groupby(CELL_KEYS, sort=False).median().reset_index())


def cores_busy_peaks(table: pd.DataFrame) -> pd.DataFrame:
    """Per strategy (in table order): the cell where it kept the most cores busy."""
    rows = table[table["cores_busy"].notna()]
    if rows.empty:
        return rows
    best = rows.loc[rows.groupby("strategy", sort=False)["cores_busy"].idxmax()]
    return best.reset_index(drop=True)

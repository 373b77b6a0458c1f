"""The study's figures from raw runs, with the statistics the study lacked.

strong: S = T_seq / T_W, E = S / W, Ideal = T_seq / W
weak:   E = T_seq(base size) / T_W, S = E * W (scaled speedup)
T is the median of a cell's ok repeats; each saving mode has its own baseline. Intervals are
bootstrap 95% intervals (harness.stats); speedup and efficiency intervals resample the baseline's
runs and the cell's runs independently.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness import stats

TABLE_COLUMNS = [
    "strategy", "saving", "workers", "width", "height", "time_s", "speedup", "efficiency", "ideal_s", "n_ok", "n_runs",
    "ci_low", "ci_high", "cv", "unstable", "n_outliers",
    "speedup_ci_low", "speedup_ci_high", "efficiency_ci_low", "efficiency_ci_high", "utilization",
]
CELL_KEYS = ["strategy", "saving", "workers", "width", "height"]
WORK_PHASES = ["t_read_s", "t_augment_s", "t_save_s"]
# Phases shown in plots/phases.png, in stacking order; absent columns are left out.
PHASES = {
    "t_read_s": "read", "t_augment_s": "augment", "t_save_s": "save", "t_queue_put_s": "queue put",
    "t_dispatch_s": "dispatch",
}


def cell_medians(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: median wall time of its ok repeats, with counts."""
    runs = runs.assign(ok=runs["status"].eq("ok"))
    grouped = runs.groupby(CELL_KEYS, sort=False)
    out = grouped.agg(n_runs=("ok", "size"), n_ok=("ok", "sum")).reset_index()
    medians = runs[runs["ok"]].groupby(CELL_KEYS, sort=False)["wall_s"].median().rename("time_s")
    return out.merge(medians.reset_index(), on=CELL_KEYS, how="left")


def ok_samples(runs: pd.DataFrame, column: str = "wall_s") -> dict[tuple, np.ndarray]:
    """Per cell key (CELL_KEYS order): the values of `column` over its ok runs."""
    ok = runs[runs["status"].eq("ok")]
    return {key: group[column].to_numpy(dtype=float) for key, group in ok.groupby(CELL_KEYS, sort=False)}


def baseline_samples(samples: dict[tuple, np.ndarray]) -> dict[bool, np.ndarray]:
    return {key[1]: values for key, values in samples.items() if key[0] == "sequential"}


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


def scaling_table(runs: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Long-form table: one row per cell, baselines first, with speedup and efficiency."""
    cells = cell_medians(runs)
    base = cells[cells["strategy"].eq("sequential")].set_index("saving")["time_s"]
    t_seq = cells["saving"].map(base)
    w = cells["workers"]
    if kind == "strong":
        speedup = t_seq / cells["time_s"]
        efficiency = speedup / w
    else:
        efficiency = t_seq / cells["time_s"]
        speedup = efficiency * w
    table = cells.assign(speedup=speedup, efficiency=efficiency, ideal_s=t_seq / w if kind == "strong" else t_seq)
    table = _with_statistics(table, runs, kind)
    table = table.sort_values(["saving", "workers", "strategy"], ascending=[False, True, True], key=_baseline_first)
    return table[TABLE_COLUMNS].reset_index(drop=True)


def _with_statistics(table: pd.DataFrame, runs: pd.DataFrame, kind: str) -> pd.DataFrame:
    samples = ok_samples(runs)
    bases = baseline_samples(samples)
    util = ok_samples(runs.assign(utilization=run_utilization(runs)), "utilization")
    rows = []
    for key in table[CELL_KEYS].itertuples(index=False, name=None):
        times = samples.get(key, np.array([]))
        low, high = stats.ratio_ci(bases.get(key[1], []), times)
        workers = key[2]
        ratio = (low, high) if kind == "strong" else (low * workers, high * workers)
        gain = (low / workers, high / workers) if kind == "strong" else (low, high)
        summary = stats.summary(times)
        del summary["time_s"]  # the median is already there, from cell_medians
        rows.append({
            **summary,
            "speedup_ci_low": ratio[0], "speedup_ci_high": ratio[1],
            "efficiency_ci_low": gain[0], "efficiency_ci_high": gain[1],
            "utilization": stats.median(util.get(key, [])),
        })
    extra = pd.DataFrame(rows, index=table.index, columns=TABLE_COLUMNS[11:])
    extra["n_outliers"] = extra["n_outliers"].astype("Int64")
    extra["unstable"] = extra["unstable"].astype(bool)
    return pd.concat([table, extra], axis=1)


def _baseline_first(col: pd.Series) -> pd.Series:
    if col.name == "strategy":
        return col.ne("sequential").astype(int).astype(str) + col
    return col


def baselines(table: pd.DataFrame) -> dict[bool, float]:
    rows = table[table["strategy"].eq("sequential")]
    return dict(zip(rows["saving"], rows["time_s"], strict=True))


def phase_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Where the time goes, per cell: mean over ok runs of each phase's seconds per worker
    (phase sum / workers), pool start-up (wall time no worker can use), and the rest of the wall
    time as overhead/idle. The columns of one row add up to `wall_s`."""
    ok = runs[runs["status"].eq("ok")]
    if not any(c in ok for c in WORK_PHASES):  # no run finished: nothing to split
        ok = ok.iloc[0:0]
    phases = [c for c in PHASES if c in ok and c != "t_dispatch_s"]
    per_worker = ok[phases].fillna(0).div(ok["workers"], axis=0)
    if "t_startup_s" in ok:
        per_worker["t_startup_s"] = ok["t_startup_s"].fillna(0)
    overhead = (ok["wall_s"] - per_worker.sum(axis=1)).clip(lower=0)
    frame = pd.concat([ok[CELL_KEYS + ["wall_s"]], per_worker], axis=1).assign(
        overhead_s=overhead, utilization=run_utilization(ok)
    )
    for optional in ("t_dispatch_s", "peak_rss_mb"):
        if optional in ok:
            frame[optional] = ok[optional]
    if "t_dispatch_s" in frame:  # in-process strategies: main's CPU is the workers' own, not dispatch
        from experiments.strategies import in_process

        frame.loc[ok["strategy"].map(in_process).astype(bool), "t_dispatch_s"] = float("nan")
    if "t_cpu_s" in ok:  # CPU seconds of all the run's processes per wall second: real use, unlike phase sums
        frame["cores_busy"] = ok["t_cpu_s"] / ok["wall_s"]
    agg = {c: "mean" for c in frame.columns if c not in CELL_KEYS}
    if "peak_rss_mb" in frame:
        agg["peak_rss_mb"] = "max"
    table = frame.groupby(CELL_KEYS, sort=False).agg(agg).reset_index()
    table = table.sort_values(["saving", "workers", "strategy"], ascending=[False, True, True], key=_baseline_first)
    return table.reset_index(drop=True)


def phase_columns(table: pd.DataFrame) -> list[tuple[str, str]]:
    """(column, label) of the stacked parts of phase_table, in order, those present only."""
    parts = [(c, label) for c, label in PHASES.items() if c in table and c != "t_dispatch_s"]
    if "t_startup_s" in table:
        parts.append(("t_startup_s", "pool start-up"))
    return parts + [("overhead_s", "overhead/idle")]


def per_run_speedups(runs: pd.DataFrame, kind: str) -> pd.DataFrame:
    """One row per ok run: strategy, saving, workers and its speedup against the median of its
    saving mode's baseline (strong: T_seq / T_run; weak: scaled, W * T_seq / T_run)."""
    ok = runs[runs["status"].eq("ok")]
    base = ok[ok["strategy"].eq("sequential")].groupby("saving")["wall_s"].median()
    ratio = ok["saving"].map(base) / ok["wall_s"]
    speedup = ratio if kind == "strong" else ratio * ok["workers"]
    out = ok[["strategy", "saving", "workers"]].assign(speedup=speedup)
    return out[out["speedup"].notna()].reset_index(drop=True)

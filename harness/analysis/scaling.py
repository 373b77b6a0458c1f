"""The study's figures from raw runs, with the statistics the study lacked: the speedup and
efficiency table, one row per cell.

strong: S = T_seq / T_W, E = S / W, Ideal = T_seq / W
weak:   E = T_seq(base size) / T_W, S = E * W (scaled speedup)
T is the median of a cell's ok repeats; each saving mode has its own baseline (schema.BASELINE).
Intervals are bootstrap 95% intervals (harness.stats); speedup and efficiency intervals resample
the baseline's runs and the cell's runs independently. In paired rounds (`order: rounds`) a
cell's speedup and efficiency come from its per-round ratios instead (harness.stats.pairing): their
Hodges-Lehmann centre and Wilcoxon interval.

Beside it: why each cell stopped (harness.analysis.stops), where its time went
(harness.analysis.phases), its busy processes (harness.analysis.processes). Every function takes
plain data (runs, tables, column labels) and knows no strategy by name.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.analysis.cell_runs import cell_id, cell_order, ok_runs, ok_samples, paired
from harness.analysis.phases import run_utilization
from harness.analysis.stops import stop_reasons
from harness.rundir.meta import RunMeta
from harness.schema import BASELINE, CELL_KEYS
from harness.schema import TABLE_COLUMNS as SCHEMA_TABLE_COLUMNS
from harness.stats import medians
from harness.stats.pairing import cell_ratios, ratio_interval

SAVING_LABEL = {True: "saving", False: "no saving"}
# Columns the checks add to a scaling table (harness.analysis.checks), not computed here.
CHECK_COLUMNS = ("processes", "oversubscribed")
# scaling_table's columns, in order: the schema's table columns the analysis computes.
TABLE_COLUMNS = [c for c in SCHEMA_TABLE_COLUMNS if c not in CHECK_COLUMNS]
STATISTIC_COLUMNS = TABLE_COLUMNS[TABLE_COLUMNS.index("ci_low") :]


def cell_medians(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: median wall time of its ok repeats, with counts."""
    runs = runs.assign(ok=runs["status"].eq("ok"))
    grouped = runs.groupby(CELL_KEYS, sort=False)
    out = grouped.agg(n_runs=("ok", "size"), n_ok=("ok", "sum")).reset_index()
    medians = runs[runs["ok"]].groupby(CELL_KEYS, sort=False)["wall_s"].median().rename("time_s")
    return out.merge(medians.reset_index(), on=CELL_KEYS, how="left")


def baseline_samples(samples: dict[tuple, np.ndarray]) -> dict[bool, np.ndarray]:
    return {key[1]: values for key, values in samples.items() if key[0] == BASELINE}


def scaling_table(
    runs: pd.DataFrame, kind: str, meta: dict | RunMeta | None = None
) -> pd.DataFrame:
    """Long-form table: one row per cell, baselines first, with speedup and efficiency (and
    with meta, why each cell stopped recording)."""
    cells = cell_medians(runs)
    cells["stop"] = stop_reasons(cells, runs, meta) if meta else ""
    base = cells[cells["strategy"].eq(BASELINE)].set_index("saving")["time_s"]
    t_seq = cells["saving"].map(base)
    w = cells["workers"]
    if kind == "strong":
        speedup = t_seq / cells["time_s"]
        efficiency = speedup / w
    else:
        efficiency = t_seq / cells["time_s"]
        speedup = efficiency * w
    ideal = t_seq / w if kind == "strong" else t_seq
    table = cells.assign(speedup=speedup, efficiency=efficiency, ideal_s=ideal)
    table = _with_rates(_with_statistics(table, runs, kind), runs)
    if paired(runs):
        table = _with_paired_ratios(table, runs, kind)
    return cell_order(table)[TABLE_COLUMNS]


def _with_rates(table: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Images per second, as a training step counts them, with the time's interval turned over:
    a run's tasks over its median time (its low end from the time's high end)."""
    if "n_images" not in runs or "augmentations_per_image" not in runs:
        return table.assign(
            images_per_s=np.nan, images_per_s_ci_low=np.nan, images_per_s_ci_high=np.nan
        )
    per_run = runs.assign(tasks=runs["n_images"] * runs["augmentations_per_image"])
    tasks = (
        table[CELL_KEYS]
        .merge(per_run.groupby(CELL_KEYS, sort=False)["tasks"].first().reset_index(), how="left")[
            "tasks"
        ]
        .to_numpy(dtype=float)
    )
    return table.assign(
        images_per_s=tasks / table["time_s"].to_numpy(dtype=float),
        images_per_s_ci_low=tasks / table["ci_high"].to_numpy(dtype=float),
        images_per_s_ci_high=tasks / table["ci_low"].to_numpy(dtype=float),
    )


def _with_paired_ratios(table: pd.DataFrame, runs: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Speedup and efficiency from the cells' per-round ratios, with their intervals."""
    ratios, table = cell_ratios(runs), table.copy()
    keys = table[CELL_KEYS].itertuples(index=False, name=None)
    for i, key in zip(table.index, keys, strict=True):
        if key[0] == BASELINE:
            continue
        centre, low, high, _ = ratio_interval(ratios.get(cell_id(key), []))
        w = key[2]
        speedup = [v if kind == "strong" else v * w for v in (centre, low, high)]
        table.loc[i, ["speedup", "speedup_ci_low", "speedup_ci_high"]] = speedup
        table.loc[i, ["efficiency", "efficiency_ci_low", "efficiency_ci_high"]] = [
            v / w for v in speedup
        ]
    return table


def _with_statistics(table: pd.DataFrame, runs: pd.DataFrame, kind: str) -> pd.DataFrame:
    samples = ok_samples(runs)
    bases = baseline_samples(samples)
    util = ok_samples(runs.assign(utilization=run_utilization(runs)), "utilization")
    rows = []
    for key in table[CELL_KEYS].itertuples(index=False, name=None):
        times = samples.get(key, np.array([]))
        low, high = medians.ratio_ci(bases.get(key[1], []), times)
        workers = key[2]
        ratio = (low, high) if kind == "strong" else (low * workers, high * workers)
        gain = (low / workers, high / workers) if kind == "strong" else (low, high)
        summary = medians.summary(times)
        del summary["time_s"]  # the median is already there, from cell_medians
        rows.append(
            {
                **summary,
                "speedup_ci_low": ratio[0],
                "speedup_ci_high": ratio[1],
                "efficiency_ci_low": gain[0],
                "efficiency_ci_high": gain[1],
                "utilization": medians.median(util.get(key, [])),
            }
        )
    extra = pd.DataFrame(rows, index=table.index, columns=STATISTIC_COLUMNS)
    extra["n_outliers"] = extra["n_outliers"].astype("Int64")
    extra["unstable"] = extra["unstable"].astype(bool)
    return pd.concat([table, extra], axis=1)


def baselines(table: pd.DataFrame) -> dict[bool, float]:
    """Each saving mode's baseline time (median), for the modes whose baseline finished."""
    rows = table[table["strategy"].eq(BASELINE) & table["time_s"].notna()]
    return dict(zip(rows["saving"], rows["time_s"], strict=True))


WORK_COLUMNS = [*CELL_KEYS, "efficiency", "pixels", "work", "efficiency_work"]


def work_growth(
    table: pd.DataFrame, runs: pd.DataFrame, tasks: pd.DataFrame | None
) -> pd.DataFrame:
    """Weak scaling: per cell, its pixels and its tasks' work, each against its saving mode's
    baseline, and the efficiency at the work done. E = T_base / T_W assumes that W times the
    pixels is W times the work. `work` is the tasks' CPU seconds (reading left out, saving and
    savers in), the median over the cell's traced ok runs, over the baseline's; then
    efficiency_work = E * work / W = (T_base * work / W) / T_W: T_W against the baseline's
    time scaled by the work actually done, spread over W workers. Task CPU includes any
    contention, so above the usable cores `work` overstates the work. Empty without traces."""
    if tasks is None or tasks.empty:
        return pd.DataFrame(columns=WORK_COLUMNS)
    rows = tasks[tasks["kind"].ne("main")]
    cpu = rows["cpu_s"] - rows["read_cpu_s"].fillna(0.0)
    per_run = cpu.groupby([rows["cell_id"], rows["repeat"].astype(int)]).sum()
    ok = ok_runs(runs)
    ok_pairs = list(zip(ok["cell_id"], ok["repeat"].astype(int), strict=True))
    traced = per_run[per_run.index.isin(ok_pairs)]
    per_cell = traced.groupby(level=0).median().rename("task_cpu_s")
    ids = ok[["cell_id", *CELL_KEYS]].drop_duplicates("cell_id")
    frame = table[[*CELL_KEYS, "efficiency"]].merge(ids, on=CELL_KEYS)
    frame = frame.merge(per_cell, left_on="cell_id", right_index=True)
    base = frame[frame["strategy"].eq(BASELINE)].set_index("saving")
    frame = frame[frame["saving"].isin(base.index)]
    of_base = frame["saving"].map
    pixels = frame["width"] * frame["height"]
    frame = frame.assign(
        pixels=pixels / of_base(base["width"] * base["height"]),
        work=frame["task_cpu_s"] / of_base(base["task_cpu_s"]),
    )
    frame["efficiency_work"] = frame["efficiency"] * frame["work"] / frame["workers"]
    return cell_order(frame)[WORK_COLUMNS]


def per_run_speedups(runs: pd.DataFrame, kind: str) -> pd.DataFrame:
    """One row per ok run: strategy, saving, workers and its speedup against the median of its
    saving mode's baseline (strong: T_seq / T_run; weak: scaled, W * T_seq / T_run)."""
    ok = ok_runs(runs)
    base = ok[ok["strategy"].eq(BASELINE)].groupby("saving")["wall_s"].median()
    ratio = ok["saving"].map(base) / ok["wall_s"]
    speedup = ratio if kind == "strong" else ratio * ok["workers"]
    out = ok[["strategy", "saving", "workers"]].assign(speedup=speedup)
    return out[out["speedup"].notna()].reset_index(drop=True)

"""The study's figures from raw runs.

strong: S = T_seq / T_W, E = S / W, Ideal = T_seq / W
weak:   E = T_seq(base size) / T_W, S = E * W (scaled speedup)
T is the median of a cell's ok repeats; each saving mode has its own baseline.
"""

from __future__ import annotations

import pandas as pd

TABLE_COLUMNS = ["strategy", "saving", "workers", "width", "height", "time_s", "speedup", "efficiency", "ideal_s", "n_ok", "n_runs"]
CELL_KEYS = ["strategy", "saving", "workers", "width", "height"]


def cell_medians(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: median wall time of its ok repeats, with counts."""
    runs = runs.assign(ok=runs["status"].eq("ok"))
    grouped = runs.groupby(CELL_KEYS, sort=False)
    out = grouped.agg(n_runs=("ok", "size"), n_ok=("ok", "sum")).reset_index()
    medians = runs[runs["ok"]].groupby(CELL_KEYS, sort=False)["wall_s"].median().rename("time_s")
    return out.merge(medians.reset_index(), on=CELL_KEYS, how="left")


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
    table = table.sort_values(["saving", "workers", "strategy"], ascending=[False, True, True], key=_baseline_first)
    return table[TABLE_COLUMNS].reset_index(drop=True)


def _baseline_first(col: pd.Series) -> pd.Series:
    if col.name == "strategy":
        return col.ne("sequential").astype(int).astype(str) + col
    return col


def baselines(table: pd.DataFrame) -> dict[bool, float]:
    rows = table[table["strategy"].eq("sequential")]
    return dict(zip(rows["saving"], rows["time_s"], strict=True))

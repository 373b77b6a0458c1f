"""A run table seen cell by cell: its ok runs, their samples per cell, the report's cell order,
and whether the runs were measured in paired rounds. What every per-cell table builds on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness.schema import BASELINE, CELL_KEYS, Cell


def ok_runs(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"].eq("ok")]


def ok_samples(runs: pd.DataFrame, column: str = "wall_s") -> dict[tuple, np.ndarray]:
    """Per cell key (CELL_KEYS order): the values of `column` over its ok runs."""
    ok = ok_runs(runs)
    return {
        key: group[column].to_numpy(dtype=float) for key, group in ok.groupby(CELL_KEYS, sort=False)
    }


def cell_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Saving first, then by workers, each mode's baseline at its head, then by strategy."""
    frame = frame.sort_values(
        ["saving", "workers", "strategy"], ascending=[False, True, True], key=_baseline_first
    )
    return frame.reset_index(drop=True)


def _baseline_first(col: pd.Series) -> pd.Series:
    if col.name == "strategy":
        return col.ne(BASELINE).astype(int).astype(str) + col
    return col


def cell_id(key: tuple) -> str:
    return Cell(**dict(zip(CELL_KEYS, key, strict=True))).id


def paired(runs: pd.DataFrame) -> bool:
    """Whether the runs were measured in paired rounds."""
    return "round" in runs and bool(runs["round"].notna().any())

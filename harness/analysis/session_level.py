"""The between-session level of a paired run's speedups (Kalibera & Jones's session level).

A paired interval holds for the session that measured it: the rounds share that session's
machine. Another session, hours later, may move a speedup by more than its rounds can see. That
level is estimated from sessions of the same config on the same machine, each an estimate of
every cell's speedup with its own interval: the earlier paired run folders beside this one
(started before it, so a report renders the same whenever it is rendered) and this run's own
sessions when it was resumed.

Per cell at W <= the usable cores, the spread of the sessions' log speedups beyond what their own
intervals explain (se = the log interval's width / 2z), by DerSimonian and Laird's moment
estimate pooled over the cells: with w = 1 / se^2, Q the weighted sum of squares about each
cell's weighted mean and C = sum(w) - sum(w^2) / sum(w), var_between = max(0, (sum Q - sum df)
/ sum C). A cell's interval across sessions widens each side of its own on the log scale:
sqrt(side^2 + (z sd_between)^2 / k), k being this run's sessions (each of them an independent
draw of the session level).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from harness.analysis.cell_runs import paired
from harness.errors import HarnessError
from harness.plan.history import MIN_SESSIONS, same_machine, siblings
from harness.rundir import store
from harness.rundir.meta import RunMeta, read_run_meta
from harness.schema import BASELINE, CELL_KEYS
from harness.stats.pairing import LEVEL, cell_ratios, ratio_interval

Z = float(norm.ppf(0.5 + LEVEL / 2))
COLUMNS = [*CELL_KEYS, "source", "log_centre", "log_se"]
MIN_SE = 1e-4  # an interval of no width would weigh infinitely


@dataclass(frozen=True)
class Between:
    """The between-session sd of a log speedup (a relative sd), pooled over `cells` cells seen
    in two sessions or more, from `sessions` sessions: this run's and `folders`'."""

    sd: float
    sessions: int
    cells: int
    folders: tuple[Path, ...]
    own_sessions: int

    def widen(self, centre: float, low: float, high: float) -> tuple[float, float]:
        """A cell's interval across sessions from its own (speedup or efficiency alike)."""
        if not centre > 0 or not low > 0 or not high > 0:
            return np.nan, np.nan
        extra = (Z * self.sd) ** 2 / max(self.own_sessions, 1)
        down = np.sqrt(np.log(centre / low) ** 2 + extra)
        up = np.sqrt(np.log(high / centre) ** 2 + extra)
        return float(centre * np.exp(-down)), float(centre * np.exp(up))


def between_sessions(
    run_dir: Path, meta: RunMeta, runs: pd.DataFrame, table: pd.DataFrame, cores: int
) -> Between | None:
    """The session level for this paired run; None with fewer than MIN_SESSIONS sessions."""
    own = own_estimates(meta, runs, table, cores)
    earlier, folders = earlier_estimates(run_dir, meta, cores)
    estimates = pd.concat([e for e in (own, earlier) if not e.empty] or [own])
    sessions = estimates["source"].nunique()
    if sessions < MIN_SESSIONS:
        return None
    sd, cells = pooled_between(estimates)
    if cells == 0:
        return None
    own_sessions = own["source"].nunique()
    return Between(sd, sessions, cells, tuple(folders), own_sessions)


def pooled_between(estimates: pd.DataFrame) -> tuple[float, int]:
    """(the between-session sd, how many cells it pools) from COLUMNS rows: DerSimonian and
    Laird's estimate, pooled over the cells, each cell's sessions weighted by 1 / se^2."""
    q, df, c, cells = 0.0, 0, 0.0, 0
    for _, cell in estimates.groupby(CELL_KEYS):
        x = cell["log_centre"].to_numpy(dtype=float)
        if len(x) < 2:
            continue
        w = 1 / np.maximum(cell["log_se"].to_numpy(dtype=float), MIN_SE) ** 2
        mean = np.sum(w * x) / np.sum(w)
        q += float(np.sum(w * (x - mean) ** 2))
        c += float(np.sum(w) - np.sum(w**2) / np.sum(w))
        df, cells = df + len(x) - 1, cells + 1
    if df == 0:
        return np.nan, 0
    return float(np.sqrt(max(0.0, (q - df) / c))), cells


def own_estimates(
    meta: RunMeta, runs: pd.DataFrame, table: pd.DataFrame, cores: int
) -> pd.DataFrame:
    """This run's estimates: one per session from the rounds each ran when it was resumed, else
    its table's speedups."""
    starts = [s.started_at for s in meta.sessions if s.started_at]
    if len(starts) < 2:
        return table_estimates(table, "this run", cores)
    at = pd.to_datetime(runs["started_at"], utc=True, errors="coerce")
    which = np.searchsorted(pd.to_datetime(starts, utc=True).to_numpy(), at.to_numpy(), "right")
    frames = [
        _ratio_estimates(runs[which == i], f"this run, session {i}", cores)
        for i in range(1, len(starts) + 1)
    ]
    return pd.concat(frames, ignore_index=True)


def _ratio_estimates(runs: pd.DataFrame, source: str, cores: int) -> pd.DataFrame:
    keys = runs.drop_duplicates("cell_id").set_index("cell_id")[CELL_KEYS]
    rows = []
    for cell, ratios in cell_ratios(runs).items():
        key = tuple(keys.loc[cell])
        if key[0] == BASELINE or key[2] > cores or np.isfinite(ratios).sum() < 3:
            continue
        centre, low, high, _ = ratio_interval(ratios)
        rows.append(_row(key, source, centre, low, high))
    return pd.DataFrame(rows, columns=COLUMNS)


def table_estimates(table: pd.DataFrame, source: str, cores: int) -> pd.DataFrame:
    """One estimate per cell at W <= cores from a scaling table's speedup and its interval."""
    cells = table[~table["strategy"].eq(BASELINE) & table["workers"].le(cores)]
    rows = [
        _row(tuple(r[k] for k in CELL_KEYS), source, r.speedup, r.speedup_ci_low, r.speedup_ci_high)
        for _, r in cells.iterrows()
    ]
    rows = [r for r in rows if np.isfinite(r["log_centre"]) and np.isfinite(r["log_se"])]
    return pd.DataFrame(rows, columns=COLUMNS)


def _row(key: tuple, source: str, centre: float, low: float, high: float) -> dict:
    valid = centre > 0 and low > 0 and high > 0
    return {
        **dict(zip(CELL_KEYS, key, strict=True)),
        "source": source,
        "log_centre": float(np.log(centre)) if valid else np.nan,
        "log_se": float(np.log(high / low) / (2 * Z)) if valid else np.nan,
    }


def earlier_estimates(run_dir: Path, meta: RunMeta, cores: int) -> tuple[pd.DataFrame, list[Path]]:
    """The speedups of the paired run folders of this config beside `run_dir`, measured on a
    machine like this one and started before it, with those folders."""
    frames, used = [], []
    for folder, table in earlier_tables(run_dir, meta, f"{meta.config.kind}.csv"):
        found = table_estimates(table, str(folder), cores)
        if not found.empty:
            frames.append(found)
            used.append(folder)
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)), used


def earlier_tables(run_dir: Path, meta: RunMeta, name: str) -> list[tuple[Path, pd.DataFrame]]:
    """tables/<name> of each paired run folder of this config beside `run_dir`, measured on a
    machine like this one and started before it (so a report renders the same whenever it is
    rendered)."""
    started = str(getattr(meta, "started_at", "") or "")
    found = []
    for folder in siblings(Path(run_dir)):
        try:
            other = read_run_meta(folder)
            table = pd.read_csv(folder / "tables" / name)
        except (HarnessError, OSError, ValueError):
            continue
        if _comparable(other, meta, folder) and str(getattr(other, "started_at", "")) < started:
            found.append((folder, table))
    return found


def _comparable(other: RunMeta, meta: RunMeta, folder: Path) -> bool:
    return (
        other.config.name == meta.config.name
        and other.config.kind == meta.config.kind
        and same_machine(other.host.model_dump(), meta.host.model_dump())
        and _paired_folder(folder)
    )


def _paired_folder(folder: Path) -> bool:
    """Whether the folder's stored runs were measured in paired rounds."""
    try:
        return paired(store.load_runs(folder))
    except (HarnessError, OSError, ValueError):
        return False


def across_sessions(table: pd.DataFrame, between: Between, cores: int) -> pd.DataFrame:
    """Per cell at W <= cores: its speedup, its interval within the run, and across sessions."""
    cells = table[~table["strategy"].eq(BASELINE) & table["workers"].le(cores)]
    rows = []
    for _, r in cells.iterrows():
        low, high = between.widen(r["speedup"], r["speedup_ci_low"], r["speedup_ci_high"])
        rows.append(
            {
                **{k: r[k] for k in CELL_KEYS},
                "speedup": r["speedup"],
                "speedup_ci_low": r["speedup_ci_low"],
                "speedup_ci_high": r["speedup_ci_high"],
                "sessions_ci_low": low,
                "sessions_ci_high": high,
                "between_sd": between.sd,
                "sessions": between.sessions,
            }
        )
    return pd.DataFrame(rows)

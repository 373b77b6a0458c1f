"""The between-session level of the loss account's causes, as session_level.py gives it for the
speedups.

A cause's interval over a cell's runs (losses.summarise) holds for the session that measured
it. Between sessions of the same config on the same machine, a cause can move by more than its
runs can see: the cold start and the steady state trade points while their sum holds, and
small causes known to a twentieth of a point within a session move by a few tenths. So each
cause's level is estimated per cell, from the earlier paired run folders of the config (their
tables/<kind>_loss.csv, within-run intervals) and this run, wherever the cell was measured in
MIN_SESSIONS (4) sessions or more: the spread of the sessions' estimates beyond what their own
intervals explain (se = the interval's half-width / t(0.975, runs - 1)), by DerSimonian and
Laird's estimate as for the speedups (session_level.pooled_between, here one cell at a time). Per
cell, not pooled: a cause's level differs between cells by orders of magnitude (a tenth of a
point of waiting at W = 2, a thousandth of one of a first hand-out at W = 1), so one pooled level
would be too wide for some cells and too narrow for others.

A cause's interval across sessions widens each side of its own: sqrt(side^2 + (z sd)^2). A cell
with no level (seen in fewer sessions, or at W beyond the usable cores, where the speedups have
none either) keeps its within-run interval, and `loss_sessions` says 0 for it. CPU inflation's
split is then kept only where both parts, widened, are still within +-SPLIT_WIDTH_PP, and only
where earlier sessions measured the split of that cell at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import t as t_dist

from harness.analysis import losses
from harness.analysis.session_level import Z, earlier_tables, pooled_between
from harness.rundir.meta import RunMeta
from harness.schema import CELL_KEYS

# The within-run interval, kept beside the one across sessions (tables/<kind>_loss.csv): what
# the next session's level is estimated from.
# The split's own values too: a split not shown across sessions still tells the next level.
RUN_COLUMNS = [
    *(f"{c}_run" for c in losses.SPLIT_COLUMNS),
    *(f"{c}_run_{end}" for c in losses.CAUSES for end in ("low", "high")),
]
SESSIONS = "loss_sessions"  # sessions the cell's levels come from (0: within the run only)
CSV_COLUMNS = [*losses.TABLE_COLUMNS, SESSIONS, *RUN_COLUMNS]
LONG = [*CELL_KEYS, "source", "cause", "value", "se"]
# Sessions a cell's level needs: from three, a level that dominates the runs' own spread is
# estimated too low often enough that a session's widened interval held the truth in 88% of
# simulated cells; from four, 94% (tests/test_loss_sessions.py).
MIN_SESSIONS = 4
NOT_ACROSS = "not measured apart in earlier sessions"


@dataclass(frozen=True)
class CauseLevels:
    """Per (cause column, *cell key): the between-session sd in pp and the sessions it is
    estimated from; `sessions` and `folders`: every session of the config that was read."""

    sd: dict[tuple, tuple[float, int]]
    sessions: int
    folders: tuple[Path, ...]

    def at(self, cause: str, cell: tuple) -> tuple[float, int] | None:
        return self.sd.get((cause, *cell))


def estimates(table: pd.DataFrame, source: str, cores: int) -> pd.DataFrame:
    """Long rows (cell keys, source, cause, value, se) of a loss table's cells at W <= cores,
    from their within-run intervals (the _run_ columns where a table has them)."""
    cells = table[table["workers"].le(cores)]
    if "runs_accounted" not in cells or cells.empty:
        return pd.DataFrame(columns=LONG)
    n = cells["runs_accounted"].to_numpy(dtype=float)
    t = t_dist.ppf(0.975, np.maximum(n - 1, 1))
    frames = []
    for cause in losses.CAUSES:
        value, low, high = (_within_run(cells, cause, end) for end in ("", "_low", "_high"))
        if value is None or low is None or high is None:
            continue
        frame = cells[CELL_KEYS].assign(
            source=source, cause=cause, value=value, se=(high - low) / (2 * t)
        )
        frames.append(frame[np.isfinite(frame["value"]) & np.isfinite(frame["se"]) & (n >= 2)])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=LONG)


def _within_run(cells: pd.DataFrame, cause: str, end: str) -> np.ndarray | None:
    """A cause's within-run value or interval end: its _run column where the table has one
    (rendered with a level), else the plain one (rendered without)."""
    for column in (f"{cause}_run{end}", f"{cause}{end}"):
        if column in cells:
            return cells[column].to_numpy(dtype=float)
    return None


def cell_level(rows: pd.DataFrame) -> tuple[float, int] | None:
    """One cause's level in one cell from its LONG rows, and how many sessions tell; None from
    fewer than MIN_SESSIONS."""
    sessions = rows["source"].nunique()
    if sessions < MIN_SESSIONS:
        return None
    renamed = rows.rename(columns={"value": "log_centre", "se": "log_se"})
    sd, _ = pooled_between(renamed)
    return (sd, sessions) if np.isfinite(sd) else None


def cause_levels(
    run_dir: Path, meta: RunMeta, table: pd.DataFrame, cores: int
) -> CauseLevels | None:
    """The level of every cause for this run's loss table; None with fewer than MIN_SESSIONS
    sessions of the config (this run counted)."""
    name = f"{meta.config.kind}_loss.csv"
    earlier = [(f, estimates(t, str(f), cores)) for f, t in earlier_tables(run_dir, meta, name)]
    earlier = [(f, e) for f, e in earlier if not e.empty]
    if len(earlier) + 1 < MIN_SESSIONS:
        return None
    rows = pd.concat([estimates(table, "this run", cores), *(e for _, e in earlier)])
    found = {(c, *cell): cell_level(r) for (c, *cell), r in rows.groupby(["cause", *CELL_KEYS])}
    sd = {key: v for key, v in found.items() if v is not None}
    if not sd:
        return None
    return CauseLevels(sd, len(earlier) + 1, tuple(f for f, _ in earlier))


def across_sessions(table: pd.DataFrame, levels: CauseLevels | None) -> pd.DataFrame:
    """The loss table with each cause's interval widened by its level (the within-run one kept
    in RUN_COLUMNS) and the split re-judged on the widened parts; unchanged but for the new
    columns where there is no level."""
    out = table.copy()
    for column in RUN_COLUMNS:
        out[column] = out[column.replace("_run", "")]
    out[SESSIONS] = 0
    if levels is None or out.empty:
        return out
    cells = list(out[CELL_KEYS].itertuples(index=False, name=None))
    unknown = pd.Series(False, index=out.index)
    for cause in losses.CAUSES:
        found = [levels.at(cause, cell) for cell in cells]
        sd = pd.Series([f[0] if f else np.nan for f in found], index=out.index)
        told = pd.Series([f[1] if f else 0 for f in found], index=out.index)
        out[f"{cause}_low"], out[f"{cause}_high"] = _widen(out, cause, sd.fillna(0.0))
        out[SESSIONS] = np.maximum(out[SESSIONS], told)
        if cause in losses.SPLIT_COLUMNS:
            unknown |= sd.isna()
    unknown &= out[SESSIONS].gt(0)  # a cell with no level at all keeps its run's judgement
    split = out[losses.SPLIT_REASON].fillna("").eq("")
    wide = pd.Series(False, index=out.index)
    for column in losses.SPLIT_COLUMNS:
        half = (out[f"{column}_high"] - out[f"{column}_low"]) / 2
        wide |= ~(half <= losses.SPLIT_WIDTH_PP)
    out.loc[split & wide, losses.SPLIT_REASON] = losses.NOT_SEPARABLE
    out.loc[split & unknown, losses.SPLIT_REASON] = NOT_ACROSS
    ends = [f"{c}_{end}" for c in losses.SPLIT_COLUMNS for end in ("low", "high")]
    out.loc[split & (wide | unknown), [*losses.SPLIT_COLUMNS, *ends]] = np.nan
    return out


def _widen(table: pd.DataFrame, cause: str, sd: pd.Series) -> tuple[pd.Series, pd.Series]:
    centre, low, high = (table[c].astype(float) for c in (cause, f"{cause}_low", f"{cause}_high"))
    extra = (Z * sd) ** 2
    down = np.sqrt((centre - low) ** 2 + extra)
    up = np.sqrt((high - centre) ** 2 + extra)
    return centre - down, centre + up

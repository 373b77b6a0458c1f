"""Warnings from the scaling table: what its cells show (oversubscribed, implausible, unstable,
outlying, with too few runs or short of their target) and how far their intervals reach.

Thresholds, and why:
- oversubscribed: a cell's CPU-bound processes (processes.processes_for) exceed the usable
  physical cores, min(physical cores, CPUs in the affinity mask).
- implausible speedup (strong scaling): a cell at W = the usable cores, not oversubscribed,
  reports a speedup above W, an efficiency above 100%. W workers cannot do the sequential
  run's work more than W times as fast, and start-up, hand-out and waiting cost them some of it,
  so such a speedup is almost always a baseline measured at another speed than the cell. It is
  judged on the point estimate, the figure a reader takes away: a cell whose interval still
  reaches W may be noise, and the warning says which cells' whole interval lies above W. Weak
  scaling is left out: its E > 100% can be real when W times the pixels is less than W times
  the work ("Work at each size").
- session-only intervals: a run not measured in paired rounds (`order: sequential` or
  `interleaved`) takes its speedup intervals from the baseline's runs and each cell's, measured
  at different times of one session. They hold for this session only: another session, with the
  machine at another speed, may move a speedup by more (docs/STATISTICS.md, Paired rounds).
- unstable: CV (std/mean of a cell's ok runs) above 5% (harness.stats.medians.UNSTABLE_CV).
"""

from __future__ import annotations

import pandas as pd

from harness.analysis.scaling import SAVING_LABEL
from harness.analysis.stops import RACED, ROUNDS
from harness.rundir.meta import RunMeta
from harness.schema import BASELINE
from harness.stats import medians
from harness.stats.precision import SLICING, TARGET

OVERSUBSCRIBED = "†"
UNSTABLE = "~"


def oversubscribed_cells(table: pd.DataFrame, oversubscribed: pd.Series, cores: int) -> list[str]:
    over = table[oversubscribed & table["time_s"].notna()]
    if over.empty:
        return []
    workers = ", ".join(map(str, sorted(set(over["workers"]))))
    return [
        f"{len(over)} cell(s) ({OVERSUBSCRIBED}) ran more busy processes than the {cores} usable "
        f"physical cores (W = {workers}): they measure time-slicing, not added hardware, and "
        "scaling models fitted through them describe this machine's limit. "
        f"Fix: keep W <= {cores} for scaling claims."
    ]


def unstable_cells(table: pd.DataFrame) -> list[str]:
    rows = table[table["unstable"].fillna(False).astype(bool)]
    if rows.empty:
        return []
    listed = "; ".join(f"{_cell(r)} CV {r.cv:.0%}" for r in rows.itertuples())
    return [
        f"{len(rows)} cell(s) ({UNSTABLE}) vary by more than {medians.UNSTABLE_CV:.0%} between "
        f"repeats: {listed}; their medians are uncertain (see the intervals). "
        "Fix: close other programs, raise `repeats`, and re-run."
    ]


def outlier_cells(table: pd.DataFrame) -> list[str]:
    rows = table[table["n_outliers"].fillna(0) > 0]
    if rows.empty:
        return []
    listed = "; ".join(f"{_cell(r)} {int(r.n_outliers)}" for r in rows.itertuples())
    return [
        f"Outlying runs (modified z-score > {medians.OUTLIER_Z}) in {len(rows)} cell(s): "
        f"{listed}; the median resists them, the mean and CV do not. "
        "Fix: look for what else ran at that time (runs.parquet has started_at) and re-run."
    ]


def few_repeats(table: pd.DataFrame) -> list[str]:
    """Cells whose interval is the runs' range with under 95% coverage (fewer than 6 ok runs),
    outside time-slicing cells that a precision target stops at min on purpose."""
    level = table["ci_level"] if "ci_level" in table else pd.Series(1.0, index=table.index)
    stop = table["stop"] if "stop" in table else pd.Series("", index=table.index)
    few = table[(table["n_ok"] > 0) & (level < 0.95) & stop.ne(SLICING)]
    if few.empty:
        return []
    need = medians.min_runs_for(0.95)
    return [
        f"{len(few)} cell(s) have fewer than {need} ok runs, so their interval is just the "
        f"runs' range, covering the median with {few['ci_level'].min():.0%} to "
        f"{few['ci_level'].max():.0%} only. Fix: `repeats: {{min: 3, max: 10, ci: 0.03}}` "
        f"(a precision target) or `repeats: {need}` or more."
    ]


def missed_targets(table: pd.DataFrame, meta: RunMeta, paired: bool) -> list[str]:
    """Cells at W <= usable cores that stopped without reaching the precision target; in paired
    rounds the rule judged the speedup, not the time."""
    repeats = meta.config.repeats
    if "stop" not in table or isinstance(repeats, int):
        return []
    missed = table[~table["stop"].isin(["", TARGET, SLICING, ROUNDS, RACED])]
    if missed.empty:
        return []
    precision = (
        (missed["speedup_ci_high"] - missed["speedup_ci_low"]) / (2 * missed["speedup"])
        if paired
        else missed["half_width"]
    )
    what = "speedup " if paired else ""
    listed = ", ".join(
        f"{r.strategy} W={r.workers} {SAVING_LABEL[bool(r.saving)]} "
        f"({what}+-{hw:.1%} after {r.n_ok}: {r.stop})"
        for r, hw in zip(missed.itertuples(), precision, strict=True)
    )
    return [
        f"{len(missed)} cell(s) missed the +-{repeats.ci:.0%} target: {listed}. Fix: "
        "`futile` and `max` mean the runs vary too much (run on a quieter machine, or raise "
        "`max`); `budget` means --budget cut them (give more time, or --resume later); "
        "`spend` means the config's `repeats.spend` cap on machine time cut them (raise it, or "
        "drop it to let every cell run to its target)."
    ]


def implausible_speedups(
    table: pd.DataFrame, oversubscribed: pd.Series, kind: str, paired: bool, cores: int
) -> list[str]:
    """Strong scaling: cells with W = the usable cores, not oversubscribed, whose speedup is above
    W (see "implausible speedup" above), with the likely cause and fix for the run's order.
    Below the cores a speedup above W can be real: the main process works beside the W workers
    (reading, handing out) on a core of its own."""
    if kind != "strong":
        return []
    fits = ~oversubscribed.astype(bool) & table["workers"].ge(cores)
    rows = table[fits & table["strategy"].ne(BASELINE) & table["efficiency"].gt(1)]
    if rows.empty:
        return []
    listed = "; ".join(_speedup(r) for r in rows.itertuples())
    if paired:
        cause = (
            "Here the baseline visits beside these cells ran slower than the cells: the "
            "machine's speed moved within the rounds, or the baseline does work the cell skips "
            "(compare their `t_cpu_s` in runs.parquet)."
        )
        fix = (
            "more rounds (raise `repeats.max`) on a quieter machine; if the speedup stays above "
            "W, find the work the baseline does and the cell does not (Where the time goes) "
            "before reading it as a scaling result."
        )
    else:
        cause = (
            "Here the baseline's runs and the cell's were measured at different times of the "
            "session, and the machine's speed moved between them."
        )
        fix = (
            "`order: rounds`, which measures each cell beside a baseline visit of its own round "
            "and takes the speedup from their ratios, with more repeats than a fixed few "
            "(`repeats: {min: 3, max: 10, ci: 0.03}`)."
        )
    return [
        f"{len(rows)} cell(s) report a speedup above W on W usable cores: {listed}. W workers "
        "cannot do the sequential run's work more than W times as fast, so this is almost always "
        f"a baseline measured at another speed than the cell. {cause} Where a cell's interval "
        "still reaches W, noise may explain it too; where its whole interval is above W, noise "
        f"cannot. Fix: {fix}"
    ]


def _speedup(row: object) -> str:
    text = f"{_cell(row)} {row.speedup:.2f}"
    if pd.notna(row.speedup_ci_low):
        text += f" [{row.speedup_ci_low:.2f}, {row.speedup_ci_high:.2f}]"
    if row.efficiency_ci_low > 1:
        text += ", its whole interval above W"
    return text


def session_only_intervals(table: pd.DataFrame, paired: bool, order: str | None) -> list[str]:
    """A run outside paired rounds: its speedup intervals hold within the session (see
    "session-only intervals" above). order: the config's unpaired `order:`, to name it; None
    when the config names a paired one the runs do not show."""
    cells = table[table["strategy"].ne(BASELINE) & table["speedup_ci_low"].notna()]
    if paired or cells.empty:
        return []
    named = f"`order: {order}`" if order else "not in paired rounds"
    return [
        f"This run ({named}) measured the baseline and each cell at different times of "
        "one session, so its speedup intervals hold within this session only: another session, "
        "with the machine at another speed, may move a speedup by more than its interval. "
        "Fix: `order: rounds` measures every cell beside a baseline visit of its own round, "
        "minutes apart, and takes each speedup from their ratios (docs/STATISTICS.md, Paired "
        "rounds)."
    ]


def _cell(row: object) -> str:
    return f"{row.strategy} W={row.workers} ({SAVING_LABEL[bool(row.saving)]})"

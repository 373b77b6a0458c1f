"""The study's figures from raw runs, with the statistics the study lacked.

strong: S = T_seq / T_W, E = S / W, Ideal = T_seq / W
weak:   E = T_seq(base size) / T_W, S = E * W (scaled speedup)
T is the median of a cell's ok repeats; each saving mode has its own baseline (schema.BASELINE).
Intervals are bootstrap 95% intervals (harness.stats); speedup and efficiency intervals resample
the baseline's runs and the cell's runs independently. In paired rounds (`order: rounds`) a
cell's speedup and efficiency come from its per-round ratios instead (harness.stats.pairing): their
Hodges-Lehmann centre and Wilcoxon interval.

Busy processes per cell and oversubscription (more of them than usable cores) are defined here
too. Every function takes plain data (runs, tables, column labels) and knows no strategy by
name: a strategy's own phase columns and whether it runs in-process are given by the caller
(harness.analysis.results reads them from the strategy registry).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

import numpy as np
import pandas as pd

from harness.rundir.meta import RunMeta, run_meta
from harness.schema import BASELINE, CELL_KEYS, WORK_PHASES, Cell
from harness.schema import TABLE_COLUMNS as SCHEMA_TABLE_COLUMNS
from harness.stats import medians
from harness.stats.pairing import cell_ratios, ratio_interval, ratio_stop_reason
from harness.stats.precision import BUDGET, MAX, SPEND, Target, stop_reason

SAVING_LABEL = {True: "saving", False: "no saving"}
# Columns the checks add to a scaling table (harness.analysis.checks), not computed here.
CHECK_COLUMNS = ("processes", "oversubscribed")
# scaling_table's columns, in order: the schema's table columns the analysis computes.
TABLE_COLUMNS = [c for c in SCHEMA_TABLE_COLUMNS if c not in CHECK_COLUMNS]
STATISTIC_COLUMNS = TABLE_COLUMNS[TABLE_COLUMNS.index("ci_low") :]
STARTUP, OVERHEAD, DISPATCH = "t_startup_s", "overhead_s", "t_dispatch_s"
MAIN_BUSY_FRACTION = 0.5  # main counts as a worker when it dispatches for half the wall time


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


def ok_runs(runs: pd.DataFrame) -> pd.DataFrame:
    return runs[runs["status"].eq("ok")]


# ---------------------------------------------------------------- processes and cores


def logical_cores(meta: dict | RunMeta) -> int:
    host = run_meta(meta).host
    return int(host.logical_cores or host.physical_cores)


def usable_cores(meta: dict | RunMeta) -> int:
    """min(physical cores, CPUs in the affinity mask): the oversubscription threshold."""
    meta = run_meta(meta)
    physical = int(meta.host.physical_cores)
    affinity = meta.setup.get("affinity")
    return min(physical, len(affinity)) if affinity else physical


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


# ---------------------------------------------------------------- the scaling table


def cell_medians(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: median wall time of its ok repeats, with counts."""
    runs = runs.assign(ok=runs["status"].eq("ok"))
    grouped = runs.groupby(CELL_KEYS, sort=False)
    out = grouped.agg(n_runs=("ok", "size"), n_ok=("ok", "sum")).reset_index()
    medians = runs[runs["ok"]].groupby(CELL_KEYS, sort=False)["wall_s"].median().rename("time_s")
    return out.merge(medians.reset_index(), on=CELL_KEYS, how="left")


def ok_samples(runs: pd.DataFrame, column: str = "wall_s") -> dict[tuple, np.ndarray]:
    """Per cell key (CELL_KEYS order): the values of `column` over its ok runs."""
    ok = ok_runs(runs)
    return {
        key: group[column].to_numpy(dtype=float) for key, group in ok.groupby(CELL_KEYS, sort=False)
    }


def baseline_samples(samples: dict[tuple, np.ndarray]) -> dict[bool, np.ndarray]:
    return {key[1]: values for key, values in samples.items() if key[0] == BASELINE}


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
    table = _with_statistics(table, runs, kind)
    if paired(runs):
        table = _with_paired_ratios(table, runs, kind)
    return cell_order(table)[TABLE_COLUMNS]


def paired(runs: pd.DataFrame) -> bool:
    """Whether the runs were measured in paired rounds."""
    return "round" in runs and bool(runs["round"].notna().any())


def cell_id(key: tuple) -> str:
    return Cell(**dict(zip(CELL_KEYS, key, strict=True))).id


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


def run_target(meta: dict | RunMeta) -> Target:
    """The stop rule the run recorded under: its config's, `max` as its last budget capped it."""
    meta = run_meta(meta)
    repeats = meta.config.repeats
    if isinstance(repeats, int):
        return Target(repeats, repeats)
    most = min(repeats.max, meta.last_session.max_runs or repeats.max)
    return Target(
        repeats.min, most, repeats.ci, spend=repeats.spend, futile_after=repeats.futile_after
    )


FIXED_DEFAULT = (3, 1.0)  # the fixed default before precision targets: 3 runs, 1 full warm-up


def run_equivalents(
    table: pd.DataFrame, runs: pd.DataFrame, meta: dict | RunMeta
) -> tuple[float, float]:
    """Machine time in run-equivalents per cell (one run = one timed call of the cell, so each
    cell weighs by its median time), as recorded, and as FIXED_DEFAULT would have cost:
    (used, fixed). A warm-up counts by its share of the tasks, once per child process: one per
    run in interleaved order and in rounds, one per session the cell ran in otherwise."""
    meta = run_meta(meta)
    warm_runs, share = meta.config.warmup_runs, meta.config.warmup_tasks
    done = table[table["time_s"].notna()].set_index(CELL_KEYS)
    if done.empty:
        return float("nan"), float("nan")
    children = _children(runs, meta).reindex(done.index, fill_value=1)
    used = (done["time_s"] * (done["n_runs"] + warm_runs * share * children)).sum()
    weight = done["time_s"].sum()
    return float(used / weight), float(sum(FIXED_DEFAULT))


def _children(runs: pd.DataFrame, meta: RunMeta) -> pd.Series:
    """Child processes each cell ran in, per CELL_KEYS."""
    if meta.config.child_per_run:
        return runs.groupby(CELL_KEYS).size()
    starts = sorted(s.started_at for s in meta.sessions if s.started_at)
    if len(starts) < 2:
        return runs.groupby(CELL_KEYS).size().clip(upper=1)
    when = pd.to_datetime(runs["started_at"], utc=True, errors="coerce")
    session = np.searchsorted(pd.to_datetime(starts, utc=True), when, side="right")
    return runs.assign(session=session).groupby(CELL_KEYS)["session"].nunique()


FIRST_RUN_MIN_LATER = 2  # later runs a cell needs for its run 0 to be compared with them


def first_run_ratios(runs: pd.DataFrame, meta: dict | RunMeta) -> pd.Series:
    """Per cell (CELL_KEYS index): its recorded run 0 / the median of its later ok runs. What a
    warm-up left for run 0 to pay: 1.0 is nothing. Only in sequential order, where run 0 is the
    first timed call after the warm-up in its child; in interleaved order and in rounds every run
    has its own warm-up, so there is no run 0 to single out (empty)."""
    if run_meta(meta).config.child_per_run:
        return pd.Series(dtype=float)
    ratios = {}
    for key, cell in ok_runs(runs).groupby(CELL_KEYS, sort=False):
        first, later = cell[cell["repeat"].eq(0)], cell[cell["repeat"].gt(0)]
        if len(first) == 1 and len(later) >= FIRST_RUN_MIN_LATER:
            ratios[key] = float(first["wall_s"].iat[0] / later["wall_s"].median())
    index = pd.MultiIndex.from_tuples(list(ratios), names=CELL_KEYS) if ratios else None
    return pd.Series(list(ratios.values()), index=index, dtype=float)


def stop_reasons(cells: pd.DataFrame, runs: pd.DataFrame, meta: dict | RunMeta) -> list[str]:
    """Per cell: why it stopped recording runs ("" for a fixed repeat count)."""
    meta = run_meta(meta)
    target = run_target(meta)
    if target.fixed:
        return [""] * len(cells)
    if meta.config.order == "race":
        return [ROUNDS if s == BASELINE else RACED for s in cells["strategy"]]
    cut = {c for s in meta.sessions for c in s.budget_cut}
    spent = {c for s in meta.sessions for c in s.spend_cut}
    capped = target.max < meta.config.target.max  # a budget lowered max
    samples, cores = ok_samples(runs), usable_cores(meta)
    judge = _round_judge(runs, target, cores) if paired(runs) else None
    reasons = []
    for key in cells[CELL_KEYS].itertuples(index=False, name=None):
        cell = Cell(**dict(zip(CELL_KEYS, key, strict=True)))
        if judge is not None:
            why = judge(cell)
        else:
            why = stop_reason(samples.get(key, []), target, cell.workers > cores)
        if (why == "" and cell.id in cut) or (why == MAX and capped):
            why = BUDGET
        elif why == "" and cell.id in spent:
            why = SPEND
        reasons.append(why or "unfinished")
    return reasons


ROUNDS = "rounds"  # the stop of a baseline in paired rounds: visited while its group ran
RACED = "raced"  # a race's contender: the race's drops and answer say when and why it stopped


def _round_judge(runs: pd.DataFrame, target: Target, cores: int) -> Callable[[Cell], str]:
    """A cell's stop reason in paired rounds: its ratio's, after the rounds it ran in."""
    ratios = cell_ratios(runs)
    rounds = runs.groupby("cell_id")["round"].nunique()

    def judge(cell: Cell) -> str:
        if cell.strategy == BASELINE:
            return ROUNDS
        slicing = cell.workers > cores
        return ratio_stop_reason(
            ratios.get(cell.id, []), int(rounds.get(cell.id, 0)), target, slicing
        )

    return judge


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

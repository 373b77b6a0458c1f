"""Every warning about the measurement set-up and its results, in one place (hyperfine style):
each is one sentence saying what is wrong and why it matters, then "Fix:" and what to do.

Thresholds, and why:
- busy CPUs: other programs keeping more than LOAD_FRACTION x logical cores busy at start
  (meta["setup"]["busy_cpus"], sampled from /proc/stat over about a second). Run folders
  without it fall back to the 1-minute load average, which lags: the harness' own set-up just
  before (image generation, calibration: one busy process) already adds up to ~1 on a small
  machine, so a much lower threshold would fire on every run.
- unstable: CV (std/mean of a cell's ok runs) above 5% (harness.stats.medians.UNSTABLE_CV).
- oversubscribed: a cell's CPU-bound processes (analysis.processes_for) exceed the usable
  physical cores, min(physical cores, CPUs in the affinity mask).
- steal: the hypervisor taking over STEAL_FRACTION of all CPUs' time during a run (per-run
  `steal_s` column, where the runner records it).
- shared machine: other programs using more than OTHERS_CPUS CPUs on average during a run
  (host_busy_s − t_cpu_s per wall second, where recorded). The machine's own background (the
  runner's polling, kernel threads writing the outputs) stays well below it. Runs whose
  executor keeps its workers outside the run's processes (a `worker_restarts` value: Dask) are
  left out, since their workers' CPU is not in t_cpu_s. The setup sample at start sees only the
  second before the sweep; this sees every run.
- drift: a cell's run times, in start order, have a least-squares slope that differs from zero
  (p-values over all cells of at least DRIFT_RUNS runs held to a false discovery rate of
  DRIFT_FDR, Benjamini-Hochberg, so a 32-cell sweep does not cry wolf) and amounts to at least
  DRIFT_CHANGE of the cell's median over its runs. A VM's speed can move within minutes
  with little steal (the same seeded tasks taking more CPU time run after run;
  docs/STATISTICS.md), and runs that trend are not the exchangeable sample the intervals
  assume.
- cold run 0: each cell's run 0 / the median of its later runs (analysis.first_run_ratios), in
  median over at least COLD_CELLS cells, is above 1 + COLD_CHANGE and a one-sided Wilcoxon
  signed-rank test of the log ratios gives p < COLD_P. Per cell the ratio scatters by the
  run-to-run noise (several percent on a VM), so only the median over many cells can show a
  warm-up that left work for run 0.

Every function takes plain data (meta, runs, tables) and knows no strategy by name.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from harness.analysis.scaling import (
    RACED,
    ROUNDS,
    SAVING_LABEL,
    first_run_ratios,
    logical_cores,
    oversubscribed,
    processes_for,
    usable_cores,
)
from harness.rundir.meta import RunMeta, run_meta
from harness.schema import CELL_KEYS
from harness.stats import medians
from harness.stats.precision import SLICING, TARGET

LOAD_FRACTION = 0.5
STEAL_FRACTION = 0.02  # of all CPUs' time during a run, taken by the hypervisor
OTHERS_CPUS = 0.2  # CPUs' worth of time other programs took during a run, on average
DRIFT_RUNS = 5
DRIFT_FDR = 0.05
DRIFT_CHANGE = 0.05
COLD_CELLS = 5
COLD_CHANGE = 0.02
COLD_P = 0.05
OVERSUBSCRIBED = "†"
UNSTABLE = "~"


def pre_run_warnings(meta: dict | RunMeta) -> list[str]:
    """Warnings known before anything runs: the machine's state and the plan."""
    meta = run_meta(meta)
    return setup_warnings(meta) + _planned_oversubscription(meta)


def report_warnings(
    meta: dict | RunMeta, runs: pd.DataFrame, table: pd.DataFrame, oversubscribed: pd.Series
) -> list[str]:
    """Warnings for a finished (or partial) run: set-up, then what the results show.
    oversubscribed: per row of the scaling table `table`, whether it ran more busy processes
    than the usable cores."""
    meta = run_meta(meta)
    return (
        setup_warnings(meta)
        + _oversubscribed_cells(table, oversubscribed, usable_cores(meta))
        + _unstable_cells(table)
        + _outlier_cells(table)
        + _failed_cells(runs)
        + _few_repeats(table)
        + _missed_targets(table, meta)
        + _steal(runs, meta)
        + _shared_machine(runs, meta)
        + _drift(runs)
        + _cold_first_runs(runs, meta)
        + _worker_restarts(runs)
        + _input_files(meta)
    )


def setup_warnings(meta: RunMeta) -> list[str]:
    setup = meta.setup
    logical = logical_cores(meta)
    found = _load_warning(setup, logical)
    governor = setup.get("governor")
    if governor and governor != "performance":
        found.append(
            f"The CPU frequency governor is '{governor}', not 'performance': the clock follows "
            "the load, so times depend on what ran before. "
            "Fix: `sudo cpupower frequency-set -g performance` before running."
        )
    affinity = setup.get("affinity")
    if affinity and len(affinity) < logical:
        found.append(
            f"This run could use only {len(affinity)} of {logical} CPUs (affinity "
            f"{_cpu_list(affinity)}); oversubscription is judged against those. "
            "Fix: run without taskset/cgroup CPU limits, or accept the smaller machine."
        )
    return found + _thread_warnings(meta)


def _load_warning(setup: dict, logical: int) -> list[str]:
    """From busy_cpus where recorded, else from the 1-minute load average."""
    fix = "Fix: stop them (see `top`) and re-run."
    busy = setup.get("busy_cpus")
    if busy is not None:
        if busy <= LOAD_FRACTION * logical:
            return []
        return [
            f"Other programs kept {busy:.1f} of {logical} logical CPUs busy at start (sampled "
            f"over about a second): their interference is inside these times. {fix}"
        ]
    load = setup.get("loadavg")
    if load and load[0] > LOAD_FRACTION * logical:
        return [
            f"The 1-minute load average was {load[0]:.2f} at start on {logical} logical cores: "
            f"other programs were busy, and their interference is inside these times. {fix}"
        ]
    return []


def _thread_warnings(meta: RunMeta) -> list[str]:
    probes = worker_probes(meta.setup.get("worker_threads"))
    cv2_threads = {p.get("cv2_threads") for p in probes} - {None}
    if not probes:
        cv2_threads = {meta.config.cv2_threads}
    found = []
    if cv2_threads - {1}:
        n = max(cv2_threads)
        found.append(
            f"OpenCV used {n} threads inside each worker: W workers run up to W x {n} threads, "
            "so the speedup mixes two levels of parallelism. "
            "Fix: set `cv2_threads: 1` in the config."
        )
    pools = {
        (t.get("library"), t.get("threads"))
        for p in probes
        for t in p.get("threadpools") or []
        if (t.get("threads") or 1) > 1
    }
    if pools:
        names = ", ".join(f"{lib} ({n} threads)" for lib, n in sorted(pools, key=str))
        found.append(
            f"Native thread pools in the workers use more than one thread: {names}; any "
            "numpy/BLAS call in a task can oversubscribe the cores. "
            "Fix: export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 "
            "before running."
        )
    return found


def worker_probes(found: object) -> list[dict]:
    """worker_threads as a list of probe dicts, whether stored as one probe, a list or a
    mapping."""
    if isinstance(found, dict):
        if "cv2_threads" in found:
            return [found]
        return [v for v in found.values() if isinstance(v, dict)]
    if isinstance(found, list):
        return [p for p in found if isinstance(p, dict)]
    return []


def _cpu_list(cpus: list[int]) -> str:
    return ",".join(map(str, cpus)) if len(cpus) <= 8 else f"{cpus[0]}…{cpus[-1]}"


def _planned_oversubscription(meta: RunMeta) -> list[str]:
    workers = [w for w, _ in meta.config.sweep]
    cores = usable_cores(meta)
    over = sorted(
        {
            w
            for w in workers
            for s in meta.config.labels
            if oversubscribed(processes_for(s, w), cores)
        }
    )
    if not over:
        return []
    return [
        f"W = {', '.join(map(str, over))} will run more busy processes than the {cores} usable "
        "physical cores: those cells measure time-slicing, not added hardware. "
        f"Fix: keep W <= {cores} for scaling claims, or run on a machine with more cores."
    ]


def _oversubscribed_cells(table: pd.DataFrame, oversubscribed: pd.Series, cores: int) -> list[str]:
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


def _unstable_cells(table: pd.DataFrame) -> list[str]:
    rows = table[table["unstable"].fillna(False).astype(bool)]
    if rows.empty:
        return []
    listed = "; ".join(f"{_cell(r)} CV {r.cv:.0%}" for r in rows.itertuples())
    return [
        f"{len(rows)} cell(s) ({UNSTABLE}) vary by more than {medians.UNSTABLE_CV:.0%} between "
        f"repeats: {listed}; their medians are uncertain (see the intervals). "
        "Fix: close other programs, raise `repeats`, and re-run."
    ]


def _outlier_cells(table: pd.DataFrame) -> list[str]:
    rows = table[table["n_outliers"].fillna(0) > 0]
    if rows.empty:
        return []
    listed = "; ".join(f"{_cell(r)} {int(r.n_outliers)}" for r in rows.itertuples())
    return [
        f"Outlying runs (modified z-score > {medians.OUTLIER_Z}) in {len(rows)} cell(s): "
        f"{listed}; the median resists them, the mean and CV do not. "
        "Fix: look for what else ran at that time (runs.parquet has started_at) and re-run."
    ]


def _failed_cells(runs: pd.DataFrame) -> list[str]:
    bad = runs[runs["status"].ne("ok")]
    if bad.empty:
        return []
    counts = bad.groupby(CELL_KEYS + ["status"], sort=False).size()
    listed = "; ".join(
        f"{s} W={w} ({SAVING_LABEL[bool(m)]}): {n} {status}"
        for (s, m, w, _, _, status), n in counts.items()
    )
    return [
        f"{len(bad)} run(s) did not finish ok: {listed}; cells with no ok run show —. "
        "Fix: read cells/<cell id>.log; for timeouts raise `cell_timeout_s`."
    ]


def _few_repeats(table: pd.DataFrame) -> list[str]:
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


def _missed_targets(table: pd.DataFrame, meta: RunMeta) -> list[str]:
    """Cells at W <= usable cores that stopped without reaching the precision target."""
    repeats = meta.config.repeats
    if "stop" not in table or isinstance(repeats, int):
        return []
    missed = table[~table["stop"].isin(["", TARGET, SLICING, ROUNDS, RACED])]
    if missed.empty:
        return []
    paired = meta.config.paired  # the rule judged the speedup, not the time
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


def _steal(runs: pd.DataFrame, meta: RunMeta) -> list[str]:
    """From the per-run `steal_s` column (CPU seconds the hypervisor took), where recorded."""
    if "steal_s" not in runs:
        return []
    share = runs["steal_s"] / (runs["wall_s"] * logical_cores(meta))
    hit = share[share > STEAL_FRACTION]
    if hit.empty:
        return []
    return [
        f"The hypervisor took more than {STEAL_FRACTION:.0%} of the CPUs' time (steal) during "
        f"{len(hit)} run(s), up to {hit.max():.0%}: another tenant of this VM's host slowed "
        "them. Fix: re-run at a quieter time or on dedicated hardware."
    ]


def _shared_machine(runs: pd.DataFrame, meta: RunMeta) -> list[str]:
    """From the per-run `host_busy_s` column (see "shared machine" above), where recorded."""
    if "host_busy_s" not in runs:
        return []
    ok = runs[runs["status"].eq("ok") & runs["host_busy_s"].notna()]
    if "worker_restarts" in ok:
        ok = ok[ok["worker_restarts"].isna()]
    others = (ok["host_busy_s"] - ok["t_cpu_s"]) / ok["wall_s"]
    hit = others[others > OTHERS_CPUS]
    if hit.empty:
        return []
    cells = ok.loc[hit.index, "cell_id"].nunique()
    return [
        f"Other programs used the CPUs during {len(hit)} run(s) of {cells} cell(s), up to "
        f"{hit.max():.1f} of {logical_cores(meta)} logical CPUs on average over a run "
        "(host_busy_s − t_cpu_s in runs.parquet): those runs shared the machine, so their "
        "times, and every speedup that divides by them, are slowed by an unknown amount. "
        "Fix: stop the other programs (see `top`) and re-run."
    ]


def _drift(runs: pd.DataFrame) -> list[str]:
    """Cells whose ok runs trend with time rather than scatter (see "drift" above)."""
    ok = runs[runs["status"].eq("ok")]
    trends = []
    for (strategy, saving, workers, *_), cell in ok.groupby(CELL_KEYS, sort=False):
        if len(cell) >= DRIFT_RUNS:
            walls = cell.sort_values(["started_at", "repeat"], kind="stable")["wall_s"]
            fit = scipy_stats.linregress(np.arange(len(walls)), walls.to_numpy())
            change = fit.slope * (len(walls) - 1) / walls.median()
            name = f"{strategy} W={workers} ({SAVING_LABEL[bool(saving)]})"
            trends.append((name, walls, fit, change))
    if not trends:
        return []
    pvalues = [1.0 if np.isnan(fit.pvalue) else fit.pvalue for _, _, fit, _ in trends]
    adjusted = scipy_stats.false_discovery_control(pvalues)
    found = [
        f"{name} {walls.iloc[0]:.3g} s to {walls.iloc[-1]:.3g} s over {len(walls)} runs "
        f"(trend {change:+.0%})"
        for (name, walls, _, change), p in zip(trends, adjusted, strict=True)
        if p < DRIFT_FDR and abs(change) >= DRIFT_CHANGE
    ]
    if not found:
        return []
    return [
        f"The runs of {len(found)} cell(s) trend with time instead of scattering: "
        f"{'; '.join(found)}. The machine's speed changed while they ran, so their intervals "
        "understate the uncertainty, and cells measured at other times are not on the same "
        "footing. Fix: `order: interleaved` spreads the drift over every cell; a quieter or "
        "dedicated machine removes it."
    ]


def _cold_first_runs(runs: pd.DataFrame, meta: RunMeta) -> list[str]:
    """Run 0 systematically slower than the later runs: a warm-up too small (see "cold run 0")."""
    ratios = first_run_ratios(runs, meta)
    if len(ratios) < COLD_CELLS or ratios.median() <= 1 + COLD_CHANGE:
        return []
    test = scipy_stats.wilcoxon(np.log(ratios.to_numpy()), alternative="greater")
    if test.pvalue >= COLD_P:
        return []
    return [
        f"Each cell's run 0 took {ratios.median() - 1:.1%} longer than its later runs (median "
        f"over {len(ratios)} cells, Wilcoxon p = {test.pvalue:.2g}): the warm-up left work for "
        "run 0, which inflates the medians of cells with few runs. Fix: a larger warm-up, "
        "e.g. `warmup: {runs: 1, tasks: 0.5}` or `warmup: 1` (the whole measurement)."
    ]


def _worker_restarts(runs: pd.DataFrame) -> list[str]:
    """Runs in which an executor restarted a dead worker and redid its tasks (Dask's nanny):
    they finished, but their time includes the restart."""
    if "worker_restarts" not in runs:
        return []
    hit = runs[runs["worker_restarts"].fillna(0) > 0]
    if hit.empty:
        return []
    listed = "; ".join(f"{r.cell_id} repeat {r.repeat}" for r in hit.itertuples())
    return [
        f"A worker process died and was restarted during {len(hit)} run(s) ({listed}); their "
        "tasks were redone, so their times include the restart. Fix: find why it died "
        "(cells/<cell id>.log, the OOM killer in dmesg) and re-run those cells."
    ]


def _input_files(meta: RunMeta) -> list[str]:
    """The user's images left out as unreadable, or read but with a remark."""
    inventory = meta.input_inventory or {}
    found = []
    if left_out := inventory.get("unreadable"):
        listed = "; ".join(f"{name}: {why}" for name, why in left_out.items())
        found.append(
            f"{len(left_out)} input file(s) were left out as unreadable ({listed}). "
            "Fix: repair or remove them if the run should include them."
        )
    if notes := inventory.get("notes"):
        listed = "; ".join(f"{name}: {why}" for name, why in notes.items())
        found.append(
            f"{len(notes)} input file(s) were read whole but are not quite intact ({listed}). "
            "Fix: none needed for the timings; re-copy them if the files matter."
        )
    return found


def _cell(row: object) -> str:
    return f"{row.strategy} W={row.workers} ({SAVING_LABEL[bool(row.saving)]})"

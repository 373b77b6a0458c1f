"""Warnings from the recorded runs: runs that failed, and what the machine did while they ran
(steal, other programs, drift, a cold run 0, restarted workers).

Thresholds, and why:
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
- cold run 0: each cell's run 0 / the median of its later runs (stops.first_run_ratios), in
  median over at least COLD_CELLS cells, is above 1 + COLD_CHANGE and a one-sided Wilcoxon
  signed-rank test of the log ratios gives p < COLD_P. Per cell the ratio scatters by the
  run-to-run noise (several percent on a VM), so only the median over many cells can show a
  warm-up that left work for run 0.
- page faults: the kernel's share of a cell's CPU time (t_sys_s / t_cpu_s, median over its ok
  runs) above SYS_SHARE with more than FAULT_PAGES minor page faults per task: the allocator
  hands memory back to the kernel between tasks and takes it again, zeroed, page by page
  (docs/MEMORY.md). The fix changes every cell alike, the baseline's too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from harness.analysis.processes import logical_cores
from harness.analysis.scaling import SAVING_LABEL
from harness.analysis.stops import first_run_ratios
from harness.rundir.meta import RunMeta
from harness.schema import CELL_KEYS

STEAL_FRACTION = 0.02  # of all CPUs' time during a run, taken by the hypervisor
OTHERS_CPUS = 0.2  # CPUs' worth of time other programs took during a run, on average
DRIFT_RUNS = 5
DRIFT_FDR = 0.05
DRIFT_CHANGE = 0.05
COLD_CELLS = 5
COLD_CHANGE = 0.02
COLD_P = 0.05
SYS_SHARE = 0.10
FAULT_PAGES = 64  # 256 KiB of fresh pages per task
MALLOC_FIX = (
    "env: {MALLOC_MMAP_THRESHOLD_: '268435456', MALLOC_TRIM_THRESHOLD_: '1073741824', "
    "MALLOC_TOP_PAD_: '268435456'}"
)


def failed_cells(runs: pd.DataFrame) -> list[str]:
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


def steal(runs: pd.DataFrame, meta: RunMeta) -> list[str]:
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


def shared_machine(runs: pd.DataFrame, meta: RunMeta) -> list[str]:
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


def drift(runs: pd.DataFrame) -> list[str]:
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


def cold_first_runs(runs: pd.DataFrame, meta: RunMeta) -> list[str]:
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


def worker_restarts(runs: pd.DataFrame) -> list[str]:
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


def page_faults(runs: pd.DataFrame, env: dict[str, str] | None = None) -> list[str]:
    """From the per-run `t_sys_s` and `minor_faults` columns, where recorded; `env` is the
    config's, which may already hold the allocator's fix."""
    if "minor_faults" not in runs:
        return []
    ok = runs[runs["status"].eq("ok") & runs["minor_faults"].notna() & runs["tasks"].gt(0)]
    per_run = pd.DataFrame(
        {"share": ok["t_sys_s"] / ok["t_cpu_s"], "pages": ok["minor_faults"] / ok["tasks"]}
    )
    per_cell = per_run.groupby(ok["cell_id"], sort=False).median()
    hit = per_cell[(per_cell["share"] > SYS_SHARE) & (per_cell["pages"] > FAULT_PAGES)]
    if hit.empty:
        return []
    worst = hit["share"].idxmax()
    found = (
        f"In {len(hit)} cell(s) the kernel took more than {SYS_SHARE:.0%} of the CPU time, up "
        f"to {hit.loc[worst, 'share']:.0%} ({worst}), with {hit['pages'].min():.0f} to "
        f"{hit['pages'].max():.0f} page faults per task"
    )
    if "MALLOC_TRIM_THRESHOLD_" in (env or {}):
        return [
            f"{found}, although the config's `env:` keeps the allocator's memory: the pages "
            "come from what the strategy itself moves or copies (its cells' t_sys_s and "
            "minor_faults in runs.parquet), a cost of the strategy that its time includes. "
            "Fix: none for the measurement; prefer a strategy whose cells stay below it."
        ]
    return [
        f"{found}: the allocator returns each task's buffers to the kernel and gets them back "
        "zeroed, so every cell measures page faults as well as augmentation, and glibc's "
        "adaptive thresholds make runs bimodal. "
        f"Fix: add `{MALLOC_FIX}` to the config (docs/MEMORY.md), or run under jemalloc."
    ]

"""The replay bound: the sequential run's per-task costs replayed under each strategy's
scheduling rule (its contract's Schedule) on W ideal cores, to plan past this machine.

What it assumes: W cores that never contend (no cache or memory-bandwidth sharing, no
oversubscription, no time-slicing), every task costing what its twin cost in the sequential
run, plus the fixed costs measured in this run folder: main's serial read (the sequential run's
`read` spans), pool start-up per worker (the median of t_startup_s / W over the pool cells),
and a per-task hand-out cost per strategy (the median gap between consecutive tasks on a lane
in its traced runs at W within the usable cores; 0 where it has none). The chunk rule is the
strategy's: chunks of chunksize(n, W) in (i, k) order, each taken by the next free worker. A
saver pipeline (P_Q-like) runs its augmenters so, then each saver saves what reaches it in
arrival order. The predicted speedup is T_seq / T_W: an upper bound, since nothing here
can contend. What it cannot see: contention, the OS scheduler, Manager or queue throughput,
pickling that grows with W, and anything the sequential run does not do.

Two more uses of the same replay: fed with a measured run's own task times (their contention
in them), it checks the scheduling model against that run; fed with a sequential run of the
study's own workload, it replays the study's worker counts beside the study's efficiencies.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from experiments.contract import Schedule, Strategy
from harness.analysis.losses import representative
from harness.plan.scheduling import Costs, replay
from harness.rundir.meta import RunMeta, run_meta
from harness.schema import BASELINE

STUDY_WORKERS = (1, 2, 4, 8, 16, 32, 64)


def trace_costs(trace: pd.DataFrame, t_seq: float) -> Costs:
    """Per-task costs from one run's trace: a task's work is its span on its lane plus, in a
    pipeline, its span on a saver lane. From the sequential run these are the ideal costs; from
    a parallel run, the same tasks with that run's contention in them."""
    tasks = trace[trace["kind"].eq("task")].sort_values(["i", "k"])
    saver_s = _saver_seconds(tasks, trace[trace["kind"].eq("save")])
    own = (tasks["end_s"] - tasks["start_s"]).to_numpy(float)
    reads = trace[trace["kind"].eq("main") & trace["span"].eq("read")].sort_values("start_s")
    return Costs(
        tasks["i"].to_numpy(int),
        tasks["k"].to_numpy(int),
        own + np.nan_to_num(saver_s),
        np.where(np.isnan(saver_s), tasks["save_s"].to_numpy(float), saver_s),
        dict(enumerate((reads["end_s"] - reads["start_s"]).to_numpy(float))),
        t_seq,
    )


def _saver_seconds(tasks: pd.DataFrame, saves: pd.DataFrame) -> np.ndarray:
    """Each task's time on a saver lane, NaN where no saver handled it."""
    if saves.empty:
        return np.full(len(tasks), np.nan)
    saved = (saves["end_s"] - saves["start_s"]).groupby([saves["i"], saves["k"]]).sum()
    return saved.reindex(pd.MultiIndex.from_arrays([tasks["i"], tasks["k"]])).to_numpy(float)


def fixed_costs(runs: pd.DataFrame, tasks: pd.DataFrame, cores: int) -> tuple[float, dict]:
    """(pool start-up per worker, per-task hand-out seconds by strategy), from this folder."""
    ok = runs[runs["status"].eq("ok") & runs["workers"].gt(1)]
    startup = (ok["t_startup_s"] / ok["workers"]).median() if "t_startup_s" in ok else 0.0
    handout = {}
    for strategy, rows in ok[ok["workers"].le(cores)].groupby("strategy"):
        ids = set(zip(rows["cell_id"], rows["repeat"], strict=True))
        mine = tasks[[k in ids for k in zip(tasks["cell_id"], tasks["repeat"], strict=True)]]
        handout[strategy] = _median_gap(mine[mine["kind"].eq("task")])
    return float(0.0 if pd.isna(startup) else startup), handout


def _median_gap(work: pd.DataFrame) -> float:
    gaps = []
    for _, lane in work.sort_values("start_s").groupby(["cell_id", "repeat", "lane"]):
        gaps.extend(lane["start_s"].to_numpy()[1:] - lane["end_s"].to_numpy()[:-1])
    return float(np.median(gaps)) if gaps else 0.0


REPLAY_COLUMNS = [
    "strategy",
    "saving",
    "workers",
    "predicted_speedup",
    "measured_speedup",
    "measured_ci_low",
    "measured_ci_high",
    "replayed_run_speedup",
    "exact",
]


def replay_table(
    runs: pd.DataFrame,
    tasks: pd.DataFrame | None,
    table: pd.DataFrame,
    known: dict[str, Strategy],
    cores: int,
    workers: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Predicted speedup per strategy, saving mode and W (the run's own W, or `workers`),
    beside the measured speedup with its interval where that cell was measured, and the same
    replay fed with the measured run's own task times (replayed_run_speedup), which checks the
    scheduling model: what is left between it and the measured speedup, the model missed."""
    if tasks is None or tasks.empty:
        return pd.DataFrame(columns=REPLAY_COLUMNS)
    startup, handout = fixed_costs(runs, tasks, cores)
    measured = table.set_index(["strategy", "saving", "workers"])
    rows = []
    for saving in sorted(set(runs["saving"]), reverse=True):
        costs = _costs_for(runs, tasks, saving)
        if costs is None:
            continue
        for name, strategy in known.items():
            if name == BASELINE or strategy.schedule is None:
                continue
            sweep = workers or sorted(set(runs.loc[runs["strategy"].eq(name), "workers"]))
            for w in sweep:
                if strategy.skip_reason(w, saving):
                    continue
                fixed = (startup, handout.get(name, 0.0))
                schedule = batched(strategy.schedule, runs, name, w)
                t = replay(schedule, costs, w, *fixed)
                key = (name, saving, w)
                m = measured.loc[key] if key in measured.index else None
                own = _run_costs(runs, tasks, key, costs.t_seq) if m is not None else None
                t_own = replay(schedule, own, w, *fixed) if own else math.nan
                rows.append(
                    {
                        "strategy": name,
                        "saving": saving,
                        "workers": w,
                        "predicted_speedup": costs.t_seq / t if t > 0 else math.nan,
                        "measured_speedup": m["speedup"] if m is not None else math.nan,
                        "measured_ci_low": m["speedup_ci_low"] if m is not None else math.nan,
                        "measured_ci_high": m["speedup_ci_high"] if m is not None else math.nan,
                        "replayed_run_speedup": costs.t_seq / t_own,
                        "exact": strategy.schedule.exact,
                    }
                )
    return pd.DataFrame(rows, columns=REPLAY_COLUMNS)


def batched(schedule: Schedule, runs: pd.DataFrame, name: str, workers: int) -> Schedule:
    """The strategy's schedule with the batch its runs at this W recorded (the `batch` column),
    or its own rule where they recorded none."""
    if "batch" not in runs:
        return schedule
    mine = runs.loc[runs["strategy"].eq(name) & runs["workers"].eq(workers), "batch"].dropna()
    if mine.empty:
        return schedule
    size = int(mine.iloc[0])
    return dataclasses.replace(schedule, chunksize=lambda n, w: size)


def _costs_for(runs: pd.DataFrame, tasks: pd.DataFrame, saving: bool) -> Costs | None:
    seq = runs[runs["strategy"].eq(BASELINE) & runs["saving"].eq(saving)]
    run = representative(seq)
    if run is None:
        return None
    trace = _trace(tasks, run)
    return trace_costs(trace, float(run["wall_s"])) if len(trace) else None


def _run_costs(
    runs: pd.DataFrame, tasks: pd.DataFrame, key: tuple[str, bool, int], t_seq: float
) -> Costs | None:
    """The cell's representative run's own task costs, if its trace holds every task."""
    name, saving, w = key
    cell = runs["strategy"].eq(name) & runs["saving"].eq(saving) & runs["workers"].eq(w)
    run = representative(runs[cell])
    if run is None:
        return None
    trace = _trace(tasks, run)
    n = int(run["n_images"]) * int(run["augmentations_per_image"])
    return trace_costs(trace, t_seq) if trace["kind"].eq("task").sum() == n else None


def _trace(tasks: pd.DataFrame, run: pd.Series) -> pd.DataFrame:
    return tasks[tasks["cell_id"].eq(run["cell_id"]) & tasks["repeat"].eq(run["repeat"])]


STUDY_RUN = "python -m harness run configs/study_costs.yaml"
STUDY_REPLAY_COLUMNS = [
    "strategy",
    "saving",
    "workers",
    "predicted_speedup",
    "predicted_efficiency",
    "paper_efficiency",
    "published_efficiency_pct",
    "gap_pp",
    "measured_efficiency",
    "measured_ci_low",
    "measured_ci_high",
]


def study_size_reason(
    meta: dict | RunMeta, runs: pd.DataFrame, tasks: pd.DataFrame | None
) -> str | None:
    """Why this folder cannot replay the study's worker counts, or None when it can: the
    replay needs per-task costs of the study's own workload (its task count sets the tail)."""
    meta = run_meta(meta)
    cfg = meta.config
    seq = runs[runs["strategy"].eq(BASELINE) & runs["status"].eq("ok")]
    sized = seq[seq["width"].eq(2000) & seq["height"].eq(1000)]
    n = meta.images_run
    if cfg.kind != "strong" or n != 10 or cfg.augmentations_per_image != 100:
        found = f"{n} images x {cfg.augmentations_per_image} augmentations"
        return f"it needs the study's workload (10 images x 100 augmentations), not {found}"
    if sized.empty:
        return "it needs a sequential run at the study's 2000x1000"
    if tasks is None or not tasks["cell_id"].isin(set(sized["cell_id"])).any():
        return "its sequential runs have no per-task traces"
    return None


def study_replay(
    runs: pd.DataFrame,
    tasks: pd.DataFrame,
    table: pd.DataFrame,
    known: dict[str, Strategy],
    cores: int,
    paper: pd.DataFrame,
) -> pd.DataFrame:
    """The replay at the study's worker counts for the study's strategies, beside the study's
    efficiencies: gap_pp = what the study's machine lost beyond imbalance and serial parts."""
    theirs = paper[paper["study"].eq("strong") & paper["strategy"].ne(BASELINE)]
    mine = {name: s for name, s in known.items() if name in set(theirs["strategy"])}
    workers = sorted(set(theirs["ranks"]) - {1})
    out = replay_table(runs, tasks, table, mine, cores, workers)
    out = out.assign(predicted_efficiency=out["predicted_speedup"] / out["workers"])
    theirs = theirs.rename(columns={"ranks": "workers", "efficiency": "paper_efficiency"})
    keys = ["strategy", "saving", "workers"]
    out = out.merge(
        theirs[[*keys, "paper_efficiency", "published_efficiency_pct"]], on=keys, how="inner"
    )
    out = out.assign(
        gap_pp=100 * (out["predicted_efficiency"] - out["paper_efficiency"]),
        measured_efficiency=out["measured_speedup"] / out["workers"],
        measured_ci_low=out["measured_ci_low"] / out["workers"],
        measured_ci_high=out["measured_ci_high"] / out["workers"],
    )
    return out[STUDY_REPLAY_COLUMNS]

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
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.contract import Schedule, Strategy
from harness.losses import representative
from harness.schema import BASELINE

STUDY_WORKERS = (1, 2, 4, 8, 16, 32, 64)


@dataclass(frozen=True)
class Costs:
    """Per-task seconds in (i, k) order, from the sequential run's trace."""

    i: np.ndarray  # image index of each task
    k: np.ndarray  # augmentation index of each task
    work: np.ndarray  # twin's wall time: augment (+ save)
    save: np.ndarray  # the save part of work
    read: dict[int, float]  # main's read of image i
    t_seq: float  # the sequential run's wall time


def sequential_costs(seq_run: pd.Series, trace: pd.DataFrame) -> Costs:
    tasks = trace[trace["kind"].eq("task")].sort_values(["i", "k"])
    reads = trace[trace["kind"].eq("main") & trace["span"].eq("read")].sort_values("start_s")
    read = dict(enumerate((reads["end_s"] - reads["start_s"]).to_numpy(float)))
    return Costs(
        tasks["i"].to_numpy(int),
        tasks["k"].to_numpy(int),
        (tasks["end_s"] - tasks["start_s"]).to_numpy(float),
        tasks["save_s"].to_numpy(float),
        read,
        float(seq_run["wall_s"]),
    )


def replay(
    schedule: Schedule, costs: Costs, workers: int, startup_per_worker: float, handout: float
) -> float:
    """Predicted wall seconds of one run on `workers` ideal cores."""
    savers = schedule.savers(workers) if schedule.savers else 0
    augmenters = max(1, workers - savers)
    reads = np.array([costs.read.get(int(i), 0.0) for i in costs.i])
    per_task = costs.work - (costs.save if savers else 0.0) + handout
    if schedule.reads == "task":
        per_task = per_task + reads
    head = sum(costs.read.values()) if schedule.reads == "main" else 0.0
    head += startup_per_worker * workers if schedule.pool else 0.0
    done = _chunked(per_task, augmenters, schedule.chunksize(len(per_task), augmenters))
    if savers:
        done = _saved(done, costs, savers)
    return head + (float(done.max()) if len(done) else 0.0)


def _chunked(costs: np.ndarray, workers: int, chunksize: int) -> np.ndarray:
    """Finish time of every task when chunks go, in order, to the next free worker."""
    free = [(0.0, w) for w in range(workers)]
    finish = np.zeros(len(costs))
    for start in range(0, len(costs), chunksize):
        t, w = heapq.heappop(free)
        for n in range(start, min(start + chunksize, len(costs))):
            t += costs[n]
            finish[n] = t
        heapq.heappush(free, (t, w))
    return finish


def _saved(augmented: np.ndarray, costs: Costs, savers: int) -> np.ndarray:
    """Saver j saves the tasks with k % savers == j in the order they arrive."""
    finish = np.zeros(len(augmented))
    for j in range(savers):
        mine = np.flatnonzero(costs.k % savers == j)
        t = 0.0
        for n in mine[np.argsort(augmented[mine], kind="stable")]:
            t = max(t, augmented[n]) + costs.save[n]
            finish[n] = t
    return np.maximum(finish, augmented)


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


def replay_table(
    runs: pd.DataFrame,
    tasks: pd.DataFrame | None,
    table: pd.DataFrame,
    known: dict[str, Strategy],
    cores: int,
    workers: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Predicted speedup per strategy, saving mode and W (the run's own W, or `workers`),
    beside the measured speedup with its interval where that cell was measured."""
    columns = [
        "strategy",
        "saving",
        "workers",
        "predicted_speedup",
        "measured_speedup",
        "measured_ci_low",
        "measured_ci_high",
    ]
    if tasks is None or tasks.empty:
        return pd.DataFrame(columns=columns)
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
                t = replay(strategy.schedule, costs, w, startup, handout.get(name, 0.0))
                m = measured.loc[(name, saving, w)] if (name, saving, w) in measured.index else None
                rows.append(
                    {
                        "strategy": name,
                        "saving": saving,
                        "workers": w,
                        "predicted_speedup": costs.t_seq / t if t > 0 else math.nan,
                        "measured_speedup": m["speedup"] if m is not None else math.nan,
                        "measured_ci_low": m["speedup_ci_low"] if m is not None else math.nan,
                        "measured_ci_high": m["speedup_ci_high"] if m is not None else math.nan,
                    }
                )
    return pd.DataFrame(rows, columns=columns)


def _costs_for(runs: pd.DataFrame, tasks: pd.DataFrame, saving: bool) -> Costs | None:
    seq = runs[runs["strategy"].eq(BASELINE) & runs["saving"].eq(saving)]
    run = representative(seq)
    if run is None:
        return None
    trace = tasks[tasks["cell_id"].eq(run["cell_id"]) & tasks["repeat"].eq(run["repeat"])]
    return sequential_costs(run, trace) if len(trace) else None

"""Why efficiency is lost: per cell, an account in percentage points of efficiency that adds up to
100 (1 - E_run), measured from the per-task traces (tasks/), and the POP metrics.

Every strategy does identical, seeded work, so task (i, k) of a parallel run has an exact twin
in the sequential run of the same size and saving mode. For each ok run of the cell against its
twin run (in paired rounds, the baseline visit nearest it in time; otherwise the median
sequential run: twin_run):

    W T = sum over the W worker lanes of (idle before the first task + idle between tasks
          + idle after the last task + time inside tasks)
    time inside tasks = twin's time + reading inside tasks + CPU inflation + waiting
    sum of twins' times = T_seq - the sequential run's own overhead

so with E_run = T_seq / (W T):  W T - T_seq = idle + reading + inflation + waiting - overhead_seq,
each term measured from the traces (gaps between timestamps, thread CPU times), none derived as
a remainder. Divided by W T, in percentage points:

    serial_read, pool_startup, first_handout  idle before each lane's first task, split by its
                                              overlap with the main thread's `read` and `startup`
                                              spans; the rest is the first hand-out
    gaps                 idle between tasks: hand-out, pickling, transfer
    tail                 idle after a lane's last task while others finish (and lanes that never
                         got a task)
    reading              reading images inside tasks (the twin read each image once, in main)
    cpu_inflation        CPU - CPU_twin: the same tasks using more CPU than alone
    waiting              (wall - CPU) - (wall_twin - CPU_twin): descheduled, blocked on I/O or
                         waiting for the GIL
    sequential_overhead  -(T_seq - sum of twins' times): the baseline's own time outside tasks

CPU inflation splits into a cold start (what each lane's first tasks used beyond the steady
state: cold caches, copy-on-write page faults after the fork) and a steady state (the ratio
CPU / CPU_twin over the second half of each lane's tasks, applied to all of them), but only
where the split measures something: the twin is a paired one (a baseline visit that opened or
closed the run's round, minutes apart) and the median lane ran at least MIN_LANE_TASKS tasks.
A twin measured at another time of the session carries the machine's drift between the two
runs, and a steady state made of it can come out below zero; there the split columns stay empty
and SPLIT_REASON says why.

The cell's account is the mean of its runs' accounts, so its causes add up to its mean loss;
each cause has the 95% t interval of that mean over the runs (summarise): a cause whose interval
holds zero is not one the data can name, and the split above is kept only where both parts'
intervals are within +-SPLIT_WIDTH_PP (NOT_SEPARABLE otherwise).

The closure residual, 100 (1 - E_run) minus their sum, is zero up to rounding unless lanes or
twins are missing; above RESIDUAL_PP it is flagged as a measurement problem.

POP metrics (POP Centre of Excellence, "POP standard metrics for parallel performance
analysis"), with useful = time inside tasks on a lane: load balance = mean(useful) / max(useful),
communication efficiency = max(useful) / T, parallel efficiency = their product, computation
scaling = sum of twins' times / sum of task times, global efficiency = parallel efficiency x
computation scaling.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.stats import t as t_dist

from harness.schema import BASELINE, CELL_KEYS
from harness.stats.pairing import midpoints

LOSSES = {
    "serial_read": "main's serial read",
    "pool_startup": "pool start-up",
    "first_handout": "first hand-out",
    "gaps": "gaps between tasks",
    "tail": "tail imbalance",
    "reading": "reading inside tasks",
    "cpu_inflation": "CPU inflation",
    "waiting": "waiting inside tasks",
    "sequential_overhead": "sequential run's own overhead",
}
POP = [
    "load_balance",
    "comm_efficiency",
    "parallel_efficiency",
    "computation_scaling",
    "global_efficiency",
]
LOSS_COLUMNS = [f"loss_{cause}_pp" for cause in LOSSES]
# CPU inflation's two parts (they add up to loss_cpu_inflation_pp), empty where the split cannot
# be measured, and why not
SPLIT = {
    "cpu_cold_start_pp": "CPU inflation: cold start",
    "cpu_steady_pp": "CPU inflation: steady state",
}
SPLIT_COLUMNS = list(SPLIT)
SPLIT_REASON = "cpu_split_unavailable"
NO_PAIRED_TWIN = "no paired twin"
SHORT_LANES = "lanes too short"
ONE_RUN = "one traced run"
NOT_SEPARABLE = "not separable"
SPLIT_WIDTH_PP = 2.0  # the split is reported where both parts' intervals are within +- this
# Every cause's 95% interval over the cell's runs (one account per run): <column>_low, _high
CAUSES = [*LOSS_COLUMNS, *SPLIT_COLUMNS]
INTERVAL_COLUMNS = [f"{c}_{end}" for c in CAUSES for end in ("low", "high")]
RESIDUAL_PP = 0.5  # closure residual above this is a measurement problem
MIN_LANE_TASKS = 4  # a lane's first and second half of fewer tasks say nothing apart
CPU_AGREEMENT = 0.10  # sum of task CPU vs getrusage of the workers
# loss_table's columns
TABLE_COLUMNS = [
    *CELL_KEYS,
    "efficiency",
    "efficiency_run",
    *LOSS_COLUMNS,
    *SPLIT_COLUMNS,
    SPLIT_REASON,
    "runs_accounted",
    *INTERVAL_COLUMNS,
    *POP,
    "closure_residual_pp",
    "task_cpu_s",
    "worker_cpu_s",
    "cpu_agreement",
]


def representative(runs: pd.DataFrame) -> pd.Series | None:
    """The ok run whose wall time is nearest the median of the ok runs (ties: the first)."""
    ok = runs[runs["status"].eq("ok")]
    if ok.empty:
        return None
    distance = (ok["wall_s"] - ok["wall_s"].median()).abs()
    return ok.loc[distance.idxmin()]


def twin_run(run: pd.Series, seq: pd.DataFrame) -> pd.Series | None:
    """The sequential run an account divides by: in paired rounds the ok baseline visit
    nearest the run in time (the one that opened or closed its round), so a drift between the
    two measurements does not pass for contention; otherwise the median sequential run."""
    return twins_of(seq)(run)


def twins_of(seq: pd.DataFrame) -> Callable[[pd.Series], pd.Series | None]:
    """twin_run for many runs against the same sequential runs: the visits' midpoints once."""
    visits = seq[seq["round"].notna() & seq["status"].eq("ok")] if "round" in seq else seq[:0]
    at = midpoints(visits) if len(visits) else None

    def twin(run: pd.Series) -> pd.Series | None:
        if at is not None and pd.notna(run.get("round")):
            mid = midpoints(pd.DataFrame([run])).iloc[0]
            return visits.loc[(at - mid).abs().idxmin()]
        return representative(seq)

    return twin


def _overlap(start: float, end: float, spans: pd.DataFrame) -> float:
    if spans.empty:
        return 0.0
    lo = np.maximum(spans["start_s"].to_numpy(), start)
    hi = np.minimum(spans["end_s"].to_numpy(), end)
    return float(np.clip(hi - lo, 0, None).sum())


def lane_idle(work: pd.DataFrame, spans: pd.DataFrame, wall: float, workers: int) -> dict:
    """Idle seconds of the worker lanes, summed: before the first task (split by main's spans),
    between tasks, after the last one (lanes that never ran a task are idle all along)."""
    found = dict.fromkeys(("serial_read", "pool_startup", "first_handout", "gaps", "tail"), 0.0)
    reads, startups = spans[spans["span"].eq("read")], spans[spans["span"].eq("startup")]
    lanes = work.sort_values("start_s").groupby("lane")
    for _, rows in lanes:
        first = float(rows["start_s"].iloc[0])
        read, startup = _overlap(0.0, first, reads), _overlap(0.0, first, startups)
        found["serial_read"] += read
        found["pool_startup"] += startup
        found["first_handout"] += first - read - startup
        found["gaps"] += float(
            (rows["start_s"].iloc[1:].to_numpy() - rows["end_s"].iloc[:-1].to_numpy()).sum()
        )
        found["tail"] += wall - float(rows["end_s"].iloc[-1])
    found["tail"] += max(0, workers - lanes.ngroups) * wall
    return {**found, "lanes": lanes.ngroups}


def paired_twin(run: pd.Series, seq_run: pd.Series) -> bool:
    """Whether the sequential run is a baseline visit of the run's own round: the one that opened
    it (or one between its cells), or the next round's first, which closed it."""
    mine, twin = run.get("round"), seq_run.get("round")
    if pd.isna(mine) or pd.isna(twin):
        return False
    return 0 <= twin - mine <= 1


def twin_split(
    work: pd.DataFrame, seq_work: pd.DataFrame, twins: pd.DataFrame | None = None
) -> dict:
    """Time inside tasks against the sequential twins: the twins' time, reading, CPU inflation
    (with its cold start and steady state, None where the lanes are too short to tell them
    apart), waiting (seconds, summed); tasks without a twin are counted apart. twins: the
    twin run's per_task table, where the caller has it already."""
    mine = per_task(work)
    twins = per_task(seq_work) if twins is None else twins
    both = mine.join(twins.add_suffix("_twin"), how="left")
    matched = both["wall_twin"].notna()
    m = both[matched]
    rest_wall, rest_cpu = m["wall"] - m["read"], m["cpu"] - m["read_cpu"]
    twin_rest_wall, twin_rest_cpu = (
        m["wall_twin"] - m["read_twin"],
        m["cpu_twin"] - m["read_cpu_twin"],
    )
    return {
        "twin": float(m["wall_twin"].sum()),
        "reading": float((m["read"] - m["read_twin"]).sum()),
        "cpu_inflation": float((rest_cpu - twin_rest_cpu).sum()),
        "cold_and_steady": cold_and_steady(m.assign(own=rest_cpu, twin=twin_rest_cpu)),
        "waiting": float(((rest_wall - rest_cpu) - (twin_rest_wall - twin_rest_cpu)).sum()),
        "unmatched": float(both.loc[~matched, "wall"].sum()),
        "task_wall": float(mine["wall"].sum()),
        "twins_all": float(twins["wall"].sum()),
    }


def cold_and_steady(tasks: pd.DataFrame) -> tuple[float, float] | None:
    """(cold start, steady state): seconds of CPU the tasks used beyond their twins'. Columns:
    lane, start, own (a task's CPU outside reading) and twin (its twin's). The steady state is
    the ratio own / twin over the second half of each lane's tasks, applied to every task; the
    cold start is what the lanes' first tasks took beyond it. None when the median lane ran
    fewer than MIN_LANE_TASKS tasks: the two cannot be told apart."""
    total = float((tasks["own"] - tasks["twin"]).sum())
    if tasks.empty:
        return None
    ordered = tasks.sort_values("start")
    position = ordered.groupby("lane").cumcount()
    size = ordered.groupby("lane")["lane"].transform("size")
    late = position >= np.ceil(size / 2)
    late_twin = float(ordered.loc[late, "twin"].sum())
    if size.median() < MIN_LANE_TASKS or late_twin <= 0:
        return None
    steady = (float(ordered.loc[late, "own"].sum()) / late_twin - 1) * float(tasks["twin"].sum())
    return total - steady, steady


def per_task(work: pd.DataFrame) -> pd.DataFrame:
    """Per (i, k): wall, read, CPU and read CPU summed over its rows (a task and its save), and
    the lane and start of its first row."""
    frame = work.assign(wall=work["end_s"] - work["start_s"]).sort_values("start_s")
    cols = {"wall": "wall", "read_s": "read", "cpu_s": "cpu", "read_cpu_s": "read_cpu"}
    sums = frame.groupby(["i", "k"])[list(cols)].sum().rename(columns=cols)
    first = frame.groupby(["i", "k"])[["lane", "start_s"]].first()
    return sums.join(first.rename(columns={"start_s": "start"}))


def pop_metrics(work: pd.DataFrame, wall: float, workers: int, twins: float) -> dict:
    useful = (work["end_s"] - work["start_s"]).groupby(work["lane"]).sum().to_numpy()
    useful = np.concatenate([useful, np.zeros(max(0, workers - len(useful)))])
    top = useful.max() if len(useful) else 0.0
    balance = float(useful.mean() / top) if top > 0 else float("nan")
    comm = float(top / wall) if wall > 0 else float("nan")
    scaling = float(twins / useful.sum()) if useful.sum() > 0 else float("nan")
    return {
        "load_balance": balance,
        "comm_efficiency": comm,
        "parallel_efficiency": balance * comm,
        "computation_scaling": scaling,
        "global_efficiency": balance * comm * scaling,
    }


def account(
    run: pd.Series,
    tasks: pd.DataFrame,
    seq_run: pd.Series,
    seq_tasks: pd.DataFrame,
    in_process: bool,
    twins: pd.DataFrame | None = None,
) -> dict:
    """The loss account and POP metrics of one run against one sequential run (twins: its
    per_task table, where the caller has it already)."""
    workers, wall, t_seq = int(run["workers"]), float(run["wall_s"]), float(seq_run["wall_s"])
    work = tasks[tasks["kind"].ne("main")]
    spans = tasks[tasks["kind"].eq("main")]
    seq_work = seq_tasks[seq_tasks["kind"].ne("main")]
    idle = lane_idle(work, spans, wall, workers)
    split = twin_split(work, seq_work, twins)
    capacity = workers * wall
    seconds = {
        **{k: idle[k] for k in ("serial_read", "pool_startup", "first_handout", "gaps", "tail")},
        "reading": split["reading"],
        "cpu_inflation": split["cpu_inflation"],
        "waiting": split["waiting"],
        "sequential_overhead": -(t_seq - split["twins_all"]),
    }
    efficiency_run = t_seq / capacity
    losses = {f"loss_{k}_pp": 100 * v / capacity for k, v in seconds.items()}
    residual = 100 * (1 - efficiency_run) - sum(losses.values())
    return {
        "efficiency_run": efficiency_run,
        **losses,
        **cpu_split(split["cold_and_steady"], paired_twin(run, seq_run), capacity),
        "closure_residual_pp": residual,
        **pop_metrics(work, wall, workers, split["twin"]),
        "lanes": idle["lanes"],
        "repeat": int(run["repeat"]),
        **_cpu_check(run, work, in_process),
    }


def cpu_split(parts: tuple[float, float] | None, paired: bool, capacity: float) -> dict:
    """CPU inflation's cold start and steady state in pp, or empty with the reason they cannot
    be measured: without a paired twin a steady state is the drift between two runs measured
    apart; with short lanes it cannot be told from the cold start."""
    if paired and parts is not None:
        values = [100 * seconds / capacity for seconds in parts]
        return {**dict(zip(SPLIT_COLUMNS, values, strict=True)), SPLIT_REASON: ""}
    reason = SHORT_LANES if paired else NO_PAIRED_TWIN
    return {**dict.fromkeys(SPLIT_COLUMNS, float("nan")), SPLIT_REASON: reason}


def _cpu_check(run: pd.Series, work: pd.DataFrame, in_process: bool) -> dict:
    """Sum of task CPU (thread_time) against getrusage of the workers: the rest is pickling and
    pool management. In-process strategies share the measuring process, so its whole CPU."""
    task_cpu = float(work["cpu_s"].sum())
    total = float(run.get("t_cpu_s", float("nan")))
    main = 0.0 if in_process else float(run.get("t_dispatch_s", float("nan")))
    workers_cpu = total - main
    return {
        "task_cpu_s": task_cpu,
        "worker_cpu_s": workers_cpu,
        "cpu_agreement": task_cpu / workers_cpu if workers_cpu > 0 else float("nan"),
    }


def loss_table(
    runs: pd.DataFrame, tasks: pd.DataFrame | None, table: pd.DataFrame, in_process: frozenset[str]
) -> pd.DataFrame:
    """One row per non-baseline cell that has traces and a same-size sequential twin run: the
    mean of its runs' accounts (each run against its own twin), with intervals (summarise)."""
    if tasks is None or tasks.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    by_run = {key: rows for key, rows in tasks.groupby(["cell_id", "repeat"])}
    twins: dict = {}  # a twin's per_task table: every cell of its round divides by it
    rows = []
    for key, cell_runs in runs.groupby(CELL_KEYS, sort=False):
        strategy, saving, _, width, height = key
        if strategy == BASELINE:
            continue
        seq = runs[
            runs["strategy"].eq(BASELINE)
            & runs["saving"].eq(saving)
            & runs["width"].eq(width)
            & runs["height"].eq(height)
        ]
        found = run_accounts(cell_runs, seq, by_run, strategy in in_process, twins)
        if found:
            rows.append({**dict(zip(CELL_KEYS, key, strict=True)), **summarise(found)})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    efficiency = table.set_index(CELL_KEYS)["efficiency"]
    frame.insert(
        5,
        "efficiency",
        [efficiency.get(tuple(k)) for k in frame[CELL_KEYS].itertuples(index=False, name=None)],
    )
    return frame.sort_values(
        ["saving", "workers", "strategy"], ascending=[False, True, True], ignore_index=True
    )[TABLE_COLUMNS]


def run_accounts(
    cell_runs: pd.DataFrame,
    seq: pd.DataFrame,
    by_run: dict,
    in_process: bool,
    twins: dict | None = None,
) -> list[dict]:
    """The account of every ok run of a cell that has its trace and a traced twin; twins: the
    twins' per_task tables by (cell_id, repeat), filled as they are made."""
    twins = {} if twins is None else twins
    twin_of = twins_of(seq)
    found = []
    for _, run in cell_runs[cell_runs["status"].eq("ok")].iterrows():
        seq_run = twin_of(run)
        if seq_run is None:
            continue
        key = (seq_run["cell_id"], seq_run["repeat"])
        mine, seq_tasks = by_run.get((run["cell_id"], run["repeat"])), by_run.get(key)
        if mine is None or seq_tasks is None:
            continue
        if key not in twins:
            twins[key] = per_task(seq_tasks[seq_tasks["kind"].ne("main")])
        found.append(account(run, mine, seq_run, seq_tasks, in_process, twins[key]))
    return found


def summarise(accounts: list[dict]) -> dict:
    """A cell's account from its runs' accounts: each column's mean, so the causes still add up
    to the mean loss, 100 (1 - mean E run); each cause's 95% interval, mean +- t sd / sqrt(n)
    over the n runs (nan from one run). CPU inflation's split is kept where every run has one and
    both parts' intervals are within +-SPLIT_WIDTH_PP; otherwise SPLIT_REASON says why not."""
    frame = pd.DataFrame(accounts)
    numeric = frame.drop(columns=[SPLIT_REASON]).astype(float)
    out = {**numeric.mean().to_dict(), "runs_accounted": len(frame)}
    for column in CAUSES:
        low, high = mean_interval(numeric[column])
        out[f"{column}_low"], out[f"{column}_high"] = low, high
    reasons = frame[SPLIT_REASON].fillna("")
    out[SPLIT_REASON] = split_reason(reasons, out)
    if out[SPLIT_REASON]:
        out.update({c: np.nan for c in SPLIT_COLUMNS})
        out.update({f"{c}_{end}": np.nan for c in SPLIT_COLUMNS for end in ("low", "high")})
    return out


def split_reason(reasons: pd.Series, summary: dict) -> str:
    """Why the cell's CPU inflation is not split ("" where it is): a run without its split
    (its own reason), one run only, or a part whose interval is wider than +-SPLIT_WIDTH_PP."""
    missing = reasons[reasons.ne("")]
    if len(missing):
        return str(missing.mode().iloc[0])
    if len(reasons) < 2:
        return ONE_RUN
    for column in SPLIT_COLUMNS:
        half = (summary[f"{column}_high"] - summary[f"{column}_low"]) / 2
        if not half <= SPLIT_WIDTH_PP:
            return NOT_SEPARABLE
    return ""


def mean_interval(values: pd.Series, level: float = 0.95) -> tuple[float, float]:
    """The t interval of the mean of `values` (finite ones), nan from fewer than two."""
    x = values.to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return np.nan, np.nan
    half = float(t_dist.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return float(x.mean() - half), float(x.mean() + half)


def holds_zero(row: pd.Series, column: str) -> bool:
    """Whether a cause's interval holds zero (False where it has none)."""
    low, high = row.get(f"{column}_low"), row.get(f"{column}_high")
    return bool(pd.notna(low) and pd.notna(high) and low <= 0 <= high)


def at_largest_w(rows: pd.DataFrame, cores: int) -> pd.Series:
    """A strategy's row at its largest W within the usable cores (else at its largest W)."""
    within = rows[rows["workers"].le(cores)]
    return (within if len(within) else rows).sort_values("workers").iloc[-1]


def largest_causes(losses: pd.DataFrame, cores: int) -> list[dict]:
    """Per strategy and saving mode, at its largest W within the usable cores (else its largest
    W): the efficiency lost and the cause that took most of it, of the causes whose interval
    leaves out zero."""
    found = []
    for (strategy, saving), rows in losses.groupby(["strategy", "saving"], sort=False):
        row = at_largest_w(rows, cores)
        named = [c for c in LOSS_COLUMNS if not holds_zero(row, c)]
        if not named:
            continue
        values = row[named].astype(float)
        cause = values.idxmax()
        found.append(
            {
                "strategy": strategy,
                "saving": bool(saving),
                "workers": int(row["workers"]),
                "lost_pp": 100 * (1 - float(row["efficiency_run"])),
                "cause": LOSSES[cause.removeprefix("loss_").removesuffix("_pp")],
                "cause_pp": float(values[cause]),
                "cause_low": float(row.get(f"{cause}_low", np.nan)),
                "cause_high": float(row.get(f"{cause}_high", np.nan)),
            }
        )
    return found

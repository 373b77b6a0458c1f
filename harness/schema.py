"""The result schema, in one place: the cell, what the parent hands the child (CellSpec), and
every stored and reported column with its unit and meaning. The run folder's format version and
its migrations are in harness/migrations.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from experiments.strategies import BASELINE  # noqa: F401  (re-exported for the harness)

CELL_KEYS = ["strategy", "saving", "workers", "width", "height"]


@dataclass(frozen=True)
class Cell:
    """One point of a sweep: a strategy at W workers, saving or not, on images of one size."""

    strategy: str
    workers: int
    saving: bool
    width: int
    height: int
    skip: str | None = None  # why it does not run (shown as "—" in the report)

    @property
    def id(self) -> str:
        mode = "save" if self.saving else "nosave"
        return f"{self.strategy}-w{self.workers}-{mode}-{self.width}x{self.height}"

    @property
    def is_baseline(self) -> bool:
        return self.strategy == BASELINE

    def key(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "workers": self.workers,
            "saving": self.saving,
            "width": self.width,
            "height": self.height,
        }


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JobSpec(_Frozen):
    """experiments.workload.Job as JSON: what every strategy's timed call is given."""

    input_dir: str
    out_dir: str
    augmentations: int
    seed: int
    saving: bool
    ext: str
    cv2_threads: int
    options: dict[str, Any] = {}
    pipeline: dict[str, Any] = {}  # experiments.pipeline.Pipeline's fields; {}: the study's


class CellSpec(_Frozen):
    """What the runner hands one child process (`python -m harness.measure.child SPEC.json`)."""

    cell: dict[str, Any]  # Cell's fields
    job: JobSpec
    warmup: int
    repeats: list[int]  # the repeat numbers it may record, in order, until the stop rule holds
    start_method: str
    results: str  # the JSON-lines file the child appends one line per run to
    plugins: list[str] = []  # strategy plugins to load before resolving the strategy
    warmup_tasks: float = 1.0  # the share of the tasks each warm-up run does
    # [min, max, ci] of stats.precision.Target; [] = all (and in paired rounds, whose plan judges)
    target: list[float | None] = []
    futility: str = "robust"  # the target's futility rule (stats.precision.beyond_reach)
    prior: list[float] = []  # the cell's ok wall times stored before this child
    slicing: bool = False  # more workers than usable cores: stop at min
    stop_file: str = ""  # once it exists, record no run beyond min (a limit cut the cell)
    # The judged file: where the parent writes how many recorded runs it has judged against its
    # limits; the child waits for that before a run beyond min. "" = no limits, never wait.
    # Stored as `verdicts`, its name in the spec files of earlier runs.
    judged: str = Field("", alias="verdicts")
    round: int | None = None  # paired rounds: echoed into every line the child writes
    position: int | None = None
    # A/B (harness/measure/ab.py): record run n only once the judged file holds more than n,
    # and name the `experiments` package that ran in each recorded line.
    paced: bool = False

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def the_cell(self) -> Cell:
        return Cell(**self.cell)

    def write(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=1, by_alias=True))

    @classmethod
    def read(cls, path: Path) -> CellSpec:
        return cls.model_validate_json(Path(path).read_text())


@dataclass(frozen=True)
class Column:
    name: str
    unit: str  # "" for labels and counts
    meaning: str
    in_csv: bool = True  # tables/<kind>.csv carries it (table columns only)


def _columns(*rows: tuple) -> dict[str, Column]:
    return {row[0]: Column(*row) for row in rows}


# runs.parquet: one row per recorded run, stored in this order (absent columns are left out).
RUN_COLUMNS = _columns(
    ("cell_id", "", "the cell: strategy-w<W>-<save|nosave>-<width>x<height>"),
    (
        "strategy",
        "",
        "the strategy's name (`sequential` is the baseline), or a variant's label "
        "`NAME[option=value,...]`",
    ),
    ("workers", "", "W, the worker count"),
    ("saving", "", "whether outputs were written"),
    ("width", "px", "image width"),
    ("height", "px", "image height"),
    ("n_images", "", "input images"),
    ("augmentations_per_image", "", "augmented copies of every image"),
    ("repeat", "", "recorded run number within the cell, from 0"),
    ("wall_s", "s", "the timed call, from listing the inputs to the pool joined"),
    ("status", "", "`ok`, `failed` or `timeout`"),
    ("error", "", "why a run was not ok"),
    ("t_read_s", "s", "seconds reading images, summed over tasks"),
    ("t_augment_s", "s", "seconds augmenting, summed over tasks"),
    ("t_save_s", "s", "seconds saving, summed over tasks (savers' time where savers save)"),
    ("tasks", "", "tasks done (images x augmentations)"),
    ("start_method", "", "multiprocessing start method"),
    ("started_at", "", "UTC start time of the run"),
    (
        "peak_rss_mb",
        "MB",
        "peak resident memory of the main process plus its largest child, sampled at 4 Hz",
    ),
    (
        "t_cpu_s",
        "s",
        "CPU seconds of all the run's processes (getrusage of the child and its reaped children)",
    ),
    (
        "t_dispatch_s",
        "s",
        "CPU seconds of the main process (reading, pickling, pool management); "
        "empty for in-process strategies",
    ),
    (
        "steal_s",
        "s",
        "CPU seconds the hypervisor took from this VM during the run, summed over CPUs",
    ),
    (
        "host_busy_s",
        "s",
        "CPU seconds every process of the machine used during the run, this run's own included "
        "(/proc/stat, summed over CPUs); host_busy_s − t_cpu_s is what other programs took",
    ),
    (
        "t_sys_s",
        "s",
        "the kernel's part of t_cpu_s (system CPU seconds): page faults, I/O, process start-up",
    ),
    (
        "minor_faults",
        "",
        "minor page faults of the run's processes (getrusage): pages the allocator got fresh "
        "from the kernel; docs/MEMORY.md",
    ),
    ("t_startup_s", "s", "creating the pool (forking W workers)"),
    (
        "t_session_startup_s",
        "s",
        "opening the strategy's per-cell session, outside the timed region",
    ),
    (
        "worker_restarts",
        "",
        "worker processes that died during the run and that the executor restarted, redoing "
        "their tasks (Dask's nanny); empty where a death fails the run",
    ),
    (
        "round",
        "",
        "paired rounds (`order: rounds`): the round the run belongs to, from 0; empty otherwise",
    ),
    (
        "position",
        "",
        "paired rounds: the run's place in its round's sequence of its saving mode, from 0",
    ),
    (
        "batch",
        "",
        "tasks handed to a worker at once (the strategy's `batch` option, resolved); empty for "
        "strategies that do not batch and for runs before batching",
    ),
)
# Columns an empty runs table has (every row of the first format had them).
BASE_RUN_COLUMNS = list(RUN_COLUMNS)[: list(RUN_COLUMNS).index("started_at") + 1]
# A strategy's own phase k (contract `phases`) is stored as t_<k>_s; its label comes from it.
PHASE_COLUMN = "t_{}_s"
WORK_PHASES = {"t_read_s": "read", "t_augment_s": "augment", "t_save_s": "save"}

# tables/<kind>.csv: one row per cell, in this order.
TABLE_COLUMNS = _columns(
    ("strategy", "", "the strategy"),
    ("saving", "", "whether outputs were written"),
    ("workers", "", "W"),
    ("width", "px", "image width"),
    ("height", "px", "image height"),
    ("time_s", "s", "median wall time of the ok repeats"),
    ("speedup", "", "strong: T_seq / T_W; weak: scaled, E x W"),
    ("efficiency", "", "strong: S / W; weak: T_seq(base size) / T_W"),
    ("ideal_s", "s", "ideal execution: strong T_seq / W, weak T_seq(base size)", False),
    ("images_per_s", "1/s", "augmented images per second: tasks of a run / time_s"),
    ("images_per_s_ci_low", "1/s", "95% interval of images_per_s, low end (tasks / ci_high)"),
    ("images_per_s_ci_high", "1/s", "95% interval of images_per_s, high end (tasks / ci_low)"),
    ("n_ok", "", "ok repeats"),
    ("n_runs", "", "recorded repeats"),
    (
        "stop",
        "",
        "why the cell stopped recording under a precision target: target, max, futile, "
        "time-slicing, budget or spend (empty for a fixed repeat count); in paired rounds a "
        "cell's is its speedup's, and the baseline's is `rounds` (visited while its group ran); "
        "in a race every contender's is `raced` (the race says when and why it stopped)",
    ),
    ("ci_low", "s", "95% interval of the median time (order statistics), low end"),
    ("ci_high", "s", "95% interval of the median time, high end"),
    ("ci_level", "", "exact coverage of that interval (order statistics; below 95% under 6 runs)"),
    ("half_width", "", "(ci_high - ci_low) / (2 time_s): the cell's relative precision"),
    ("cv", "", "coefficient of variation (std / mean) of the ok repeats"),
    ("unstable", "", "CV above 5%"),
    ("n_outliers", "", "repeats with modified z-score above 3.5 (from 5 repeats on)"),
    ("speedup_ci_low", "", "95% interval of the speedup, low end"),
    ("speedup_ci_high", "", "95% interval of the speedup, high end"),
    ("efficiency_ci_low", "", "95% interval of the efficiency, low end"),
    ("efficiency_ci_high", "", "95% interval of the efficiency, high end"),
    ("utilization", "", "phase seconds / (wall x W): overstates real use when oversubscribed"),
    ("processes", "", "busy processes the cell runs"),
    ("oversubscribed", "", "more busy processes than usable physical cores"),
)


CSV_COLUMNS = [c.name for c in TABLE_COLUMNS.values() if c.in_csv]

# tasks/: the per-task trace, one parquet file per recorded run (`<cell_id>-r<repeat>.parquet`),
# one row per task (and per saver's part of a task) and one per span of the main thread. Times are
# seconds from the run's start (t0, taken just before the strategy's call; every process on a
# host shares the clock). A folder may hold these per-run files in tasks/ or one packed
# tasks.parquet; both are read, so the layout needs no format version of its own.
TASKS_DIR = "tasks"
TASKS_FILE = "tasks.parquet"
TASK_COLUMNS = _columns(
    ("cell_id", "", "the cell"),
    ("repeat", "", "the recorded run"),
    (
        "kind",
        "",
        "`task`, `save` (a saver process saving a task's output) or `main` (a span of "
        "the main thread)",
    ),
    ("span", "", "for `main` rows: `read`, `startup`, `dispatch` (hand-out and join) or `join`"),
    ("i", "", "image index (-1 for main spans)"),
    ("k", "", "augmentation index (-1 for main spans)"),
    ("lane", "", "OS thread id of the worker thread that ran it (a worker process's pid)"),
    ("start_s", "s", "start, from the run's t0"),
    ("end_s", "s", "end, from the run's t0"),
    ("read_s", "s", "reading the image inside the task"),
    ("augment_s", "s", "augmenting"),
    ("save_s", "s", "saving"),
    ("handoff_s", "s", "handing the output to a saver (a queue put)"),
    ("cpu_s", "s", "CPU time of the thread while it ran the task (time.thread_time)"),
    ("read_cpu_s", "s", "the part of cpu_s spent reading"),
)
TASK_KINDS = {0: "task", 1: "save"}  # experiments.workload.TASK / SAVE
TRACE_FIELDS = ("trace", "spans")  # a child's JSON line: the run's per-task rows and main spans


def without_trace(run: dict) -> dict:
    """A child's JSON line without its trace: what runs.parquet and a slim results file keep."""
    return {k: v for k, v in run.items() if k not in TRACE_FIELDS}


def utc_now() -> str:
    """Now in UTC to the second, as every timestamp of a run folder is written."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def phase_column(key: str) -> str:
    return PHASE_COLUMN.format(key)


def order_run_columns(columns: list[str]) -> list[str]:
    """Registry order first, then anything else (a strategy's own phases) as found."""
    return [c for c in RUN_COLUMNS if c in columns] + [c for c in columns if c not in RUN_COLUMNS]


def markdown_table(columns: dict[str, Column]) -> str:
    """The registry as a markdown table: the column lists of docs/REPORT.md, checked by a test."""
    lines = ["| column | unit | meaning |", "|---|---|---|"]
    lines += [f"| `{c.name}` | {c.unit or '—'} | {c.meaning} |" for c in columns.values()]
    return "\n".join(lines)


def readme_tables() -> dict[str, str]:
    """docs/REPORT.md's column tables by marker name; `python -m harness.schema` prints them."""
    return {
        "runs": markdown_table(RUN_COLUMNS),
        "table": markdown_table(TABLE_COLUMNS),
        "tasks": markdown_table(TASK_COLUMNS),
    }


if __name__ == "__main__":
    for marker, text in readme_tables().items():
        print(f"<!-- columns:{marker} -->\n{text}\n<!-- /columns:{marker} -->\n")

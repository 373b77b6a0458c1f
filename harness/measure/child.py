"""The child process of one unit: `python -m harness.measure.child SPEC.json` (pyperf's worker).

It loads the spec's plugins, opens the strategy's session, and writes one JSON line per run
(warm-up and recorded) to the spec's `results` file as soon as the run ends, so the parent sees
progress and keeps every finished run if this process dies.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import os
import shutil
import sys
import time
from dataclasses import replace
from multiprocessing.context import BaseContext
from pathlib import Path

import experiments
from experiments import strategies
from experiments.contract import Strategy
from experiments.pipeline import Pipeline, study_pipeline
from experiments.workload import (
    TASK_FIELDS,
    Job,
    Phases,
    expected_outputs,
    init_process,
    list_images,
)
from harness.measure import hooks
from harness.schema import CellSpec, JobSpec, phase_column, utc_now, without_trace
from harness.stats.precision import Target, stop_reason

JUDGED_WAIT_S = 120.0  # the parent answers within a poll (0.2 s); this only guards its death
JUDGED_POLL_S = 0.02

START, END = TASK_FIELDS.index("start"), TASK_FIELDS.index("end")


def job_of(spec: JobSpec) -> Job:
    fields = {**spec.model_dump(), "input_dir": Path(spec.input_dir), "out_dir": Path(spec.out_dir)}
    fields["pipeline"] = Pipeline(**spec.pipeline) if spec.pipeline else study_pipeline()
    return Job(**fields)


def timed_call(
    strategy: Strategy,
    job: Job,
    workers: int,
    ctx: BaseContext,
    session: object,
    instruments: list[hooks.Hook],
) -> tuple[Phases, float, float]:
    """The strategy's one timed call inside the hooks: (its phases, wall seconds, t0)."""
    with hooks.around(instruments):
        t0 = time.perf_counter()
        phases = strategy.call(job, workers, ctx, session)
        wall = time.perf_counter() - t0
    return phases, wall, t0


def trace(phases: Phases, t0: float) -> dict[str, list]:
    """The run's task rows and main spans, their times made relative to t0."""
    rows = [[*r[:START], r[START] - t0, r[END] - t0, *r[END + 1 :]] for r in phases.rows]
    spans = [[name, lane, start - t0, end - t0] for name, lane, start, end in phases.spans]
    return {"trace": rows, "spans": spans}


def run_once(strategy: Strategy, job: Job, workers: int, ctx: BaseContext, session: object) -> dict:
    """One timed call, then the output check and clean-up (both untimed)."""
    started = utc_now()
    try:
        clear(job.out_dir)
    except OSError as err:
        return {
            "status": "failed",
            "started_at": started,
            "error": f"cannot prepare the output folder {job.out_dir}: {one_line(err)}",
        }
    instruments = hooks.measuring(strategy.in_process, strategy.restarts_workers)
    try:
        phases, wall, t0 = timed_call(strategy, job, workers, ctx, session, instruments)
    except Exception as err:  # a failing strategy is a measurement outcome, not a crash
        shutil.rmtree(job.out_dir, ignore_errors=True)
        return {"status": "failed", "error": one_line(err), "started_at": started}
    written = sum(1 for _ in job.out_dir.iterdir())
    expected = expected_outputs(job, len(list_images(job.input_dir)))
    clear(job.out_dir)
    os.sync()  # flush this run's writes now, so they do not land in the next timed run
    row = {
        "status": "ok",
        "error": "",
        "started_at": started,
        "wall_s": wall,
        "t_read_s": phases.read,
        "t_augment_s": phases.augment,
        "t_save_s": phases.save,
        "tasks": phases.tasks,
        **({"batch": phases.batch} if phases.batch is not None else {}),
        **hooks.columns(instruments),
        **{phase_column(k): v for k, v in phases.extra.items()},
        **trace(phases, t0),
    }
    if written != expected:
        row.update(status="failed", error=f"wrote {written} files, expected {expected}")
    return row


def clear(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)


def one_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}".replace("\n", " ")[:500]


def main(spec_path: str) -> int:
    spec = CellSpec.read(Path(spec_path))
    init_process(spec.job.cv2_threads)
    strategies.load_plugins(spec.plugins)
    strategy = strategies.get(spec.cell["strategy"])
    job, workers = job_of(spec.job), spec.cell["workers"]
    ctx = multiprocessing.get_context(spec.start_method)
    warm = warmup_job(job, spec.warmup_tasks)
    walls = list(spec.prior)
    t0 = time.perf_counter()
    with strategy.open_session(job, workers, ctx) as session, open(spec.results, "a") as out:
        session_s = time.perf_counter() - t0

        def record(kind: str, n: int, the_job: Job) -> dict:
            row = {"kind": kind, "repeat": n, **run_once(strategy, the_job, workers, ctx, session)}
            if spec.round is not None:
                row.update(round=spec.round, position=spec.position)
            if spec.paced:
                row["code"] = str(Path(experiments.__file__).resolve().parent)
            if kind == "warmup":  # only recorded runs keep their trace
                row = {**without_trace(row), "warmup_tasks": spec.warmup_tasks}
            if strategy.session is not None:
                row["t_session_startup_s"] = session_s
            out.write(json.dumps(row) + "\n")
            out.flush()
            os.fsync(out.fileno())
            return row

        for n in range(spec.warmup):
            record("warmup", n, warm)
        for written, r in enumerate(spec.repeats):
            if stops(spec, walls, written) or (spec.paced and not go_ahead(spec, written)):
                break
            row = record("recorded", r, job)
            if row["status"] == "ok":
                walls.append(row["wall_s"])
    shutil.rmtree(job.out_dir, ignore_errors=True)
    return 0


def warmup_job(job: Job, share: float) -> Job:
    """The job a warm-up runs: every image, `share` of its augmentations (at least one), so it
    imports, forks and faults in what the recorded runs use without repeating all their work."""
    return replace(job, augmentations=max(1, math.ceil(job.augmentations * share)))


def stops(spec: CellSpec, walls: list[float], written: int = 0) -> bool:
    """Whether to stop before a recorded run: the stop rule (harness.stats.precision), then the stop
    file of a limit that cut the cell, once the parent has judged the `written` recorded runs
    of this child."""
    if not spec.target:
        return False
    low, high, ci = spec.target
    target = Target(int(low), int(high), ci, futility=spec.futility)
    if stop_reason(walls, target, spec.slicing):
        return True
    if len(walls) < target.min or not spec.stop_file:
        return False
    if spec.judged and written:  # the runs before this child were judged before it started
        wait_until_judged(spec, written)
    return Path(spec.stop_file).exists()


def wait_until_judged(spec: CellSpec, written: int, timeout: float = JUDGED_WAIT_S) -> None:
    """Until the parent has judged every recorded run this child wrote (or has stopped it):
    without the wait a run starts before the parent has read the last one, and every cell a
    limit cuts gets one run more than the limit allows."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not Path(spec.stop_file).exists():
        with contextlib.suppress(OSError, ValueError):
            if int(Path(spec.judged).read_text()) >= written:
                return
        time.sleep(JUDGED_POLL_S)


def go_ahead(spec: CellSpec, written: int) -> bool:
    """A paced child (A/B): wait until the parent allows recorded run `written` (the judged
    file holds more than `written`); False once the parent stops this child or is gone."""
    parent = os.getppid()
    while not Path(spec.stop_file).exists() and os.getppid() == parent:
        with contextlib.suppress(OSError, ValueError):
            if int(Path(spec.judged).read_text()) > written:
                return True
        time.sleep(JUDGED_POLL_S)
    return False


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

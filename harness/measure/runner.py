"""Runs the plan: each unit in a fresh child process (measure/child.py) with a timeout, results
stored as they finish (pyperf's manager side)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import IO

from tqdm import tqdm

from experiments import strategies
from harness.measure.interrupt import Interrupted, held
from harness.measure.progress import Progress
from harness.measure.protocol import UnitFiles, read_new
from harness.measure.sweep import Sweep, cell_spec
from harness.plan.cells import Cell, Stored, Unit, time_slicing
from harness.plan.limits import Limit, cutting
from harness.rundir import store, units
from harness.schema import without_trace
from harness.stats.precision import stop_reason

POLL_S = 0.05  # how soon a finished child is noticed; a poll reads one small file


def start_child(
    spec: Path,
    log_file: IO[str],
    env: Mapping[str, str] | None = None,
    flags: Sequence[str] = (),
) -> subprocess.Popen:
    """The unit's child process, leading its own process group, with `env` added to this
    process's environment and `flags` given to the interpreter. A signal that arrives while it
    starts is held until its pid is known; then the group is killed and Interrupted raised."""
    with held() as signals:
        proc = subprocess.Popen(
            [sys.executable, *flags, "-m", "harness.measure.child", str(spec)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **env} if env else None,
        )
        if signals:
            kill_group(proc)
    return proc


def kill_group(proc: subprocess.Popen) -> None:
    """The child leads its own process group: this ends it and every process it started
    (pool workers, savers, a Manager), even ones orphaned by a crashed child. A signal waits
    until the group is gone."""
    with held():
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()


def _clean_after(sweep: Sweep, unit: Unit, pid: int) -> None:
    """What a killed child could not clean: its scratch outputs, and the strategy's own
    resources (the contract's cleanup, e.g. shared-memory blocks)."""
    shutil.rmtree(sweep.scratch(unit.cell), ignore_errors=True)
    cleanup = strategies.get(unit.cell.strategy).cleanup
    if cleanup is not None:
        cleanup(pid)


def run_unit(
    sweep: Sweep,
    unit: Unit,
    on_run: Callable[[dict], None],
    prior: tuple[float, ...] = (),
    judged: bool = False,
) -> list[dict]:
    """Warm-up and recorded runs in a fresh child process; one row per recorded repeat.

    On SIGINT/SIGTERM the child's process group is killed, the repeats that finished are
    stored, and Interrupted propagates.
    """
    files = UnitFiles(sweep.run_dir, unit.tag)
    files.clear()
    results, log = files.results, files.log
    cell_spec(sweep, unit, files, prior, judged).write(files.spec)
    timeout = sweep.timeout(unit.cell, len(unit.repeats))
    deadline = time.monotonic() + timeout
    lines: list[dict] = []
    offset, timed_out = 0, False
    with open(log, "w") as log_file:
        proc = start_child(files.spec, log_file, sweep.config.env)
        try:
            while proc.poll() is None and not timed_out:
                new, offset = read_new(results, offset)
                for line in new:
                    on_run(line)
                lines += new
                timed_out = time.monotonic() > deadline
                time.sleep(POLL_S)
            kill_group(proc)
        except Interrupted:
            with held():  # a second signal waits until what finished is stored
                kill_group(proc)
                _clean_after(sweep, unit, proc.pid)
                lines += read_new(results, offset)[0]
                recorded = [line for line in lines if line["kind"] == "recorded"]
                rows = [_row(sweep, unit.cell, ln["repeat"], ln) for ln in recorded]
                store.replace_runs(sweep.run_dir, rows)
                _store_tasks(sweep, unit.cell, recorded)
            raise
        last = read_new(results, offset)[0]  # written between the last poll and the exit
        for line in last:
            on_run(line)
        lines += last
    if proc.returncode != 0:
        _clean_after(sweep, unit, proc.pid)
    if log.stat().st_size == 0:
        log.unlink()
    files.judged.unlink(missing_ok=True)
    recorded = {line["repeat"]: line for line in lines if line["kind"] == "recorded"}
    _store_tasks(sweep, unit.cell, list(recorded.values()))
    rows = [_row(sweep, unit.cell, r, recorded[r]) for r in unit.repeats if r in recorded]
    if proc.returncode == 0 and not timed_out:
        return rows  # the child stopped where the stop rule said
    missing = {**_missing_reason(proc, timed_out, timeout, log), **unit.where}
    lost = [r for r in unit.repeats if r not in recorded]
    if not sweep.rule.fixed:
        lost = lost[:1]  # the run it died in; the stop rule decides about the rest
    return rows + [_row(sweep, unit.cell, r, missing) for r in lost]


def _store_tasks(sweep: Sweep, cell: Cell, lines: list[dict]) -> None:
    """The per-task trace of recorded runs into tasks/ (ok runs only)."""
    frames = [store.task_frame(cell.id, ln["repeat"], ln) for ln in lines if ln["status"] == "ok"]
    store.write_tasks(sweep.run_dir, frames)


def _missing_reason(proc: subprocess.Popen, timed_out: bool, timeout: float, log: Path) -> dict:
    if timed_out:
        return {
            "status": "timeout",
            "error": f"cell exceeded its {timeout:g} s timeout (set cell_timeout_s to change it)",
        }
    tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.is_file() else []
    return {
        "status": "failed",
        "error": f"child exited with status {proc.returncode}: {' '.join(tail)[:400]}",
    }


def _row(sweep: Sweep, cell: Cell, repeat: int, run: dict) -> dict:
    base = {k: v for k, v in asdict(cell).items() if k != "skip"}
    return {
        "cell_id": cell.id,
        **base,
        "n_images": sweep.n_images,
        "augmentations_per_image": sweep.config.augmentations_per_image,
        "repeat": repeat,
        "wall_s": float("nan"),
        "error": "",
        "start_method": sweep.config.start_method,
        **{k: v for k, v in without_trace(run).items() if k != "kind"},
    }


def recover_orphans(sweep: Sweep) -> int:
    """Recorded runs that a killed parent never stored (they are in cells/*.jsonl): store them.
    Everything is read before anything is written: a damaged file stops the resume (one line,
    exit 2) and nothing stored is touched."""
    done = store.done_pairs(sweep.run_dir)
    rows, tasks = [], []
    for cell, lines in units.recorded_units(sweep.run_dir):
        for line in lines:
            if line["status"] == "ok" and (cell.id, line["repeat"]) not in done:
                rows.append(_row(sweep, cell, line["repeat"], line))
                tasks.append(store.task_frame(cell.id, line["repeat"], line))
                done.add((cell.id, line["repeat"]))
    store.replace_runs(sweep.run_dir, rows)
    store.write_tasks(sweep.run_dir, tasks)
    return len(rows)


def run_sweep(
    sweep: Sweep,
    todo: Iterable[Unit],
    total_s: float,
    limits: Sequence[Limit] = (),
) -> int:
    """Run every unit, storing its rows as it ends; returns how many runs did not finish ok.
    A unit beyond a cell's min runs that a limit cuts is skipped, and the cell marked cut.
    Raises Interrupted (after storing what finished) on SIGINT/SIGTERM."""
    progress = Progress(sweep.plan(), total_s)
    bad = 0
    try:
        for unit in todo:
            checked = () if _visit(unit) else limits
            prior = sweep.stored().get(unit.cell.id, Stored()).walls
            beyond_min = unit.optional or len(prior) >= sweep.rule.min  # e.g. on resume
            if beyond_min and (limit := _cutting(checked, sweep, progress, prior, unit)):
                limit.cut.add(unit.cell.id)
                continue
            progress.start_unit(unit)
            cut_by: list[Limit] = []
            on_run = _watch(sweep, unit, progress, checked, prior, cut_by)
            rows = run_unit(sweep, unit, on_run, prior, judged=bool(limits))
            store.replace_runs(sweep.run_dir, rows)
            units.slim_results(UnitFiles(sweep.run_dir, unit.tag).results)
            if cut_by and _wants_more(sweep, unit.cell):
                cut_by[0].cut.add(unit.cell.id)
            bad += sum(r["status"] != "ok" for r in rows)
            for r in rows:
                if r["status"] != "ok":
                    tqdm.write(
                        f"  {unit.cell.id} repeat {r['repeat']}: {r['status']}: {r['error']}",
                        file=sys.stderr,
                    )
        store.pack_tasks(sweep.run_dir)
    finally:
        progress.close()
        shutil.rmtree(sweep.run_dir / "scratch", ignore_errors=True)
    return bad


def _visit(unit: Unit) -> bool:
    """A baseline visit in paired rounds: no limit cuts it, since it closes the round before
    (the limits cut cells, and a group whose cells are all cut stops visiting)."""
    return unit.round is not None and unit.cell.is_baseline


def _cutting(
    limits: Sequence[Limit],
    sweep: Sweep,
    progress: Progress,
    walls: tuple,
    unit: Unit,
    whole: bool = True,
) -> Limit | None:
    """The first limit that cuts the unit's cell before the whole unit starts (or, once its
    child runs, before one more run)."""
    if not limits:
        return None
    next_s = sweep.unit_estimate(unit) if whole else sweep.run_estimate(unit.cell)
    return cutting(limits, sweep.plan(), unit.cell, walls, next_s, progress.speed())


def _watch(
    sweep: Sweep,
    unit: Unit,
    progress: Progress,
    limits: Sequence[Limit],
    prior: tuple,
    cut_by: list[Limit],
) -> Callable[[dict], None]:
    """The per-run callback: progress, and the stop file once the cell has its min runs and a
    limit cuts it (noted in `cut_by`)."""
    walls, judged = list(prior), [0]
    files = UnitFiles(sweep.run_dir, unit.tag)

    def on_run(line: dict) -> None:
        progress.run_done(line)
        if line["kind"] != "recorded":
            return
        if line["status"] == "ok":
            walls.append(line["wall_s"])
        if limits and len(walls) >= sweep.rule.min and not files.stop.exists():
            if limit := _cutting(limits, sweep, progress, tuple(walls), unit, whole=False):
                cut_by.append(limit)
                files.stop.touch()
        judged[0] += 1
        if limits:
            files.write_judged(judged[0])

    return on_run


def _wants_more(sweep: Sweep, cell: Cell) -> bool:
    walls = sweep.stored().get(cell.id, Stored()).walls
    return not stop_reason(walls, sweep.rule, time_slicing(cell, sweep.cores))

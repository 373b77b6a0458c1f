"""Runs the plan: each unit in a fresh child process (measure/child.py) with a timeout, results
stored as they finish (pyperf's manager side)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from experiments import strategies
from harness.config import Config
from harness.errors import HarnessError
from harness.plan.cells import (
    Cell,
    Stored,
    Unit,
    plan_cells,
    planned_runs,
    planned_seconds,
    runnable,
    time_slicing,
)
from harness.plan.estimate import Costs, cell_seconds
from harness.precision import Target, stop_reason
from harness.rundir import store
from harness.schema import CellSpec, JobSpec

POLL_S = 0.2
MIN_TIMEOUT_S = 300.0
TIMEOUT_FACTOR = 10.0


@dataclass(frozen=True)
class Sweep:
    """What every cell of one run shares."""

    config: Config
    run_dir: Path
    input_dirs: dict[tuple[int, int], Path]  # image folder per (width, height)
    n_images: int
    costs: Costs
    cores: int  # usable cores: above them a cell is time-slicing
    target: Target | None = None  # the stop rule, `max` capped by a budget; None: the config's

    @property
    def rule(self) -> Target:
        return self.target or self.config.target

    def run_estimate(self, cell: Cell) -> float:
        return cell_seconds(
            cell, self.n_images, self.config.augmentations_per_image, self.costs, self.cores
        )

    def warmup_estimate(self, cell: Cell) -> float:
        return self.run_estimate(cell) * self.config.warmup_runs * self.config.warmup_tasks

    def unit_estimate(self, unit: Unit, prior: int = 0) -> float:
        """A unit's warm-ups and the runs it is expected to record."""
        expected = planned_runs(unit.cell, self.rule, self.cores, "expected") - prior
        runs = max(1, min(len(unit.repeats), expected))
        return (
            self.costs.child_s
            + self.warmup_estimate(unit.cell)
            + self.run_estimate(unit.cell) * runs
        )

    def timeout(self, cell: Cell, repeats: int) -> float:
        if self.config.cell_timeout_s:
            return self.config.cell_timeout_s
        work = self.warmup_estimate(cell) + self.run_estimate(cell) * repeats
        return max(MIN_TIMEOUT_S, TIMEOUT_FACTOR * work)

    def scratch(self, cell: Cell) -> Path:
        return (self.config.scratch_dir or self.run_dir / "scratch") / cell.id

    def stored(self) -> dict[str, Stored]:
        """Every cell's ok runs so far, from runs.parquet."""
        runs = store.load_runs(self.run_dir)
        if runs.empty:
            return {}
        ok = runs[runs["status"].eq("ok")]
        return {
            cell_id: Stored(tuple(g["wall_s"]), frozenset(g["repeat"].astype(int)))
            for cell_id, g in ok.groupby("cell_id", sort=False)
        }


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived during a sweep; finished runs are already stored."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


def raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted(signum)


def cell_spec(
    sweep: Sweep, unit: Unit, results: Path, prior: tuple[float, ...] = (), judged: bool = False
) -> CellSpec:
    cfg, cell = sweep.config, unit.cell
    job = JobSpec(
        input_dir=str(sweep.input_dirs[(cell.width, cell.height)]),
        out_dir=str(sweep.scratch(cell)),
        augmentations=cfg.augmentations_per_image,
        seed=cfg.seed,
        saving=cell.saving,
        ext=cfg.images.format,
        cv2_threads=cfg.cv2_threads,
        options=cfg.options_for(cell.strategy),
    )
    rule = sweep.rule
    return CellSpec(
        cell=asdict(cell),
        job=job,
        warmup=cfg.warmup_runs,
        warmup_tasks=cfg.warmup_tasks,
        repeats=list(unit.repeats),
        start_method=cfg.start_method,
        results=str(results),
        plugins=list(cfg.plugins),
        target=[] if rule.fixed else [rule.min, rule.max, rule.ci],
        prior=list(prior),
        slicing=time_slicing(cell, sweep.cores),
        stop_file=str(stop_file(sweep, unit)),
        verdicts=str(verdicts_file(sweep, unit)) if judged else "",
    )


def stop_file(sweep: Sweep, unit: Unit) -> Path:
    return sweep.run_dir / "cells" / f"{unit.tag}.stop"


def verdicts_file(sweep: Sweep, unit: Unit) -> Path:
    return sweep.run_dir / "cells" / f"{unit.tag}.judged"


def write_verdicts(sweep: Sweep, unit: Unit, judged: int) -> None:
    """How many recorded runs of the unit the parent has judged (atomically: the child reads
    it while it is written)."""
    store.replace_text(verdicts_file(sweep, unit), str(judged))


def _read_new(path: Path, offset: int) -> tuple[list[dict], int]:
    if not path.is_file():
        return [], offset
    with open(path) as f:
        f.seek(offset)
        chunk = f.read()
    complete = chunk[: chunk.rfind("\n") + 1]
    return [json.loads(line) for line in complete.splitlines() if line], offset + len(complete)


def _kill_group(proc: subprocess.Popen) -> None:
    """The child leads its own process group: this ends it and every process it started
    (pool workers, savers, a Manager), even ones orphaned by a crashed child."""
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
    cells_dir = sweep.run_dir / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    results, log = cells_dir / f"{unit.tag}.jsonl", cells_dir / f"{unit.tag}.log"
    results.unlink(missing_ok=True)
    spec_path = cells_dir / f"{unit.tag}.spec.json"
    stop_file(sweep, unit).unlink(missing_ok=True)
    verdicts_file(sweep, unit).unlink(missing_ok=True)
    cell_spec(sweep, unit, results, prior, judged).write(spec_path)
    timeout = sweep.timeout(unit.cell, len(unit.repeats))
    deadline = time.monotonic() + timeout
    lines: list[dict] = []
    offset, timed_out = 0, False
    with open(log, "w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.measure.child", str(spec_path)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            while proc.poll() is None and not timed_out:
                new, offset = _read_new(results, offset)
                for line in new:
                    on_run(line)
                lines += new
                timed_out = time.monotonic() > deadline
                time.sleep(POLL_S)
        except Interrupted:
            _kill_group(proc)
            _clean_after(sweep, unit, proc.pid)
            lines += _read_new(results, offset)[0]
            recorded = [line for line in lines if line["kind"] == "recorded"]
            store.replace_runs(
                sweep.run_dir, [_row(sweep, unit.cell, ln["repeat"], ln) for ln in recorded]
            )
            _store_tasks(sweep, unit.cell, recorded)
            raise
        _kill_group(proc)
        last = _read_new(results, offset)[0]  # written between the last poll and the exit
        for line in last:
            on_run(line)
        lines += last
    if proc.returncode != 0:
        _clean_after(sweep, unit, proc.pid)
    if log.stat().st_size == 0:
        log.unlink()
    verdicts_file(sweep, unit).unlink(missing_ok=True)
    recorded = {line["repeat"]: line for line in lines if line["kind"] == "recorded"}
    _store_tasks(sweep, unit.cell, list(recorded.values()))
    rows = [_row(sweep, unit.cell, r, recorded[r]) for r in unit.repeats if r in recorded]
    if proc.returncode == 0 and not timed_out:
        return rows  # the child stopped where the stop rule said
    missing = _missing_reason(proc, timed_out, timeout, log)
    lost = [r for r in unit.repeats if r not in recorded]
    if not sweep.rule.fixed:
        lost = lost[:1]  # the run it died in; the stop rule decides about the rest
    return rows + [_row(sweep, unit.cell, r, missing) for r in lost]


def slim_results(path: Path) -> None:
    """Drop the per-task traces from a unit's results file once its runs are stored: tasks/
    holds them, and a resume recovers only lines that runs.parquet lacks. A damaged file is
    left as it is, for the resume to report."""
    if not path.is_file():
        return
    text = path.read_text(errors="replace")
    slim = []
    for line in text[: text.rfind("\n") + 1].splitlines():
        try:
            run = json.loads(line)
        except ValueError:
            return
        slim.append(json.dumps({k: v for k, v in run.items() if k not in ("trace", "spans")}))
    store.replace_text(path, "".join(f"{line}\n" for line in slim))


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
        **{k: v for k, v in run.items() if k not in ("kind", "trace", "spans")},
    }


def recover_orphans(sweep: Sweep) -> int:
    """Recorded runs that a killed parent never stored (they are in cells/*.jsonl): store them.
    Everything is read before anything is written: a damaged file stops the resume (one line,
    exit 2) and nothing stored is touched."""
    done = store.done_pairs(sweep.run_dir)
    rows, tasks = [], []
    for spec_path, results in unit_files(sweep.run_dir / "cells"):
        cell = _spec_cell(spec_path)
        for line in _recorded_lines(results):
            if line["status"] == "ok" and (cell.id, line["repeat"]) not in done:
                rows.append(_row(sweep, cell, line["repeat"], line))
                tasks.append(store.task_frame(cell.id, line["repeat"], line))
                done.add((cell.id, line["repeat"]))
    store.replace_runs(sweep.run_dir, rows)
    store.write_tasks(sweep.run_dir, tasks)
    return len(rows)


def readable_for_resume(run_dir: Path) -> set[tuple[str, int]]:
    """Read every stored file a resume needs before anything runs (a damaged one stops it in
    one line); the (cell_id, repeat) pairs already done."""
    done = store.done_pairs(run_dir)
    store.load_tasks(run_dir)
    for spec, results in unit_files(run_dir / "cells"):
        _spec_cell(spec)
        _recorded_lines(results)
    return done


def unit_files(cells_dir: Path) -> list[tuple[Path, Path]]:
    """(spec, results) of every unit that wrote results; the results file beside its spec, so a
    moved or copied run folder still finds them."""
    pairs = []
    for results in sorted(cells_dir.glob("*.jsonl")) if cells_dir.is_dir() else []:
        spec = results.with_name(results.name.removesuffix(".jsonl") + ".spec.json")
        if not spec.is_file():
            raise HarnessError(
                str(spec),
                None,
                f"missing, so the runs in {results.name} cannot be matched to their cell",
                f"restore it from a complete copy of the run folder, or delete {results} "
                "(its runs already in runs.parquet are kept; the others run again)",
            )
        pairs.append((spec, results))
    return pairs


def _spec_cell(path: Path) -> Cell:
    try:  # a CellSpec, or format 1's dict: the same `cell` key
        return Cell(**json.loads(path.read_text())["cell"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise HarnessError(
            str(path),
            "cell",
            f"cannot be read, it is damaged or not a cell spec ({type(err).__name__}: {err})",
            "restore it from a complete copy of the run folder",
        ) from None


def _recorded_lines(path: Path) -> list[dict]:
    """The recorded runs of a results file; an unfinished last line (the child was killed while
    writing it) is left out, any other damage is an error."""
    text = path.read_text(errors="replace")
    lines = text[: text.rfind("\n") + 1].splitlines()
    found = []
    for number, line in enumerate(lines, 1):
        try:
            run = json.loads(line)
            if run["kind"] == "recorded":
                found.append({**run, "repeat": int(run["repeat"]), "status": str(run["status"])})
        except (ValueError, KeyError, TypeError) as err:
            raise HarnessError(
                f"{path}:{number}",
                None,
                f"a damaged line ({type(err).__name__}: {err})",
                f"restore the file from a complete copy of the run folder, or delete {path} "
                "(its runs already in runs.parquet are kept; the others run again)",
            ) from None
    return found


class Progress:
    """A tqdm bar weighted by each run's estimated seconds, so its ETA follows the plan."""

    def __init__(self, sweep: Sweep, total_s: float) -> None:
        self.sweep, self.total = sweep, max(total_s, 1e-9)
        self.bar = tqdm(
            total=self.total,
            unit="s",
            bar_format="{percentage:3.0f}%|{bar:20}| {desc} [{elapsed}<{remaining}]",
            mininterval=0.5,
            file=sys.stderr,
        )
        self.started = time.monotonic()
        self.done_s = 0.0  # estimated seconds of the runs finished so far
        self.n, self.unit, self.runs, self.lines = 0, None, 0, 0

    def start_unit(self, unit: Unit) -> None:
        self.n, self.unit, self.runs, self.lines = self.n + 1, unit, 0, 0
        self._describe()

    def run_done(self, line: dict) -> None:
        cell = self.unit.cell
        warm = line["kind"] == "warmup"
        child = self.sweep.costs.child_s if self.lines == 0 else 0.0  # the total counts it
        self.lines += 1
        self.done_s += child + self.sweep.run_estimate(cell) * (
            self.sweep.config.warmup_tasks if warm else 1.0
        )
        self.runs += not warm
        self.bar.n = min(self.total, self.done_s)
        self._describe()

    def speed(self) -> float:
        """Actual over estimated seconds so far (1 before anything finished)."""
        return (time.monotonic() - self.started) / self.done_s if self.done_s > 0 else 1.0

    def _describe(self) -> None:
        self.bar.set_description_str(f"unit {self.n} {self.unit.cell.id} run {self.runs}")

    def close(self) -> None:
        self.bar.close()


@dataclass
class Budget:
    """`--budget`: no run beyond a cell's `min` once the sweep is projected to overrun."""

    seconds: float
    started: float = field(default_factory=time.monotonic)
    cut: set[str] = field(default_factory=set)  # cells that wanted runs the budget denied
    name: str = "budget"

    def denies(
        self, sweep: Sweep, progress: Progress, cell: Cell, walls: tuple, next_s: float
    ) -> bool:
        """Would one more run of next_s (estimated) plus every cell's runs still owed up to
        min (this cell owes none) overrun, at the speed measured so far?"""
        owed = planned_seconds(
            sweep.config,
            [c for c in sweep_cells(sweep) if c.id != cell.id],
            sweep.run_estimate,
            sweep.stored(),
            sweep.cores,
            "min",
            sweep.rule,
            sweep.costs.child_s,
        )
        projected = time.monotonic() - self.started + progress.speed() * (owed + next_s)
        return projected > self.seconds


@dataclass
class Spend:
    """`repeats: {spend: N}`: the sweep's machine time stays within N run-equivalents per cell,
    each cell weighted by its run time (what analysis.run_equivalents reports afterwards).
    A cell at W <= cores gets its next run only if every other cell still aiming at the
    target could have as many, and the time-slicing cells their min: the runs beyond min are
    shared out evenly, and a cell that stops early leaves its share to the others."""

    per_cell: float
    cut: set[str] = field(default_factory=set)
    name: str = "spend"

    def denies(
        self, sweep: Sweep, progress: Progress, cell: Cell, walls: tuple, next_s: float
    ) -> bool:
        now = {**sweep.stored(), cell.id: Stored(tuple(walls))}
        cells = sweep_cells(sweep)
        times = run_times(sweep, cells, now)
        level, rule = len(walls) + 1, sweep.rule
        warm = sweep.config.warmup_runs * sweep.config.warmup_tasks
        total = 0.0
        for c in cells:
            have = now.get(c.id, Stored())
            runs = len(have.walls)
            if c.id == cell.id:
                runs = level
            elif time_slicing(c, sweep.cores):
                runs = max(runs, rule.min)
            elif not stop_reason(have.walls, rule, False):
                runs = max(runs, rule.min, min(level, rule.max))
            children = runs if sweep.config.order == "interleaved" else min(runs, 1)
            total += times[c.id] * (runs + warm * children)
        return total > self.per_cell * sum(times.values())


def run_times(sweep: Sweep, cells: list[Cell], stored: dict[str, Stored]) -> dict[str, float]:
    """Each cell's run time: the median of its runs so far, else its estimate scaled by how the
    measured cells compared with theirs."""
    measured = {c.id: float(np.median(stored[c.id].walls)) for c in cells if _has_runs(c, stored)}
    ratios = [measured[c.id] / sweep.run_estimate(c) for c in cells if c.id in measured]
    scale = float(np.median(ratios)) if ratios else 1.0
    return {c.id: measured.get(c.id, sweep.run_estimate(c) * scale) for c in cells}


def _has_runs(cell: Cell, stored: dict[str, Stored]) -> bool:
    return bool(stored.get(cell.id, Stored()).walls)


Limit = Budget | Spend


def run_sweep(
    sweep: Sweep,
    units: Iterable[Unit],
    total_s: float,
    limits: Sequence[Limit] = (),
) -> int:
    """Run every unit, storing its rows as it ends; returns how many runs did not finish ok.
    A unit beyond a cell's min runs that a limit denies is skipped, and the cell marked cut.
    Raises Interrupted (after storing what finished) on SIGINT/SIGTERM."""
    progress = Progress(sweep, total_s)
    bad = 0
    try:
        for unit in units:
            prior = sweep.stored().get(unit.cell.id, Stored()).walls
            beyond_min = unit.optional or len(prior) >= sweep.rule.min  # e.g. on resume
            if beyond_min and (limit := _denying(limits, sweep, progress, unit.cell, prior, unit)):
                limit.cut.add(unit.cell.id)
                continue
            progress.start_unit(unit)
            denied: list[Limit] = []
            on_run = _watch(sweep, unit, progress, limits, prior, denied)
            rows = run_unit(sweep, unit, on_run, prior, judged=bool(limits))
            store.replace_runs(sweep.run_dir, rows)
            slim_results(sweep.run_dir / "cells" / f"{unit.tag}.jsonl")
            if denied and _wants_more(sweep, unit.cell):
                denied[0].cut.add(unit.cell.id)
            bad += sum(r["status"] != "ok" for r in rows)
            for r in rows:
                if r["status"] != "ok":
                    tqdm.write(
                        f"  {unit.cell.id} repeat {r['repeat']}: {r['status']}: {r['error']}",
                        file=sys.stderr,
                    )
    finally:
        progress.close()
        shutil.rmtree(sweep.run_dir / "scratch", ignore_errors=True)
    return bad


def _denying(
    limits: Sequence[Limit],
    sweep: Sweep,
    progress: Progress,
    cell: Cell,
    walls: tuple,
    unit: Unit | None = None,
) -> Limit | None:
    """The first limit that denies the cell one more run (a whole unit's, when given)."""
    next_s = sweep.unit_estimate(unit) if unit else sweep.run_estimate(cell)
    return next((lim for lim in limits if lim.denies(sweep, progress, cell, walls, next_s)), None)


def _watch(
    sweep: Sweep,
    unit: Unit,
    progress: Progress,
    limits: Sequence[Limit],
    prior: tuple,
    denied: list[Limit],
) -> Callable[[dict], None]:
    """The per-run callback: progress, and the stop file once the cell has its min runs and a
    limit denies one more (noted in `denied`)."""
    walls, judged = list(prior), [0]

    def on_run(line: dict) -> None:
        progress.run_done(line)
        if line["kind"] != "recorded":
            return
        if line["status"] == "ok":
            walls.append(line["wall_s"])
        path = stop_file(sweep, unit)
        if limits and len(walls) >= sweep.rule.min and not path.exists():
            if limit := _denying(limits, sweep, progress, unit.cell, tuple(walls)):
                denied.append(limit)
                path.touch()
        judged[0] += 1
        if limits:
            write_verdicts(sweep, unit, judged[0])

    return on_run


def _wants_more(sweep: Sweep, cell: Cell) -> bool:
    walls = sweep.stored().get(cell.id, Stored()).walls
    return not stop_reason(walls, sweep.rule, time_slicing(cell, sweep.cores))


def sweep_cells(sweep: Sweep) -> list[Cell]:
    return runnable(plan_cells(sweep.config))

"""Runs the plan: each cell in a fresh child process with a timeout, results stored as they finish."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from experiments.strategies.shm import SHM_PREFIX
from harness import store
from harness.config import Config
from harness.estimate import Costs, cell_seconds
from harness.plan import Cell

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
    cores: int

    def run_estimate(self, cell: Cell) -> float:
        return cell_seconds(cell, self.n_images, self.config.augmentations_per_image, self.costs, self.cores)

    def unit_estimate(self, unit: Unit) -> float:
        return self.run_estimate(unit.cell) * (self.config.warmup + len(unit.repeats))

    def timeout(self, cell: Cell, repeats: int) -> float:
        if self.config.cell_timeout_s:
            return self.config.cell_timeout_s
        return max(MIN_TIMEOUT_S, TIMEOUT_FACTOR * self.run_estimate(cell) * (self.config.warmup + repeats))


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived during a sweep; finished runs are already stored."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


def raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted(signum)


@dataclass(frozen=True)
class Unit:
    """One child process: a cell and the repeats it records (after its warm-up)."""

    cell: Cell
    repeats: tuple[int, ...]

    @property
    def tag(self) -> str:
        return f"{self.cell.id}.r{'-'.join(map(str, self.repeats))}"


def plan_units(cells: list[Cell], repeats: int, order: str, done: set[tuple[str, int]]) -> list[Unit]:
    """The children to start, skipping (cell, repeat) pairs already done.

    sequential: one child per cell runs all its missing repeats.
    interleaved: one child per (cell, repeat), round-robin over cells, so drift on a shared
    machine spreads evenly over the cells (each child does its own warm-up).
    """
    todo = {c: tuple(r for r in range(repeats) if (c.id, r) not in done) for c in cells}
    if order == "sequential":
        return [Unit(c, rs) for c, rs in todo.items() if rs]
    return [Unit(c, (r,)) for r in range(repeats) for c in cells if r in todo[c]]


def cell_spec(sweep: Sweep, unit: Unit, results: Path) -> dict:
    cfg, cell = sweep.config, unit.cell
    scratch = (cfg.scratch_dir or sweep.run_dir / "scratch") / cell.id
    job = {
        "input_dir": str(sweep.input_dirs[(cell.width, cell.height)]),
        "out_dir": str(scratch),
        "augmentations": cfg.augmentations_per_image,
        "seed": cfg.seed,
        "saving": cell.saving,
        "ext": cfg.images.format,
        "cv2_threads": cfg.cv2_threads,
        "placement": cfg.placement,
        "dask_scheduler": cfg.dask.scheduler,
        "dask_data": cfg.dask.data,
    }
    return {
        "strategy": cell.strategy, "workers": cell.workers, "job": job, "warmup": cfg.warmup,
        "repeats": list(unit.repeats), "start_method": cfg.start_method, "cv2_threads": cfg.cv2_threads,
        "results": str(results), "cell": asdict(cell),
    }


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
    """What a killed child could not clean: its scratch outputs and its shared memory."""
    cfg = sweep.config
    shutil.rmtree((cfg.scratch_dir or sweep.run_dir / "scratch") / unit.cell.id, ignore_errors=True)
    for block in Path("/dev/shm").glob(f"{SHM_PREFIX}{pid}-*"):
        block.unlink(missing_ok=True)


def run_unit(sweep: Sweep, unit: Unit, on_run: Callable[[dict], None]) -> list[dict]:
    """Warm-up and recorded runs in a fresh child process; one row per recorded repeat.

    On SIGINT/SIGTERM the child's process group is killed, the repeats that finished are
    stored, and Interrupted propagates.
    """
    cells_dir = sweep.run_dir / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    results, log = cells_dir / f"{unit.tag}.jsonl", cells_dir / f"{unit.tag}.log"
    results.unlink(missing_ok=True)
    spec_path = cells_dir / f"{unit.tag}.spec.json"
    spec_path.write_text(json.dumps(cell_spec(sweep, unit, results), indent=1))
    timeout = sweep.timeout(unit.cell, len(unit.repeats))
    deadline = time.monotonic() + timeout
    lines: list[dict] = []
    offset, timed_out = 0, False
    with open(log, "w") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "harness.cell", str(spec_path)], stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
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
            store.replace_runs(sweep.run_dir, [_row(sweep, unit.cell, line["repeat"], line) for line in lines if line["kind"] == "recorded"])
            raise
        _kill_group(proc)
        lines += _read_new(results, offset)[0]
    if proc.returncode != 0:
        _clean_after(sweep, unit, proc.pid)
    if log.stat().st_size == 0:
        log.unlink()
    recorded = {line["repeat"]: line for line in lines if line["kind"] == "recorded"}
    missing = _missing_reason(proc, timed_out, timeout, log)
    return [_row(sweep, unit.cell, r, recorded.get(r) or missing) for r in unit.repeats]


def _missing_reason(proc: subprocess.Popen, timed_out: bool, timeout: float, log: Path) -> dict:
    if timed_out:
        return {"status": "timeout", "error": f"cell exceeded its {timeout:g} s timeout (set cell_timeout_s to change it)"}
    tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.is_file() else []
    return {"status": "failed", "error": f"child exited with status {proc.returncode}: {' '.join(tail)[:400]}"}


def _row(sweep: Sweep, cell: Cell, repeat: int, run: dict) -> dict:
    base = {k: v for k, v in asdict(cell).items() if k != "skip"}
    return {
        "cell_id": cell.id, **base, "n_images": sweep.n_images,
        "augmentations_per_image": sweep.config.augmentations_per_image, "repeat": repeat,
        "wall_s": float("nan"), "error": "", "start_method": sweep.config.start_method,
        **{k: v for k, v in run.items() if k != "kind"},
    }


def recover_orphans(sweep: Sweep) -> int:
    """Recorded runs that a killed parent never stored (they are in cells/*.jsonl): store them."""
    done = store.done_pairs(sweep.run_dir)
    cells_dir = sweep.run_dir / "cells"
    rows = []
    for spec_path in sorted(cells_dir.glob("*.spec.json")) if cells_dir.is_dir() else []:
        spec = json.loads(spec_path.read_text())
        cell = Cell(**spec["cell"])
        lines, _ = _read_new(Path(spec["results"]), 0)
        for line in lines:
            if line["kind"] == "recorded" and line["status"] == "ok" and (cell.id, line["repeat"]) not in done:
                rows.append(_row(sweep, cell, line["repeat"], line))
                done.add((cell.id, line["repeat"]))
    store.replace_runs(sweep.run_dir, rows)
    return len(rows)


class Progress:
    """A tqdm bar weighted by each run's estimated seconds, so its ETA follows the plan."""

    def __init__(self, sweep: Sweep, units: list[Unit]) -> None:
        self.sweep, self.units = sweep, units
        self.total = sum(sweep.unit_estimate(u) for u in units)
        self.bar = tqdm(total=self.total, unit="s", bar_format="{percentage:3.0f}%|{bar:20}| {desc} [{elapsed}<{remaining}]", mininterval=0.5, file=sys.stderr)
        self.n, self.runs = 0, 0

    def start_unit(self, n: int) -> None:
        self.n, self.runs = n, 0
        self._describe()

    def run_done(self, line: dict) -> None:
        self.runs += 1
        self.bar.n = min(self.total, self.bar.n + self.sweep.run_estimate(self.units[self.n - 1].cell))
        self._describe()

    def unit_done(self) -> None:
        self.bar.n = min(self.total, sum(self.sweep.unit_estimate(u) for u in self.units[: self.n]))
        self.bar.refresh()

    def _describe(self) -> None:
        unit = self.units[self.n - 1]
        runs = self.sweep.config.warmup + len(unit.repeats)
        self.bar.set_description_str(f"{self.n}/{len(self.units)} {unit.cell.id} run {self.runs}/{runs}")

    def close(self) -> None:
        self.bar.close()


def run_sweep(sweep: Sweep, units: list[Unit]) -> int:
    """Run every unit, storing its rows as it ends; returns how many runs did not finish ok.
    Raises Interrupted (after storing what finished) on SIGINT/SIGTERM."""
    progress = Progress(sweep, units)
    bad = 0
    try:
        for n, unit in enumerate(units, 1):
            progress.start_unit(n)
            rows = run_unit(sweep, unit, progress.run_done)
            progress.unit_done()
            store.replace_runs(sweep.run_dir, rows)
            bad += sum(r["status"] != "ok" for r in rows)
            for r in rows:
                if r["status"] != "ok":
                    tqdm.write(f"  {unit.cell.id} repeat {r['repeat']}: {r['status']}: {r['error']}", file=sys.stderr)
    finally:
        progress.close()
        shutil.rmtree(sweep.run_dir / "scratch", ignore_errors=True)
    return bad

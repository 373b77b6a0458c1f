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

    def cell_estimate(self, cell: Cell) -> float:
        return self.run_estimate(cell) * (self.config.warmup + self.config.repeats)

    def timeout(self, cell: Cell) -> float:
        if self.config.cell_timeout_s:
            return self.config.cell_timeout_s
        return max(MIN_TIMEOUT_S, TIMEOUT_FACTOR * self.cell_estimate(cell))


def cell_spec(sweep: Sweep, cell: Cell, results: Path, repeats: list[int]) -> dict:
    cfg = sweep.config
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
        "repeats": repeats, "start_method": cfg.start_method, "cv2_threads": cfg.cv2_threads,
        "results": str(results),
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
    """The child leads its own process group: this ends it and every pool worker it started."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run_cell(sweep: Sweep, cell: Cell, repeats: list[int], on_run: Callable[[dict], None]) -> list[dict]:
    """Warm-up and recorded runs of one cell in a child process; one row per recorded repeat."""
    cells_dir = sweep.run_dir / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    results, log = cells_dir / f"{cell.id}.jsonl", cells_dir / f"{cell.id}.log"
    results.unlink(missing_ok=True)
    spec_path = cells_dir / f"{cell.id}.spec.json"
    spec_path.write_text(json.dumps(cell_spec(sweep, cell, results, repeats), indent=1))
    deadline = time.monotonic() + sweep.timeout(cell)
    lines: list[dict] = []
    offset = 0
    with open(log, "w") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "harness.cell", str(spec_path)], stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        timed_out = False
        while proc.poll() is None:
            if time.monotonic() > deadline:
                _kill_group(proc)
                timed_out = True
                break
            new, offset = _read_new(results, offset)
            for line in new:
                on_run(line)
            lines += new
            time.sleep(POLL_S)
        new, offset = _read_new(results, offset)
        for line in new:
            on_run(line)
        lines += new
    _reap_group(proc)
    if log.stat().st_size == 0:
        log.unlink()
    recorded = {line["repeat"]: line for line in lines if line["kind"] == "recorded"}
    missing = _missing_reason(proc, timed_out, sweep.timeout(cell), log)
    return [_row(sweep, cell, r, recorded.get(r) or missing) for r in repeats]


def _reap_group(proc: subprocess.Popen) -> None:
    """Pool workers orphaned by a crashed child are still in its group: end them too."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _missing_reason(proc: subprocess.Popen, timed_out: bool, timeout: float, log: Path) -> dict:
    if timed_out:
        return {"status": "timeout", "error": f"cell exceeded its {timeout:.0f} s timeout (set cell_timeout_s to change it)"}
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


class Progress:
    """A tqdm bar weighted by each run's estimated seconds, so its ETA follows the plan."""

    def __init__(self, sweep: Sweep, cells: list[Cell]) -> None:
        self.sweep, self.cells = sweep, cells
        self.total = sum(sweep.cell_estimate(c) for c in cells)
        self.bar = tqdm(total=self.total, unit="s", bar_format="{percentage:3.0f}%|{bar:20}| {desc} [{elapsed}<{remaining}]", mininterval=0.5, file=sys.stderr)
        self.n, self.runs = 0, 0

    def start_cell(self, n: int) -> None:
        self.n, self.runs = n, 0
        self._describe()

    def run_done(self, line: dict) -> None:
        self.runs += 1
        self.bar.n = min(self.total, self.bar.n + self.sweep.run_estimate(self.cells[self.n - 1]))
        self._describe()

    def cell_done(self) -> None:
        self.bar.n = min(self.total, sum(self.sweep.cell_estimate(c) for c in self.cells[: self.n]))
        self.bar.refresh()

    def _describe(self) -> None:
        cfg = self.sweep.config
        cell = self.cells[self.n - 1]
        self.bar.set_description_str(f"cell {self.n}/{len(self.cells)} {cell.id} run {self.runs}/{cfg.warmup + cfg.repeats}")

    def close(self) -> None:
        self.bar.close()


def run_sweep(sweep: Sweep, cells: list[Cell]) -> int:
    """Run every cell; returns the number of recorded runs that did not finish ok."""
    progress = Progress(sweep, cells)
    bad = 0
    try:
        for n, cell in enumerate(cells, 1):
            progress.start_cell(n)
            rows = run_cell(sweep, cell, list(range(sweep.config.repeats)), progress.run_done)
            progress.cell_done()
            store.append_runs(sweep.run_dir, rows)
            bad += sum(r["status"] != "ok" for r in rows)
            for r in rows:
                if r["status"] != "ok":
                    tqdm.write(f"  {cell.id} repeat {r['repeat']}: {r['status']}: {r['error']}", file=sys.stderr)
    finally:
        progress.close()
        shutil.rmtree(sweep.run_dir / "scratch", ignore_errors=True)
    return bad

"""Runs one cell inside a fresh child process: `python -m harness.cell SPEC.json`.

Writes one JSON line per run (warm-up and recorded) to the spec's `results` file as soon as the
run ends, so the parent sees progress and keeps every finished run if this process dies.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import resource
import shutil
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from multiprocessing.context import BaseContext
from pathlib import Path
from types import ModuleType

from experiments import strategies
from experiments.workload import Job, expected_outputs, init_process, list_images
from harness.watchdog import Watchdog


def clear(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)


def run_once(spec: dict, job: Job, module: ModuleType, ctx: BaseContext, session: object = None) -> dict:
    """One timed call of the strategy, then the output check and clean-up (both untimed)."""
    extra = {"session": session} if session is not None else {}
    started = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        clear(job.out_dir)
    except OSError as err:
        return {"status": "failed", "error": f"cannot prepare the output folder {job.out_dir}: {_one_line(err)}", "started_at": started}
    try:
        with Watchdog() as watch:
            cpu0 = _cpu_seconds()
            t0 = time.perf_counter()
            phases = module.run(job, spec["workers"], ctx, **extra)
            wall = time.perf_counter() - t0
            main_cpu, all_cpu = (after - before for after, before in zip(_cpu_seconds(), cpu0, strict=True))
    except Exception as err:  # a failing strategy is a measurement outcome, not a crash
        shutil.rmtree(job.out_dir, ignore_errors=True)
        return {"status": "failed", "error": _one_line(err), "started_at": started}
    written = sum(1 for _ in job.out_dir.iterdir())
    expected = expected_outputs(job, spec["n_images"])
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
        "peak_rss_mb": watch.peak_rss_mb,
        "t_cpu_s": all_cpu,
        "t_dispatch_s": float("nan") if strategies.in_process(spec["strategy"]) else main_cpu,
        **{f"t_{k}_s": v for k, v in phases.extra.items()},
    }
    if written != expected:
        row.update(status="failed", error=f"wrote {written} files, expected {expected}")
    return row


def _cpu_seconds() -> tuple[float, float]:
    """(CPU seconds of this process, of it plus its ended children), user + system.
    Pool workers, savers and a Manager are ended and reaped inside the timed call, so the
    difference over a run is the run's CPU time; a Dask cluster's workers outlive it and
    are not counted."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = me.ru_utime + me.ru_stime
    return own, own + kids.ru_utime + kids.ru_stime


def _one_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}".replace("\n", " ")[:500]


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    init_process(spec["cv2_threads"])
    job = Job(**{**spec["job"], "input_dir": Path(spec["job"]["input_dir"]), "out_dir": Path(spec["job"]["out_dir"])})
    spec["n_images"] = len(list_images(job.input_dir))
    runs = [("warmup", n) for n in range(spec["warmup"])] + [("recorded", r) for r in spec["repeats"]]
    module = strategies.get(spec["strategy"])
    ctx = multiprocessing.get_context(spec["start_method"])
    t0 = time.perf_counter()
    with getattr(module, "session", _no_session)(job, spec["workers"], ctx) as session:
        session_s = time.perf_counter() - t0
        with open(spec["results"], "a") as out:
            for kind, n in runs:
                row = {"kind": kind, "repeat": n, **run_once(spec, job, module, ctx, session)}
                if session is not None:
                    row["t_session_startup_s"] = session_s
                out.write(json.dumps(row) + "\n")
                out.flush()
                os.fsync(out.fileno())
    shutil.rmtree(job.out_dir, ignore_errors=True)
    return 0


@contextlib.contextmanager
def _no_session(job: Job, workers: int, ctx: object) -> Iterator[None]:
    yield None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

"""Seed sensitivity: how much the sequential baseline's absolute time depends on the seed's
sample of transforms (`python -m harness seeds CONFIG [--n 5] [--rounds 2] [--run RUN_DIR]`).

Each seed draws another sample of the Compose's random transforms, and a task's cost varies
~50x with what is drawn, so the baseline's time at one seed is one sample of the workload.
Every strategy does the same seeded work, so speedups do not depend on it; absolute times do.
Each (round, seed, saving mode) runs in a fresh child process through the runner (`run_unit`),
with the config's warm-up, and records one run; the rounds, one after another over all seeds,
measure the run-to-run noise the seeds' spread must stand out of. The result is kept as
`seeds.json` in the run folder (harness/rundir/seeds_file.py).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from pathlib import Path

from experiments.workload import init_process
from harness import machine
from harness.config import Config
from harness.errors import HarnessError
from harness.measure.interrupt import Interrupted, interruptible
from harness.measure.runner import run_unit
from harness.measure.sweep import Sweep
from harness.plan import inputs
from harness.plan.cells import Unit
from harness.plan.estimate import calibrate
from harness.rundir import store
from harness.rundir.meta import read_run_meta
from harness.rundir.seeds_file import FORMAT, SeedRun, Seeds
from harness.schema import BASELINE, Cell, utc_now
from harness.stats.precision import Target

# The keys of a run's config that make the workload the seeds time.
WORKLOAD_KEYS = ("images", "augmentations_per_image", "seed", "cv2_threads")
ONE = Target(1, 1)  # one recorded run per child, whatever the config's repeats


def measure(
    config: Config,
    config_path: str,
    n: int,
    rounds: int = 2,
    run_dir: Path | None = None,
    on_run: Callable[[SeedRun], None] = lambda run: None,
) -> Seeds:
    """Time the baseline at seeds config.seed ... config.seed + n - 1, every saving mode, in
    rounds over the seeds (so drift on a shared machine spreads over them). On SIGINT/SIGTERM
    the child is killed and the runs that finished are returned, marked."""
    init_process(config.cv2_threads)  # as `run` does: no OpenCV thread pool before a fork
    found = inputs.inspect(config, config_path)
    config = inputs.with_folder_size(config, found)
    if run_dir is not None:
        check_run(run_dir, config)
    seeds = list(range(config.seed, config.seed + n))
    started, runs, stopped = utc_now(), [], None
    with tempfile.TemporaryDirectory(prefix="augscale-seeds-") as tmp:
        # Only the base size: a weak sweep's larger images are not needed here.
        base_only = config.model_copy(update={"kind": "strong", "workers": [1], "points": None})
        found = inputs.prepare(base_only, found, Path(tmp))
        costs = calibrate(base_only, found.n_images)  # for the runner's timeout
        cores = machine.usable_cores()
        try:
            with interruptible():
                for round_ in range(rounds):
                    for seed in seeds:
                        seeded = config.model_copy(update={"seed": seed})
                        sweep = Sweep(
                            seeded, Path(tmp), found.dirs, found.n_images, costs, cores, ONE
                        )
                        for saving in config.saving:
                            runs.append(_one(sweep, seed, saving, round_))
                            on_run(runs[-1])
        except Interrupted as err:
            stopped = err.args[0]
    return Seeds(
        format_version=FORMAT,
        config_name=config.name,
        config_file=str(config_path),
        n_images=found.n_images,
        size=list(config.base_size),
        format=config.images.format,
        augmentations=config.augmentations_per_image,
        warmup_runs=config.warmup_runs,
        warmup_tasks=config.warmup_tasks,
        seeds=seeds,
        rounds=rounds,
        saving=list(config.saving),
        runs=runs,
        host=machine.host_info(),
        git_commit=machine.git_commit(),
        started_at=started,
        ended_at=utc_now(),
        interrupted=stopped,
    )


def _one(sweep: Sweep, seed: int, saving: bool, round_: int) -> SeedRun:
    cell = Cell(BASELINE, 1, saving, *sweep.config.base_size)
    row = run_unit(sweep, Unit(cell, (0,)), lambda line: None)[0]
    ok = row["status"] == "ok"
    columns = {"wall_s": "wall_s", "cpu_s": "t_cpu_s", "steal_s": "steal_s"}
    found = {k: _number(row.get(c)) if ok else None for k, c in columns.items()}
    return SeedRun(
        seed=seed, saving=saving, round=round_, status=row["status"], error=row["error"], **found
    )


def _number(value: object) -> float | None:
    return None if value is None or math.isnan(value) else float(value)  # type: ignore[arg-type]


def check_run(run_dir: Path, config: Config) -> None:
    """A run folder whose workload is the config's, so the seeds' times stand beside its own."""
    store.require_run_dir(run_dir)
    ran = read_run_meta(run_dir).config.model_dump(mode="json")  # newer keys at their defaults
    given = config.model_dump(mode="json")
    for key in WORKLOAD_KEYS:
        if ran.get(key) != given.get(key):
            raise HarnessError(
                str(run_dir),
                key,
                f"the run's workload differs from the config's ({ran.get(key)!r} there, "
                f"{given.get(key)!r} in the config)",
                "give the run's own config (its meta.json holds it as config_text), or leave "
                "out --run",
            )

"""`overhead`: the harness's own instrumentation, timed in interleaved on/off pairs
(harness/measure/overhead.py), under the machine-wide lock: on the study's workload, or with
`--config` on that config's images, pipeline and strategy options, in its `env:`."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

from experiments.workload import Job
from harness.commands.measuring import in_its_environment, measuring
from harness.config import Config, load_config
from harness.measure.overhead import measure
from harness.pipelines import pipeline_of
from harness.plan import inputs
from harness.plan.batches import resolved
from harness.plan.cells import Cell
from harness.plan.estimate import calibrate
from harness.schema import BASELINE

DEFAULT_STRATEGY = "P_1"


def main(args: argparse.Namespace) -> int:
    if args.config is None:
        with measuring("overhead", args):
            strategy = args.strategy or DEFAULT_STRATEGY
            print(measure(strategy, args.workers, pairs=args.pairs).line())
        return 0
    config = load_config(Path(args.config))
    in_its_environment(config)
    strategy = args.strategy or next(s for s in config.labels if s != BASELINE)
    with measuring("overhead", args), tempfile.TemporaryDirectory() as scratch:
        found = inputs.prepare(config, inputs.inspect(config, args.config), Path(scratch))
        job_for = _job_for(config, found, strategy, args.workers)
        line = measure(strategy, args.workers, args.pairs, job_for, config.cv2_threads).line()
        print(f"{config.name}: {line}")
    return 0


def _job_for(
    config: Config, found: inputs.Inputs, strategy: str, workers: int
) -> Callable[[Path], Job]:
    size = found.size if found.inventory is not None else config.base_size
    cell = Cell(strategy, workers, False, *size)
    costs = calibrate(config, found.n_images, crowd=False)
    n_tasks = found.n_images * config.augmentations_per_image
    options = resolved(config.options_for(strategy), cell, costs, n_tasks)

    def job_for(out_dir: Path) -> Job:
        return Job(
            found.dirs[size],
            out_dir,
            config.augmentations_per_image,
            config.seed,
            False,
            cv2_threads=config.cv2_threads,
            options=options,
            pipeline=pipeline_of(config.pipeline),
        )

    return job_for

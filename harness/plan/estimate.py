"""The duration estimate of the plan, from a calibration of the sweep's own tasks on this machine.

A task's cost is, to a good approximation (R^2 = 0.97 on the study's 1000 tasks), a fixed part
plus the cost of each transform its seeded Compose applies, and that cost varies ~50x with
what is drawn (ElasticTransform alone is most of it). So the calibration
1. replays every task's Compose on a tiny image, which draws the same transforms as the real
   size does, to count how often each transform is applied (sampled above MAX_TASKS tasks);
2. times each applied transform once per image size of the sweep, on a generated image;
3. predicts the sequential work as the sum, plus reading and saving each output;
4. scales that by measured / modelled seconds of a random sample of real tasks, each timed
   once (SCALE_SAMPLE tasks and SCALE_MIN_SECONDS, at most SCALE_SECONDS per size): the
   component timings, each the fastest of a few calls on a warm cache, run low against real
   sequential runs, and at small sizes a second of the machine's changing speed moves them.
A cell of W workers then takes that work over min(W, usable cores), its savers' share over the
savers, plus process start-up, stretched by what sharing the machine costs: the same few tasks
timed in 1, in `cores` and in 2 x `cores` processes at once (harness.plan.crowding), once per image
size. That covers memory bandwidth, caches and time-slicing as this machine has them; how a
cell's own strategy adds to them (queues, pickling) is left to its schedule.
A fixed probe (every transform of the Compose on one 1000x500 image) is the machine's speed
figure (`probe_s`) that a resume compares with the run's (harness.rundir.check_speed).
"""

from __future__ import annotations

import copy
import math
import multiprocessing
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from albumentations.core.composition import BaseCompose

from experiments import strategies
from experiments.pipeline import study_pipeline
from experiments.workload import Job, augment, save, task_seed
from harness import machine
from harness.config import Config
from harness.images import checkerboard
from harness.pipelines import pipeline_of
from harness.plan import crowding
from harness.plan.cells import Cell, plan_cells
from harness.plan.crowding import Crowding
from harness.plan.scheduling import Costs as TaskCosts
from harness.plan.scheduling import replay

MAX_TASKS = 2000  # tiny-image replays at most; more tasks are sampled evenly
TINY = (32, 16)
PROBE_SIZE = (1000, 500)
PROBE_TIMINGS = 5  # the probe must be steady: a resume refuses 10% apart
TIMINGS = 3  # a transform's time: the fastest of this many calls
FIXED_SAMPLE = 8  # real tasks timed whole for the fixed part
SCALE_SAMPLE = 24  # real tasks timed once each to scale the component model ...
SCALE_MIN_SECONDS = 2.0  # ... and more (up to every task once) until this many are timed ...
SCALE_SECONDS = 4.0  # ... but fewer once this many are spent on one size (at least 4 tasks)
STARTUP_S_PER_PROCESS = 0.05


@dataclass(frozen=True)
class Costs:
    """Seconds per task at each image size ("WxH"): augmenting, saving, reading its image."""

    augment_s: dict[str, float]  # mean over the sweep's tasks
    save_s: dict[str, float]
    read_s: dict[str, float]
    probe_s: float = 0.0  # the speed figure of the machine (speed_probe), the same for any config
    child_s: float = 0.0  # starting one cell's child process (interpreter and imports)
    # Each task's augment seconds in (i, k) order, per size; only when every task was replayed
    # (not sampled), for the scheduling model. Not stored in meta.json (summary()).
    task_s: dict[str, tuple[float, ...]] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)  # measured / modelled, per size
    # Per size, how much longer parallel cells take on this machine (harness.plan.crowding).
    crowding: dict[str, Crowding] = field(default_factory=dict)

    def summary(self) -> dict:
        """What meta.json keeps of the calibration: everything but the per-task list."""
        return {k: v for k, v in asdict(self).items() if k != "task_s"}


def size_key(width: int, height: int) -> str:
    return f"{width}x{height}"


def calibrate(config: Config, n_images: int, cores: int | None = None, crowd: bool = True) -> Costs:
    """Time the sweep's tasks on this machine (a few seconds at the study's size), alone and
    (with `crowd`) in as many processes as its parallel cells run (up to twice the usable
    cores)."""
    job = Job(
        Path("."), Path("."), config.augmentations_per_image, config.seed, False,
        pipeline=pipeline_of(config.pipeline),
    )
    applied = applied_transforms(job, n_images)
    leaves = leaf_transforms(job.pipeline.build())
    shares = Counter(name for names in applied.values() for name in names)
    cells = plan_cells(config)
    sizes = sorted({(c.width, c.height) for c in cells})
    cores = cores or machine.usable_cores()
    ctx = multiprocessing.get_context(config.start_method)
    keys = list(applied)
    shuffled = [keys[j] for j in np.random.default_rng(1).permutation(len(keys))]
    per_task, saves, reads, tasks, scales, crowds = {}, {}, {}, {}, {}, {}
    complete = len(applied) == n_images * job.augmentations
    for width, height in sizes:
        image = checkerboard(width, height)
        cost = {name: _fastest(_always(leaves[name]), image) for name in shares}
        transforms = sum(n * cost[name] for name, n in shares.items()) / len(applied)
        fixed = _fixed_part(job, image, applied, cost)
        modelled = {task: fixed + sum(cost[n] for n in names) for task, names in applied.items()}
        scale = _scale(job, image, modelled)
        key = size_key(width, height)
        scales[key] = round(scale, 3)
        per_task[key] = scale * (fixed + transforms)
        if complete:
            tasks[key] = tuple(scale * t for t in modelled.values())
        output = augment(image, job, *next(iter(applied)))
        saves[key], reads[key] = _save_and_read(output, image, config)
        most = max(c.workers for c in cells if (c.width, c.height) == (width, height))
        if crowd and most > 1:  # a size of sequential cells only has nothing to stretch
            crowds[key] = crowding.measure(job, image, shuffled, per_task[key], cores, most, ctx)
    return Costs(per_task, saves, reads, speed_probe(), _child_start(), tasks, scales, crowds)


def speed_probe() -> float:
    """The machine's speed figure: every transform of the study's Compose once on a fixed
    PROBE_SIZE image, the least CPU time of PROBE_TIMINGS calls each, summed (about 0.2 s
    here). CPU time, not wall time: another program sharing the cores does not count, a
    slower CPU does."""
    image = checkerboard(*PROBE_SIZE)
    leaves = leaf_transforms(study_pipeline().build())
    return round(
        sum(_fastest(_always(t), image, PROBE_TIMINGS, time.thread_time) for t in leaves.values()),
        4,
    )


def leaf_transforms(transform: object) -> dict[str, object]:
    """The pipeline's innermost transforms by class name (the first of a name counts)."""
    if not isinstance(transform, BaseCompose):  # ColorJitter, too, has a `transforms` list
        return {type(transform).__name__: transform}
    found: dict[str, object] = {}
    for t in transform.transforms:
        found = {**leaf_transforms(t), **found}
    return found


def _child_start() -> float:
    """Seconds to start a cell's child process: a fresh interpreter importing the harness."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import harness.measure.child"], check=False)
    return round(time.perf_counter() - t0, 3)


def applied_transforms(job: Job, n_images: int) -> dict[tuple[int, int], tuple[str, ...]]:
    """Per task (i, k), sampled evenly above MAX_TASKS: the transforms its Compose applies."""
    total = n_images * job.augmentations
    step = max(1, math.ceil(total / MAX_TASKS))
    sample = [divmod(j, job.augmentations) for j in range(0, total, step)]
    pipeline = job.pipeline.build()
    pipeline.save_applied_params = True
    tiny = checkerboard(*TINY)
    applied = {}
    for i, k in sample:
        pipeline.set_random_seed(task_seed(job, i, k))
        applied[i, k] = tuple(name for name, _ in pipeline(image=tiny)["applied_transforms"])
    return applied


def _fixed_part(
    job: Job, image: np.ndarray, applied: dict[tuple[int, int], tuple[str, ...]], cost: dict
) -> float:
    """A task's cost beyond its transforms (building the Compose, copies, checks): real tasks,
    the cheaper half of an even sample, timed whole, less their transforms' times."""
    predicted = {task: sum(cost[name] for name in names) for task, names in applied.items()}
    cheap = sorted(applied, key=predicted.__getitem__)[: max(1, len(applied) // 2)]
    picks = cheap[:: max(1, len(cheap) // FIXED_SAMPLE)][:FIXED_SAMPLE]
    rest = [
        _fastest(lambda img, t=task: augment(img, job, *t), image) - predicted[task]
        for task in picks
    ]
    return max(0.0, float(np.median(rest)))


def _scale(job: Job, image: np.ndarray, modelled: dict[tuple[int, int], float]) -> float:
    """Measured over modelled seconds of a random sample of real tasks, each timed once: a
    ratio estimate, precise because the model explains most of a task's cost. Small tasks are
    timed for SCALE_MIN_SECONDS in all, unless the sweep has fewer: a sample of under a second
    gives a factor that differs from one calibration to the next by far more than a sample of
    2 s does (docs/ESTIMATE.md)."""
    order = np.random.default_rng(0).permutation(len(modelled))
    tasks = list(modelled)
    augment(image, job, *tasks[0])  # untimed: first-call allocations
    measured = predicted = 0.0
    for n, j in enumerate(order):
        if n >= 4 and measured >= SCALE_SECONDS:
            break
        if n >= SCALE_SAMPLE and measured >= SCALE_MIN_SECONDS:
            break
        t0 = time.perf_counter()
        augment(image, job, *tasks[j])
        measured += time.perf_counter() - t0
        predicted += modelled[tasks[j]]
    return measured / predicted if predicted > 0 else 1.0


def _always(transform: object) -> Callable[[np.ndarray], object]:
    """The transform as the pipeline holds it, with its arguments, always applied."""
    transform = copy.deepcopy(transform)
    transform.p = 1.0  # type: ignore[attr-defined]
    return lambda image: transform(image=image)  # type: ignore[operator]


def _fastest(
    fn: Callable[[np.ndarray], object],
    image: np.ndarray,
    timings: int = TIMINGS,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    best = math.inf
    for _ in range(timings):
        t0 = clock()
        fn(image)
        best = min(best, clock() - t0)
    return best


def _save_and_read(output: np.ndarray, image: np.ndarray, config: Config) -> tuple[float, float]:
    """Saving one output as it will be saved, and reading one image in the inputs' format (an
    8-bit output stands in for an input: it is what the study's images become)."""
    fmt = config.images.save_as or config.images.format
    eight_bit = output.dtype == np.uint8
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"out.{fmt if eight_bit else 'npy'}"
        save_s = _fastest(lambda img: save(img, path), output)
        source = Path(tmp) / f"in.{config.images.format}"
        save(output if eight_bit else image, source)
        read_s = _fastest(lambda _img: cv2.imread(str(source)), image)
    return save_s, read_s


def cell_seconds(cell: Cell, n_images: int, augmentations: int, costs: Costs, cores: int) -> float:
    """Estimated seconds for one timed run of the cell: its tasks handed out under the strategy's
    schedule (harness.plan.scheduling) where every task's cost is known, never less than all its
    work spread over the usable cores; else the mean cost spread over the workers."""
    key = size_key(cell.width, cell.height)
    strategy = strategies.get(cell.strategy)
    schedule, n_tasks = strategy.schedule, n_images * augmentations
    save = costs.save_s[key] if cell.saving else 0.0
    reads = n_tasks if schedule is not None and schedule.reads == "task" else n_images
    total = n_tasks * (costs.augment_s[key] + save) + reads * costs.read_s[key]
    busy = min(cell.workers, cores)
    processes = cell.workers if cell.workers > 1 and not strategy.in_process else 0
    start = STARTUP_S_PER_PROCESS * processes
    per_task = costs.task_s.get(key)
    stretch = costs.crowding.get(key, Crowding()).factor(cell.workers, cores)
    if schedule is None or per_task is None or len(per_task) != n_tasks:
        return stretch * (_spread(cell, schedule, total, n_tasks * save, busy, cores) + start)
    work = np.asarray(per_task) + save
    model = TaskCosts(
        np.repeat(np.arange(n_images), augmentations),
        np.tile(np.arange(augmentations), n_images),
        work,
        np.full(n_tasks, save),
        dict.fromkeys(range(n_images), costs.read_s[key]),
        0.0,
    )
    scheduled = replay(schedule, model, cell.workers, STARTUP_S_PER_PROCESS, 0.0)
    return stretch * max(scheduled, total / busy + start)


def _spread(
    cell: Cell, schedule: object, total: float, saving: float, busy: int, cores: int
) -> float:
    """The mean-cost model: all work over the busy workers, a saver pipeline's two stages over
    their own processes."""
    seconds = total / busy
    savers = schedule.savers(cell.workers) if schedule and schedule.savers and saving else 0
    if savers:
        seconds = max(
            seconds,
            (total - saving) / min(cell.workers - savers, cores),
            saving / min(savers, cores),
        )
    return seconds

"""`run`: a config measured into a run folder, then its report. run() reads as the data flow;
each step below it is one function."""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import yaml

from experiments.workload import init_process, read_rgb
from harness import machine, pipelines
from harness.analysis import checks, gil
from harness.config import Config, load_config
from harness.images import checkerboard
from harness.measure.interrupt import Interrupted, interruptible
from harness.measure.lock import MachineLock
from harness.measure.profile import profile_pipeline
from harness.measure.runner import recover_orphans, run_sweep
from harness.measure.sweep import Sweep, stored_runs
from harness.plan import crowding, history, inputs, preflight
from harness.plan.cells import Cell, Unit, parse_duration, plan_cells, plan_units, runnable
from harness.plan.estimate import Costs, calibrate, speed_probe
from harness.plan.limits import Limit, limits_for
from harness.plan.race_rounds import first_stage, race_taking_part
from harness.plan.rounds import by_ratio, by_twin_ratio, groups, leaving_out, plan_rounds
from harness.plan.sweep_plan import Plan
from harness.report import write_report
from harness.rundir import folders, profile_file, sessions, store, units
from harness.rundir.profile_file import Profile
from harness.schema import BASELINE
from harness.stats.precision import Target, expected_runs
from harness.variants import twin_of


def run(args: argparse.Namespace, config: Config, lock: MachineLock | None) -> int:
    # Before any OpenCV work here: calibration then runs single-threaded like the workers, and
    # no OpenCV thread pool exists when pools fork (a forked child can deadlock on one).
    started = time.monotonic()  # a race's --budget counts from here, calibration included
    init_process(config.cv2_threads)
    config, found = _inputs(args, config)
    host, versions = machine.host_info(), machine.versions()
    meta, found = _check_resume(args, config, found, host, versions)
    cells = plan_cells(config)
    _try_pipeline(config, found, cells)  # before calibration, which runs the pipeline
    setup = _setup(config)  # before calibrating, so the load average is the machine's
    _preflight(args, config, cells, found.n_images)  # before calibrating absurd sizes
    cores = machine.usable_cores()
    costs = _calibrate(args, config, found.n_images, cores, meta)
    plan, noise, budget_s = _plan(args, config, cells, found.n_images, costs, cores, host)
    estimate = _print_plan(plan, noise, costs, host, setup)
    if config.order.raced:
        print(_race_line(config, cells, cores))
    profile = _profile(args, config, found, cores)  # after calibration, before the sweep
    if args.dry_run:
        return 0
    run_dir = _run_dir(args, config, lock)
    if profile is not None:
        profile_file.write(run_dir, profile)
    found = found if meta is not None else inputs.prepare(config, found, run_dir)
    sweep = Sweep(config, run_dir, found.dirs, found.n_images, costs, cores, plan.target)
    facts = {"host": host, "versions": versions, "setup": setup}
    meta = _start_meta(args, sweep, cells, meta, found, facts)
    planning_from = list(noise.folders) if noise else []
    session = sessions.new_session(estimate, costs.summary(), plan.target, budget_s, planning_from)
    meta = sessions.with_session(meta, session)
    store.write_meta(run_dir, meta)
    limits = limits_for(plan.target, None if config.order.raced else budget_s)
    todo = _units(sweep, cells, plan.target, budget_s, started, limits)
    print(f"Writing to {run_dir}" + (" (resuming)" if args.resume else ""))
    return _sweep_and_report(sweep, todo, estimate["expected_s"], limits, meta, args)


def _race_line(config: Config, cells: list[Cell], cores: int) -> str:
    rules = config.race_rules
    counts = [
        str(len(first_stage(members, cores, rules))) for _, members in groups(runnable(cells))
    ]
    later = " then the leaders at every W," if rules.stage == "cores" else ""
    return (
        f"A race, not this sweep: {' and '.join(counts)} contenders first (per saving mode),"
        f"{later} dropped from round {rules.first_test} on when slower by more than "
        f"{rules.margin / 2:.0%}, tied within {rules.margin:.0%} (the estimate above is the "
        "sweep's, for comparison)"
    )


def run_derived(
    args: argparse.Namespace, text: str, lock: MachineLock | None
) -> tuple[int, Config]:
    """run() on a config derived from the user's (`aa`, `race`): its YAML text written where
    run() can read it, so the run's meta.json keeps that text. (exit status, the config).
    Its `pipeline:` goes inline in its checked form: a path or module beside the user's config
    would not be found beside the derived one."""
    data = yaml.safe_load(text)
    if data.get("pipeline") is not None:
        data["pipeline"] = pipelines.stored_form(data["pipeline"], Path(args.config))
        text = yaml.safe_dump(data, sort_keys=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(args.config).name
        path.write_text(text)
        config = load_config(path)
        return run(argparse.Namespace(**{**vars(args), "config": str(path)}), config, lock), config


def run_dir_of(args: argparse.Namespace, config: Config) -> Path:
    """The folder a run of `config` with these flags wrote."""
    return Path(args.out or args.resume or folders.RESULTS_ROOT / config.name / "latest")


def _units(
    sweep: Sweep,
    cells: list[Cell],
    target: Target,
    budget_s: float | None,
    started: float,
    limits: Sequence[Limit],
) -> Iterator[Unit]:
    """The children to start, in the config's order; in rounds, without the cells a limit
    cut."""
    config, todo = sweep.config, runnable(cells)
    if not config.order.paired:
        return plan_units(todo, target, config.order, sweep.stored, sweep.cores)
    runs = functools.partial(store.load_runs, sweep.run_dir)
    taking_part = by_ratio(target, sweep.cores)
    if config.order.raced:
        out_of_time = _out_of_time(sweep, budget_s, started)
        taking_part = race_taking_part(config.race_rules, sweep.cores, out_of_time)
    elif any(twin_of(label) for label in config.labels):
        taking_part = by_twin_ratio(target, sweep.cores)
    taking_part = leaving_out(taking_part, lambda: set().union(*(lim.cut for lim in limits)))
    return plan_rounds(
        todo,
        target,
        runs,
        sweep.cores,
        config.seed,
        config.baseline_every,
        taking_part,
        config.slicing_last,
    )


REPORT_S = 20  # what a race leaves of its budget for writing its report


def _out_of_time(
    sweep: Sweep, budget_s: float | None, started: float
) -> Callable[[list[Cell]], bool]:
    """Whether a round of these cells (and the baseline visit that opens it, and one more that
    may have to close it) would end past --budget, counted from `started`, with the report
    still to write."""

    def out_of_time(alive: list[Cell]) -> bool:
        if budget_s is None or not alive:
            return False
        base = Cell(BASELINE, 1, alive[0].saving, *sweep.config.base_size)
        one = sum(sweep.unit_estimate(Unit(c, (0,))) for c in [*alive, base, base])
        return time.monotonic() - started + one + REPORT_S > budget_s

    return out_of_time


def _inputs(args: argparse.Namespace, config: Config) -> tuple[Config, inputs.Inputs]:
    """The input images found (not yet prepared), and the config with their size."""
    if args.out and not args.resume:
        folders.require_empty(Path(args.out))
    found = inputs.inspect(config, args.config)
    return inputs.with_folder_size(config, found), found


def _check_resume(
    args: argparse.Namespace,
    config: Config,
    found: inputs.Inputs,
    host: dict,
    versions: dict,
) -> tuple[dict | None, inputs.Inputs]:
    """For --resume: the run's meta, once the run folder and its inputs are checked to go on
    with this config on this machine; None for a new run."""
    if not args.resume:
        return None, found
    run_dir = Path(args.resume)
    meta = store.read_meta(run_dir)
    folders.check_resumable(meta, config, host, versions, run_dir)
    units.readable_for_resume(run_dir)
    found = inputs.prepare(config, found, run_dir)
    if note := folders.check_inputs(meta, found.digest, run_dir):
        print(f"Warning: {note}", file=sys.stderr)
    return meta, found


def _setup(config: Config) -> dict:
    setup = machine.setup_info(config.start_method)
    setup["worker_threads"] = machine.probe_worker_threads(config.start_method, config.cv2_threads)
    return setup


def _preflight(args: argparse.Namespace, config: Config, cells: list[Cell], n_images: int) -> None:
    """Refuse a sweep that memory or disk will not hold, unless --force."""
    if args.force:
        return
    scratch_root = config.scratch_dir or Path(args.resume or args.out or folders.RESULTS_ROOT)
    preflight.check(config, runnable(cells), n_images, scratch_root, args.config)


def _calibrate(
    args: argparse.Namespace, config: Config, n_images: int, cores: int, meta: dict | None
) -> Costs:
    """The costs the estimate needs, timed here; a resume keeps its run's speed probe once it
    is checked that this machine runs at the same speed."""
    # A race only compares its cost with a sweep's: the crowding's half minute is not worth it.
    costs = calibrate(config, n_images, cores, crowd=not config.order.raced)
    if meta is None:
        return costs
    probe_s = folders.check_speed(meta, costs.probe_s, Path(args.resume), speed_probe)
    return replace(costs, probe_s=probe_s)


def _plan(
    args: argparse.Namespace,
    config: Config,
    cells: list[Cell],
    n_images: int,
    costs: Costs,
    cores: int,
    host: dict,
) -> tuple[Plan, history.Noise | None, float | None]:
    """The plan of what is left (a resume's stored runs count), fitted to --budget, expecting
    the earlier runs' noise; that noise and the budget in seconds."""
    stored = stored_runs(Path(args.resume)) if args.resume else {}
    plan = Plan.calibrated(config, cells, n_images, costs, cores, stored)
    budget_s = parse_duration(args.budget) if args.budget else None
    if budget_s is not None and not config.order.raced:  # a race ends its rounds in time
        plan = plan.fit(budget_s)
    plan, noise = _with_noise(args, plan, host)
    return plan, noise, budget_s


def _with_noise(
    args: argparse.Namespace, plan: Plan, host: dict
) -> tuple[Plan, history.Noise | None]:
    """The plan expecting the run-to-run noise of this config's earlier runs here, from the
    folder the run goes to (for a resume, its own runs so far count too)."""
    config = plan.config
    if args.resume:
        root = Path(args.resume).parent
    else:
        root = Path(args.out).parent if args.out else folders.RESULTS_ROOT / config.name
    noise = history.earlier_noise(root, config.name, host, plan.cores)
    if noise is None or plan.target.fixed:
        return plan, noise
    return replace(plan, target=replace(plan.target, planning_cv=noise.cv)), noise


def _try_pipeline(config: Config, found: inputs.Inputs, cells: list[Cell]) -> None:
    """The pipeline once on the first input image: the user's first file, or a generated one."""
    if found.inventory is not None and found.inventory.files:
        path = found.inventory.files[0]
        image, where = read_rgb(path), str(path)
    else:
        size = (cells[0].width, cells[0].height)
        image, where = checkerboard(*size), f"a generated {size[0]}x{size[1]} image"
    pipelines.try_once(config.pipeline, image, where, config)


PROFILE_IMAGES = 8  # the first input files the profile reads


def _profile(
    args: argparse.Namespace, config: Config, found: inputs.Inputs, cores: int
) -> Profile | None:
    """The pipeline profiled transform by transform on the first inputs (docs/PROFILE.md), in
    one line; None when the config turns it off, no cell runs two workers, or the resumed
    folder has one already."""
    workers = min(max(w for w, _ in config.sweep), cores)
    if not config.profile or workers < 2:
        return None
    if args.resume and profile_file.read(Path(args.resume)) is not None:
        return None
    files = found.inventory.files if found.inventory is not None else []
    images = files[:PROFILE_IMAGES] or [checkerboard(*config.base_size)]
    try:
        found_profile = profile_pipeline(
            pipelines.pipeline_of(config.pipeline),
            images,
            config.augmentations_per_image,
            config.seed,
            workers,
            n_images=found.n_images,
            start_method=config.start_method,
            cv2_threads=config.cv2_threads,
        )
    except RuntimeError as err:  # the sweep goes on; its report has no profile
        print(f"Warning: no profile of the pipeline: {err}", file=sys.stderr)
        return None
    print(gil.summary_line(found_profile))
    return found_profile


def _print_plan(
    plan: Plan, noise: history.Noise | None, costs: Costs, host: dict, setup: dict
) -> dict:
    """The plan, the runs per cell, crowding and the machine's warnings, printed; the
    estimate returned."""
    estimate = plan.print()
    print(f"Pipeline: {pipelines.describe(plan.config.pipeline)}")
    if not plan.target.fixed:
        print(_runs_line(noise, plan))
    if line := crowding.describe(costs.crowding, plan.cores):
        print(line)
    planned = {"config": plan.config.model_dump(mode="json"), "host": host, "setup": setup}
    for warning in checks.pre_run_warnings(planned):
        print(f"Warning: {warning}", file=sys.stderr)
    return estimate


def _runs_line(noise: history.Noise | None, plan: Plan) -> str:
    target, cores, level = plan.target, plan.cores, plan.level()
    runs = f"Runs per cell at W <= {cores}: ~{expected_runs(target, False):g} planned"
    if level < expected_runs(target, False):
        runs += f", ~{max(target.min, level):.1f} within the sweep's spend"
    if noise is None:
        return (
            f"{runs}, the fewest with a 95% interval: no earlier run of this config on this "
            f"machine says how much runs vary, and noisy cells take up to {target.max}"
        )
    return f"{runs}, the stop rule's mean at the run-to-run {noise.describe()}"


def _run_dir(args: argparse.Namespace, config: Config, lock: MachineLock | None) -> Path:
    run_dir = Path(args.resume) if args.resume else folders.new_run_dir(config, args.out)
    if lock is not None:
        lock.set_run_dir(run_dir)
    return run_dir


def _start_meta(
    args: argparse.Namespace,
    sweep: Sweep,
    cells: list[Cell],
    meta: dict | None,
    found: inputs.Inputs,
    facts: dict,
) -> dict:
    """A new run's meta, or a resumed one's after storing the runs its killed parent had not."""
    if meta is None:
        found_meta = {**found.meta(), "pipeline": pipelines.summary(sweep.config.pipeline)}
        return sessions.new_meta(args.config, sweep.config, cells, found_meta, facts)
    if recovered := recover_orphans(sweep):
        print(f"Recovered {recovered} finished run(s) that the interrupted sweep had not stored.")
    return sessions.resumed_meta(meta, sweep.config)


def _sweep_and_report(
    sweep: Sweep,
    todo: Iterable[Unit],
    estimate_s: float,
    limits: list[Limit],
    meta: dict,
    args: argparse.Namespace,
) -> int:
    """Run, then always store meta and render the report, even when interrupted."""
    interrupted: Interrupted | None = None
    bad = 0
    started = time.monotonic()
    try:
        with interruptible():
            bad = run_sweep(sweep, todo, estimate_s, limits)
    except Interrupted as err:
        interrupted = err
    run_dir = sweep.run_dir
    cut = {limit.name: limit.cut for limit in limits}
    stopped = interrupted.args[0] if interrupted else None
    duration_s = time.monotonic() - started
    store.write_meta(run_dir, sessions.ended_session(meta, duration_s, cut, stopped))
    if not store.load_runs(run_dir).empty:
        write_report(run_dir)
    folders.point_latest(run_dir)
    print(f"Report: {run_dir / 'report.md'}")
    if interrupted:
        print(
            f"Interrupted by {interrupted.args[0]}; every finished run is kept. Resume with:\n"
            f"  python -m harness run {args.config} --resume {run_dir}\n"
            f"  (or: make ... CONFIG={args.config} RESUME={run_dir})",
            file=sys.stderr,
        )
        return 128 + interrupted.signum
    if bad:
        print(
            f"{bad} run(s) did not finish ok; see the report's notes. "
            f"Re-run them with --resume {run_dir}.",
            file=sys.stderr,
        )
    return 1 if bad else 0

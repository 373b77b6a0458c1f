"""python -m harness run|report|verify|compare|overhead|seeds ...: one function per subcommand."""

from __future__ import annotations

import argparse
import contextlib
import math
import signal
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from experiments.contract import ContractError
from experiments.workload import init_process
from harness import machine
from harness.analysis import checks
from harness.analysis.compare import compare_runs, format_compare
from harness.analysis.results import load_results
from harness.config import Config, load_config
from harness.errors import HarnessError
from harness.measure import seeds
from harness.measure.lock import OVERRIDE_FLAG, MachineLock
from harness.measure.overhead import measure
from harness.measure.runner import (
    Budget,
    Interrupted,
    Limit,
    Spend,
    Sweep,
    raise_interrupted,
    readable_for_resume,
    recover_orphans,
    run_sweep,
)
from harness.measure.verify import verify
from harness.plan import crowding, history, inputs, preflight
from harness.plan.cells import (
    Cell,
    Unit,
    fit_budget,
    parse_duration,
    plan_cells,
    plan_units,
    print_plan,
    runnable,
    spend_level,
)
from harness.plan.estimate import calibrate, speed_probe
from harness.precision import Target, expected_runs
from harness.report import write_report
from harness.report.trace import write_trace
from harness.rundir import folders, store


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_meta(
    config_path: str, config: Config, cells: list[Cell], input_facts: dict, machine_facts: dict
) -> dict:
    """meta.json of a new run: the config as given and validated, the machine, what is skipped."""
    skipped = [
        {"strategy": c.strategy, "workers": c.workers, "saving": c.saving, "reason": c.skip}
        for c in cells
        if c.skip
    ]
    return {
        "config": config.model_dump(mode="json"),
        "config_file": str(config_path),
        "config_text": Path(config_path).read_text(),
        **machine_facts,
        "git_commit": machine.git_commit(),
        **input_facts,
        "skipped": skipped,
        "started_at": _now(),
    }


@contextlib.contextmanager
def measuring(command: str, args: argparse.Namespace) -> Iterator[MachineLock]:
    """The machine-wide lock of a command that measures; a warning if it is overridden."""
    with MachineLock(command, getattr(args, "config", None), args.ignore_lock) as lock:
        if lock.warning:
            print(f"Warning: {lock.warning}", file=sys.stderr)
        yield lock


def cmd_run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.dry_run:  # measures nothing: no lock
        return _run(args, config, None)
    with measuring("run", args) as lock:
        return _run(args, config, lock)


def _run(args: argparse.Namespace, config: Config, lock: MachineLock | None) -> int:
    # Before any OpenCV work here: calibration then runs single-threaded like the workers, and
    # no OpenCV thread pool exists when pools fork (a forked child can deadlock on one).
    init_process(config.cv2_threads)
    if args.out and not args.resume:
        folders.require_empty(Path(args.out))
    found = inputs.inspect(config, args.config)
    config = inputs.with_folder_size(config, found)
    host, versions = machine.host_info(), machine.versions()
    meta = store.read_meta(Path(args.resume)) if args.resume else None
    if meta is not None:
        folders.check_resumable(meta, config, host, versions, Path(args.resume))
        readable_for_resume(Path(args.resume))
        found = inputs.prepare(config, found, Path(args.resume))
        if note := folders.check_inputs(meta, found.digest, Path(args.resume)):
            print(f"Warning: {note}", file=sys.stderr)
    cells = plan_cells(config)
    setup = machine.setup_info(
        config.start_method
    )  # before calibrating, so the load average is the machine's
    setup["worker_threads"] = machine.probe_worker_threads(config.start_method, config.cv2_threads)
    scratch_root = config.scratch_dir or Path(args.resume or args.out or folders.RESULTS_ROOT)
    if not args.force:  # before calibrating, which would time absurd sizes
        preflight.check(config, runnable(cells), found.n_images, scratch_root, args.config)
    cores = machine.usable_cores()
    costs = calibrate(config, found.n_images, cores)
    if meta is not None:
        probe_s = folders.check_speed(meta, costs.probe_s, Path(args.resume), speed_probe)
        costs = replace(costs, probe_s=probe_s)
    plan = Sweep(config, Path(args.resume or "."), {}, found.n_images, costs, cores)
    stored = plan.stored() if meta is not None else {}
    target = config.target
    budget_s = parse_duration(args.budget) if args.budget else None
    if budget_s is not None:
        target = fit_budget(
            config, cells, plan.run_estimate, stored, cores, budget_s, costs.child_s
        )
    noise = _earlier_noise(args, config, host, cores)
    if noise is not None and not target.fixed:
        target = replace(target, planning_cv=noise.cv)
    estimate = print_plan(config, cells, plan.run_estimate, stored, cores, target, costs.child_s)
    if not target.fixed:
        level = spend_level(config, cells, plan.run_estimate, cores, target)
        print(_runs_line(noise, target, cores, level))
    if line := crowding.describe(costs.crowding, cores):
        print(line)
    planned = {"config": config.model_dump(mode="json"), "host": host, "setup": setup}
    for warning in checks.pre_run_warnings(planned):
        print(f"Warning: {warning}", file=sys.stderr)
    if args.dry_run:
        return 0
    run_dir = Path(args.resume) if args.resume else folders.new_run_dir(config, args.out)
    if lock is not None:
        lock.set_run_dir(run_dir)
    if meta is None:
        found = inputs.prepare(config, found, run_dir)
    sweep = Sweep(config, run_dir, found.dirs, found.n_images, costs, cores, target)
    if meta is None:
        facts = {"host": host, "versions": versions, "setup": setup}
        meta = new_meta(args.config, config, cells, found.meta(), facts)
    else:
        resumed = [*meta.get("resumed_at", []), _now()]
        meta = {**meta, "config": config.model_dump(mode="json"), "resumed_at": resumed}
        if recovered := recover_orphans(sweep):
            print(
                f"Recovered {recovered} finished run(s) that the interrupted sweep had not stored."
            )
    session = {
        "started_at": _now(),
        "estimate_s": round(estimate["expected_s"], 1),
        "estimate_max_s": round(estimate["max_s"], 1),
        "cells": estimate["cells"],
        "calibration": costs.summary(),
        "max_runs": target.max,
        "budget_s": budget_s,
        "planning_cv": target.planning_cv,
        "planning_from": [str(f) for f in noise.folders] if noise and target.planning_cv else [],
    }
    meta = {**meta, "sessions": [*meta.get("sessions", []), session]}
    store.write_meta(run_dir, meta)
    units = plan_units(runnable(cells), target, config.order, sweep.stored, cores)
    print(f"Writing to {run_dir}" + (" (resuming)" if args.resume else ""))
    limits = [Budget(budget_s)] if budget_s is not None else []
    limits += [Spend(target.spend)] if target.spend is not None and not target.fixed else []
    return _sweep_and_report(sweep, units, estimate["expected_s"], limits, meta, args)


def _earlier_noise(
    args: argparse.Namespace, config: Config, host: dict, cores: int
) -> history.Noise | None:
    """The run-to-run noise of this config's earlier runs here, from the folder the run goes to
    (for a resume, its own runs so far count too)."""
    if args.resume:
        root = Path(args.resume).parent
    else:
        root = Path(args.out).parent if args.out else folders.RESULTS_ROOT / config.name
    return history.earlier_noise(root, config.name, host, cores)


def _runs_line(
    noise: history.Noise | None, target: Target, cores: int, level: float = math.inf
) -> str:
    runs = f"Runs per cell at W <= {cores}: ~{expected_runs(target, False):g} planned"
    if level < expected_runs(target, False):
        runs += f", ~{max(target.min, level):.1f} within the sweep's spend"
    if noise is None:
        return (
            f"{runs}, the fewest with a 95% interval: no earlier run of this config on this "
            f"machine says how much runs vary, and noisy cells take up to {target.max}"
        )
    return f"{runs}, the stop rule's mean at the run-to-run {noise.describe()}"


def _sweep_and_report(
    sweep: Sweep,
    units: Iterable[Unit],
    estimate_s: float,
    limits: list[Limit],
    meta: dict,
    args: argparse.Namespace,
) -> int:
    """Run, then always store meta and render the report, even when interrupted."""
    previous = {s: signal.signal(s, raise_interrupted) for s in (signal.SIGINT, signal.SIGTERM)}
    interrupted: Interrupted | None = None
    bad = 0
    started = time.monotonic()
    try:
        bad = run_sweep(sweep, units, estimate_s, limits)
    except Interrupted as err:
        interrupted = err
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    run_dir = sweep.run_dir
    session = {
        **meta["sessions"][-1],
        "ended_at": _now(),
        "duration_s": round(time.monotonic() - started, 1),
        "budget_cut": [],
        "spend_cut": [],
        **{f"{limit.name}_cut": sorted(limit.cut) for limit in limits},
    }
    ended = {"ended_at": _now(), "interrupted": interrupted.args[0] if interrupted else None}
    store.write_meta(run_dir, {**meta, **ended, "sessions": [*meta["sessions"][:-1], session]})
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


def cmd_report(args: argparse.Namespace) -> int:
    for path in write_report(Path(args.run_dir)):
        print(path)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    print(format_compare(compare_runs(Path(args.run_a), Path(args.run_b))), end="")
    return 0


def cmd_overhead(args: argparse.Namespace) -> int:
    with measuring("overhead", args):
        print(measure(args.strategy, args.workers, pairs=args.pairs).line())
    return 0


def cmd_seeds(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.n < 2:
        raise HarnessError(
            "--n", None, f"{args.n} seed(s) have no spread", "give --n 2 or more (default 5)"
        )
    if args.rounds < 1:
        raise HarnessError("--rounds", None, "no round to run", "give --rounds 1 or more")
    run_dir = Path(args.run) if args.run else None
    with measuring("seeds", args) as lock:
        if run_dir is not None:
            lock.set_run_dir(run_dir)
        print(f"Timing the {config.name} baseline at {args.n} seeds from {config.seed}:")
        result = seeds.measure(
            config, args.config, args.n, args.rounds, run_dir, lambda r: print(r.line())
        )
    print(f"The {result.workload()}:")
    for spread in result.spreads:
        print(f"  {spread.line()}: {spread.verdict()}")
    print(seeds.COMPARE)
    if run_dir is not None and result.runs:
        stored = seeds.write(run_dir, result)
        write_report(run_dir)
        print(f"Stored in {stored}; report: {run_dir / 'report.md'}")
    elif run_dir is None:
        print("Not stored: give --run RUN_DIR to keep it in that run folder and its report.")
    if result.interrupted:
        print(f"Interrupted by {result.interrupted}; the seeds that finished are above.")
        return 128 + signal.Signals[result.interrupted].value
    return 1 if result.failed else 0


def cmd_trace(args: argparse.Namespace) -> int:
    results = load_results(Path(args.run_dir))
    out = Path(args.out) if args.out else results.run_dir / "trace.json"
    print(write_trace(results, out, args.cell))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    results = load_results(Path(args.run_dir))
    table = results.replay(args.workers)
    if table.empty:
        raise HarnessError(
            str(results.run_dir),
            None,
            "nothing to replay: it needs a strong "
            "sweep with per-task traces of its sequential runs",
            "run a strong sweep with this harness, then predict from its folder",
        )
    print("Replay bound (upper bound: W ideal cores, no contention); measured where it ran:")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    found = inputs.inspect(config, args.config)
    config = inputs.with_folder_size(config, found)
    with (
        measuring("verify", args),
        tempfile.TemporaryDirectory(prefix="augscale-verify-") as tmp,
    ):
        ok = verify(config, inputs.prepare(config, found, Path(tmp)).dirs)
    print(
        "all strategies match sequential"
        if ok
        else "MISMATCH: some strategy differs from sequential"
    )
    return 0 if ok else 1


def _lock_flag(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        OVERRIDE_FLAG,
        dest="ignore_lock",
        action="store_true",
        help="measure even while another measurement holds the machine-wide lock",
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m harness", description="Scaling harness for parallel image augmentation"
    )
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a sweep from a YAML config, then write its report")
    run.add_argument("config")
    run.add_argument("--out", help="run folder (default results/<name>/<timestamp>)")
    run.add_argument("--dry-run", action="store_true", help="print the plan and estimate only")
    run.add_argument(
        "--resume", metavar="RUN_DIR", help="run only the (cell, repeat) pairs missing from RUN_DIR"
    )
    run.add_argument(
        "--force",
        action="store_true",
        help="run even when the preflight says memory or disk will not suffice",
    )
    run.add_argument(
        "--budget",
        metavar="DURATION",
        help="fit the sweep into this much time (45m, 2h, 1h30m): fewer runs beyond each "
        "cell's min, never fewer than min",
    )
    _lock_flag(run)
    run.set_defaults(func=cmd_run)
    rep = sub.add_parser("report", help="re-render a run folder's report from runs.parquet")
    rep.add_argument("run_dir")
    rep.set_defaults(func=cmd_report)
    ver = sub.add_parser(
        "verify", help="check every strategy produces the same images as sequential"
    )
    ver.add_argument("config")
    _lock_flag(ver)
    ver.set_defaults(func=cmd_verify)
    cmp = sub.add_parser(
        "compare", help="compare two run folders cell by cell (ratio, interval, Mann-Whitney U)"
    )
    cmp.add_argument("run_a")
    cmp.add_argument("run_b")
    cmp.set_defaults(func=cmd_compare)
    trc = sub.add_parser("trace", help="write a run's per-task traces as Chrome trace-event JSON")
    trc.add_argument("run_dir")
    trc.add_argument("--cell", help="one cell id (default: every cell's median run)")
    trc.add_argument("--out", help="output file (default RUN_DIR/trace.json)")
    trc.set_defaults(func=cmd_trace)
    prd = sub.add_parser("predict", help="replay the sequential run's task costs on W ideal cores")
    prd.add_argument("run_dir")
    prd.add_argument("--workers", type=int, nargs="+", help="worker counts (default: the run's)")
    prd.set_defaults(func=cmd_predict)
    ovh = sub.add_parser(
        "overhead", help="benchmark the harness's own instrumentation (interleaved on/off pairs)"
    )
    ovh.add_argument("--strategy", default="P_1")
    ovh.add_argument("--workers", type=int, default=2)
    ovh.add_argument("--pairs", type=int, default=30)
    _lock_flag(ovh)
    ovh.set_defaults(func=cmd_overhead)
    sds = sub.add_parser(
        "seeds", help="time the sequential baseline at n seeds: how much its time depends on them"
    )
    sds.add_argument("config")
    sds.add_argument("--n", type=int, default=5, help="seeds: the config's and the next n-1")
    sds.add_argument(
        "--rounds", type=int, default=2, help="runs per seed, in rounds over the seeds (noise)"
    )
    sds.add_argument("--run", metavar="RUN_DIR", help="store seeds.json there; its report shows it")
    _lock_flag(sds)
    sds.set_defaults(func=cmd_seeds)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except HarnessError as err:
        print(err.line(), file=sys.stderr)
        return err.exit_code
    except ContractError as err:
        print(
            f"error: {err}. Fix: make the strategy module keep the contract "
            "(experiments/contract.py), or leave it out",
            file=sys.stderr,
        )
        return HarnessError.exit_code

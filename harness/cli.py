"""python -m harness run|report|verify|compare|overhead ..."""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from harness.config import Config, load_config
from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.runner import Sweep


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def print_plan(config: Config, cells: list, sweep: Sweep, done: set) -> None:
    """The cells, each run's estimate, and the total over the children still to start."""
    from harness.plan import runnable
    from harness.runner import plan_units

    todo = runnable(cells)
    units = plan_units(todo, config.repeats, config.order, done)
    per = "each (cell, repeat) in a fresh process with its own warm-up" if config.order == "interleaved" else "each cell in a fresh process"
    print(f"Plan for {config.name} ({config.kind} scaling): {len(todo)} cells x {config.repeats} recorded runs after {config.warmup} warm-up, {per}")
    for cell in cells:
        if cell.skip:
            print(f"  skip {cell.id:<34} {cell.skip}")
        else:
            print(f"  run  {cell.id:<34} ~{sweep.run_estimate(cell):7.1f} s per run")
    total = sum(sweep.unit_estimate(u) for u in units)
    left = f" for the {len(units)} unit(s) left" if done else ""
    print(f"Estimated duration{left}: {_duration(total)} (rough: calibrated here on a few tasks, whose cost varies a lot; contention is not modelled)")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def probe_worker_threads(config: Config) -> dict:
    """cv2 and BLAS thread pools as a pool worker of this config sees them."""
    import multiprocessing

    from experiments.workload import init_process
    from harness import machine

    ctx = multiprocessing.get_context(config.start_method)
    with ctx.Pool(1, initializer=init_process, initargs=(config.cv2_threads,)) as pool:
        return pool.apply(machine.worker_threads_probe)


def new_meta(config_path: str, config: Config, cells: list, inputs: dict, machine_facts: dict) -> dict:
    """meta.json of a new run: the config as given and as validated, the machine, what is skipped."""
    from harness import machine

    return {
        "config": config.model_dump(mode="json"),
        "config_file": str(config_path),
        "config_text": Path(config_path).read_text(),
        **machine_facts,
        "git_commit": machine.git_commit(),
        **inputs,
        "skipped": [{"strategy": c.strategy, "workers": c.workers, "saving": c.saving, "reason": c.skip} for c in cells if c.skip],
        "started_at": _now(),
    }


def cmd_run(args: argparse.Namespace) -> int:
    from experiments.workload import init_process
    from harness import checks, machine, preflight, rundir, store
    from harness import inputs as inputs_mod
    from harness.estimate import calibrate
    from harness.plan import plan_cells, runnable
    from harness.runner import Sweep, plan_units, recover_orphans

    config = load_config(args.config)
    # Before any OpenCV work here: calibration then runs single-threaded like the workers, and
    # no OpenCV thread pool exists when pools fork (a forked child can deadlock on one).
    init_process(config.cv2_threads)
    if args.out and not args.resume:
        rundir.require_empty(Path(args.out))
    inputs = inputs_mod.inspect(config, args.config)
    config = inputs_mod.with_folder_size(config, inputs)
    host, versions = machine.host_info(), machine.versions()
    meta = store.read_meta(Path(args.resume)) if args.resume else None
    if meta is not None:
        rundir.check_resumable(meta, config, host, versions, Path(args.resume))
    cells = plan_cells(config)
    setup = machine.setup_info(config.start_method)  # before calibrating, so the load average is the machine's
    setup["worker_threads"] = probe_worker_threads(config)
    costs = calibrate(config.images.format, config.seed)
    done = store.done_pairs(Path(args.resume)) if args.resume else set()
    print_plan(config, cells, Sweep(config, Path("."), {}, inputs.n_images, costs, machine.physical_cores()), done)
    scratch_root = config.scratch_dir or Path(args.resume or args.out or rundir.RESULTS_ROOT)
    if not args.force:
        preflight.check(config, runnable(cells), inputs.n_images, scratch_root, args.config)
    for warning in checks.pre_run_warnings({"config": config.model_dump(mode="json"), "host": host, "setup": setup}):
        print(f"Warning: {warning}", file=sys.stderr)
    if args.dry_run:
        return 0
    run_dir = Path(args.resume) if args.resume else rundir.new_run_dir(config, args.out)
    inputs = inputs_mod.prepare(config, inputs, run_dir)
    sweep = Sweep(config, run_dir, inputs.dirs, inputs.n_images, costs, machine.physical_cores())
    if meta is None:
        meta = new_meta(args.config, config, cells, inputs.meta(), {"host": host, "versions": versions, "setup": setup})
    else:
        meta = {**meta, "config": config.model_dump(mode="json"), "resumed_at": [*meta.get("resumed_at", []), _now()]}
        if recovered := recover_orphans(sweep):
            print(f"Recovered {recovered} finished run(s) that the interrupted sweep had not stored.")
    store.write_meta(run_dir, meta)
    units = plan_units(runnable(cells), config.repeats, config.order, store.done_pairs(run_dir))
    print(f"Writing to {run_dir}" + (f" ({len(units)} unit(s) left to run)" if args.resume else ""))
    return _sweep_and_report(sweep, units, meta, args)


def _sweep_and_report(sweep: Sweep, units: list, meta: dict, args: argparse.Namespace) -> int:
    """Run, then always store meta and render the report, even when interrupted."""
    import signal

    from harness import rundir, store
    from harness.report import write_report
    from harness.runner import Interrupted, raise_interrupted, run_sweep

    previous = {s: signal.signal(s, raise_interrupted) for s in (signal.SIGINT, signal.SIGTERM)}
    interrupted: Interrupted | None = None
    bad = 0
    try:
        bad = run_sweep(sweep, units)
    except Interrupted as err:
        interrupted = err
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    run_dir = sweep.run_dir
    store.write_meta(
        run_dir,
        {**meta, "ended_at": _now(), "interrupted": interrupted.args[0] if interrupted else None},
    )
    if not store.load_runs(run_dir).empty:
        write_report(run_dir)
    rundir.point_latest(run_dir)
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
            f"{bad} run(s) did not finish ok; see the report's notes. Re-run them with --resume {run_dir}.",
            file=sys.stderr,
        )
    return 1 if bad else 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report import write_report

    for path in write_report(Path(args.run_dir)):
        print(path)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.compare import compare_runs, format_compare

    print(format_compare(compare_runs(Path(args.run_a), Path(args.run_b))), end="")
    return 0


def cmd_overhead(args: argparse.Namespace) -> int:
    from harness.overhead import measure

    print(measure(args.strategy, args.workers, pairs=args.pairs).line())
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from harness import inputs
    from harness.verify import verify

    config = load_config(args.config)
    found = inputs.inspect(config, args.config)
    config = inputs.with_folder_size(config, found)
    with tempfile.TemporaryDirectory(prefix="augscale-verify-") as tmp:
        ok = verify(config, inputs.prepare(config, found, Path(tmp)).dirs)
    print(
        "all strategies match sequential"
        if ok
        else "MISMATCH: some strategy differs from sequential"
    )
    return 0 if ok else 1


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
    run.set_defaults(func=cmd_run)
    rep = sub.add_parser("report", help="re-render a run folder's report from runs.parquet")
    rep.add_argument("run_dir")
    rep.set_defaults(func=cmd_report)
    ver = sub.add_parser(
        "verify", help="check every strategy produces the same images as sequential"
    )
    ver.add_argument("config")
    ver.set_defaults(func=cmd_verify)
    cmp = sub.add_parser("compare", help="compare two run folders cell by cell (ratio, interval, Mann-Whitney U)")
    cmp.add_argument("run_a")
    cmp.add_argument("run_b")
    cmp.set_defaults(func=cmd_compare)
    ovh = sub.add_parser("overhead", help="benchmark the harness's own instrumentation (interleaved on/off pairs)")
    ovh.add_argument("--strategy", default="P_1")
    ovh.add_argument("--workers", type=int, default=2)
    ovh.add_argument("--pairs", type=int, default=30)
    ovh.set_defaults(func=cmd_overhead)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except HarnessError as err:
        print(err.line(), file=sys.stderr)
        return err.exit_code

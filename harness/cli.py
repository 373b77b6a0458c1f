"""python -m harness (or augscale) run|aa|race|report|verify|compare|trace|predict|overhead|seeds|
dimension ...: the command line, one thin function per subcommand; `run` itself is
harness/commands/run.py, `aa` and `race` beside it in harness/commands/."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from experiments.contract import ContractError
from harness.analysis.compare import compare_runs, format_compare
from harness.analysis.results import load_results
from harness.commands import aa, race, run
from harness.config import load_config
from harness.errors import HarnessError
from harness.measure import dimension, seeds
from harness.measure.interrupt import Interrupted
from harness.measure.lock import OVERRIDE_FLAG, MachineLock
from harness.measure.overhead import measure
from harness.measure.verify import verify
from harness.plan import inputs
from harness.report import write_report
from harness.report.trace import write_trace
from harness.rundir import dimension_file, seeds_file


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
        return run.run(args, config, None)
    with measuring("run", args) as lock:
        return run.run(args, config, lock)


def cmd_aa(args: argparse.Namespace) -> int:
    if args.dry_run:
        return aa.aa(args, None)
    with measuring("aa", args) as lock:
        return aa.aa(args, lock)


def cmd_race(args: argparse.Namespace) -> int:
    if args.margin is not None and not 0 < args.margin < 1:
        raise HarnessError("--margin", None, f"{args.margin} is not a fraction", "give e.g. 0.02")
    if args.first_test is not None and args.first_test < 2:
        raise HarnessError("--first-test", None, "too early to test", "give 2 or more (5)")
    if args.dry_run:
        return race.race(args, None)
    with measuring("race", args) as lock:
        return race.race(args, lock)


def cmd_dimension(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    for flag, value in (("--processes", args.processes), ("--runs", args.runs)):
        if value < 2:
            raise HarnessError(flag, None, f"{value} cannot show a spread", "give 2 or more")
    run_dir = Path(args.run) if args.run else None
    with measuring("dimension", args) as lock:
        if run_dir is not None:
            lock.set_run_dir(run_dir)
        print(f"Where the variance of {config.name} lives:")
        try:
            found = dimension.measure(config, args.config, args.processes, args.runs, run_dir)
        except Interrupted as err:
            print(f"Interrupted by {err.args[0]}; nothing stored.", file=sys.stderr)
            return 128 + err.signum
    print("\n".join(found.lines()))
    if run_dir is not None:
        stored = dimension_file.write(run_dir, found)
        write_report(run_dir)
        print(f"Stored in {stored}; report: {run_dir / 'report.md'}")
    return 0


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
    print(seeds_file.COMPARE)
    if run_dir is not None and result.runs:
        stored = seeds_file.write(run_dir, result)
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


def _run_flags(run: argparse.ArgumentParser) -> None:
    """The flags of a command that runs a sweep (`run`, `aa`)."""
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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m harness", description="Scaling harness for parallel image augmentation"
    )
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a sweep from a YAML config, then write its report")
    _run_flags(run)
    _lock_flag(run)
    run.set_defaults(func=cmd_run)
    ab = sub.add_parser(
        "aa",
        help="A/A self-test: run a config's cells twice under two labels in the same paired "
        "rounds, and count the pairs that differ",
    )
    _run_flags(ab)
    _lock_flag(ab)
    ab.set_defaults(func=cmd_aa)
    rc = sub.add_parser(
        "race", help="race the config's strategies and worker counts: which is fastest, in minutes"
    )
    _run_flags(rc)
    rc.add_argument("--margin", type=float, help="survivors within this fraction tie (0.02)")
    rc.add_argument("--first-test", type=int, help="rounds before the first test (5)")
    _lock_flag(rc)
    rc.set_defaults(func=cmd_race)
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
    dim = sub.add_parser(
        "dimension",
        help="where the variance lives: within a process, between processes, over time; and "
        "whether the CPUs differ",
    )
    dim.add_argument("config")
    dim.add_argument("--processes", type=int, default=6, help="fresh processes per cell")
    dim.add_argument("--runs", type=int, default=4, help="recorded runs per process")
    dim.add_argument(
        "--run", metavar="RUN_DIR", help="store dimension.json there; its report shows it"
    )
    _lock_flag(dim)
    dim.set_defaults(func=cmd_dimension)
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

"""python -m harness (or augscale) run|aa|race|report|verify|compare|ab|trace|predict|overhead|
seeds|dimension ...: the command line. This module parses the arguments and dispatches; each
subcommand is a module of harness/commands/ (`run`, `aa` and `race` take the machine-wide lock
here, unless --dry-run; the other commands that measure take it themselves)."""

from __future__ import annotations

import argparse
import sys

from experiments.contract import ContractError
from harness.commands import (
    aa,
    ab,
    compare,
    dimension,
    overhead,
    predict,
    race,
    report,
    run,
    seeds,
    trace,
    verify,
)
from harness.commands.measuring import in_its_environment, measuring
from harness.config import load_config
from harness.errors import HarnessError
from harness.measure.lock import OVERRIDE_FLAG


def cmd_run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    in_its_environment(config)
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
    aap = sub.add_parser(
        "aa",
        help="A/A self-test: run a config's cells twice under two labels in the same paired "
        "rounds, and count the pairs that differ",
    )
    _run_flags(aap)
    _lock_flag(aap)
    aap.set_defaults(func=cmd_aa)
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
    rep.set_defaults(func=report.main)
    ver = sub.add_parser(
        "verify", help="check every strategy produces the same images as sequential"
    )
    ver.add_argument("config")
    _lock_flag(ver)
    ver.set_defaults(func=verify.main)
    cmp = sub.add_parser(
        "compare",
        help="two run folders cell by cell: each cell's speedup, judged with the level "
        "between sessions (docs/REPORT.md#comparing-runs)",
    )
    cmp.add_argument("run_a")
    cmp.add_argument("run_b")
    cmp.set_defaults(func=compare.main)
    abt = sub.add_parser(
        "ab",
        help="two revisions, checkouts or configs measured in the same session, each cell in "
        "interleaved pairs: B / A with its interval and a verdict (docs/STATISTICS.md#ab-runs)",
    )
    abt.add_argument("config", help="A's config (and B's, without --b-config)")
    abt.add_argument("--a", help="A's code: a git revision or a checkout's folder (default: here)")
    abt.add_argument("--b", help="B's code: a git revision or a checkout's folder (default: here)")
    abt.add_argument("--b-config", help="B's own config, with the same cells")
    abt.add_argument("--pairs", type=int, default=12, help="pairs per cell (12)")
    abt.add_argument("--only", nargs="+", metavar="STRATEGY", help="only these strategies' cells")
    abt.add_argument("--out", help="folder (default results/ab/<name>/<timestamp>)")
    _lock_flag(abt)
    abt.set_defaults(func=ab.main)
    trc = sub.add_parser("trace", help="write a run's per-task traces as Chrome trace-event JSON")
    trc.add_argument("run_dir")
    trc.add_argument("--cell", help="one cell id (default: every cell's median run)")
    trc.add_argument("--out", help="output file (default RUN_DIR/trace.json)")
    trc.set_defaults(func=trace.main)
    prd = sub.add_parser("predict", help="replay the sequential run's task costs on W ideal cores")
    prd.add_argument("run_dir")
    prd.add_argument("--workers", type=int, nargs="+", help="worker counts (default: the run's)")
    prd.set_defaults(func=predict.main)
    ovh = sub.add_parser(
        "overhead", help="benchmark the harness's own instrumentation (interleaved on/off pairs)"
    )
    ovh.add_argument(
        "--config", help="on this config's images, pipeline, options and env (default: the study's)"
    )
    ovh.add_argument("--strategy", help="default: P_1, or the config's first strategy")
    ovh.add_argument("--workers", type=int, default=2)
    ovh.add_argument("--pairs", type=int, default=30)
    _lock_flag(ovh)
    ovh.set_defaults(func=overhead.main)
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
    sds.set_defaults(func=seeds.main)
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
    dim.set_defaults(func=dimension.main)
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

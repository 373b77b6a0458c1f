"""`seeds`: the sequential baseline timed at n seeds, how much its time depends on them
(harness/measure/seeds.py), under the machine-wide lock; stored in a run folder with --run."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from harness.commands.measuring import measuring
from harness.config import load_config
from harness.errors import HarnessError
from harness.measure import seeds
from harness.report import write_report
from harness.rundir import seeds_file


def main(args: argparse.Namespace) -> int:
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

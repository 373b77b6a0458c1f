"""`dimension`: where the variance lives, within a process, between processes, over time
(harness/measure/dimension.py), under the machine-wide lock; stored in a run folder with --run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.commands.measuring import measuring
from harness.config import load_config
from harness.errors import HarnessError
from harness.measure import dimension
from harness.measure.interrupt import Interrupted
from harness.report import write_report
from harness.rundir import dimension_file


def main(args: argparse.Namespace) -> int:
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

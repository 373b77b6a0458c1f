"""`predict`: the replay bound, the sequential run's task costs replayed on W ideal cores
(harness/analysis/replay.py), beside what was measured; and, where the run folder has its
pipeline's profile, the bound the GIL puts on threads (harness/analysis/gil.py). Takes no
lock."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.analysis import gil
from harness.analysis.results import load_results
from harness.errors import HarnessError


def main(args: argparse.Namespace) -> int:
    results = load_results(Path(args.run_dir))
    table = results.replay(args.workers)
    profile = gil.read(results.run_dir)
    if table.empty and profile is None:
        raise HarnessError(
            str(results.run_dir),
            None,
            "nothing to replay: it needs a strong "
            "sweep with per-task traces of its sequential runs",
            "run a strong sweep with this harness, then predict from its folder",
        )
    if not table.empty:
        print("Replay bound (upper bound: W ideal cores, no contention); measured where it ran:")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    if profile is not None:
        print("Threads bounded by the share of a task that holds the GIL (profile.json):")
        for workers in args.workers or gil.BOUND_WORKERS:
            print(f"  {gil.bound_line(profile, workers)}")
        if note := gil.busy_note(profile):
            print(f"  {note}")
    return 0

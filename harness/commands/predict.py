"""`predict`: the replay bound, the sequential run's task costs replayed on W ideal cores
(harness/analysis/replay.py), beside what was measured. Takes no lock."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.analysis.results import load_results
from harness.errors import HarnessError


def main(args: argparse.Namespace) -> int:
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

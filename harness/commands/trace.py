"""`trace`: a run's per-task traces as Chrome trace-event JSON (harness/report/trace.py). Takes
no lock."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.analysis.results import load_results
from harness.report.trace import write_trace


def main(args: argparse.Namespace) -> int:
    results = load_results(Path(args.run_dir))
    out = Path(args.out) if args.out else results.run_dir / "trace.json"
    print(write_trace(results, out, args.cell))
    return 0

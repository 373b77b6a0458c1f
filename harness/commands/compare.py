"""`compare`: two run folders cell by cell (harness/analysis/compare.py, the text
harness/analysis/compare_text.py). Takes no lock."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.analysis.compare import compare_runs
from harness.analysis.compare_text import format_compare


def main(args: argparse.Namespace) -> int:
    print(format_compare(compare_runs(Path(args.run_a), Path(args.run_b))), end="")
    return 0

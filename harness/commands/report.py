"""`report`: re-render a run folder's report from what it stores. Takes no lock."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.report import write_report


def main(args: argparse.Namespace) -> int:
    for path in write_report(Path(args.run_dir)):
        print(path)
    return 0

"""`overhead`: the harness's own instrumentation, timed in interleaved on/off pairs
(harness/measure/overhead.py), under the machine-wide lock."""

from __future__ import annotations

import argparse

from harness.commands.measuring import measuring
from harness.measure.overhead import measure


def main(args: argparse.Namespace) -> int:
    with measuring("overhead", args):
        print(measure(args.strategy, args.workers, pairs=args.pairs).line())
    return 0

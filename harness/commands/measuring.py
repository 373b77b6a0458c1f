"""The machine-wide lock (harness/measure/lock.py) as every command that measures takes it:
`run`, `aa` and `race` (not with --dry-run), `verify`, `overhead`, `seeds`, `dimension`."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator

from harness.measure.lock import MachineLock


@contextlib.contextmanager
def measuring(command: str, args: argparse.Namespace) -> Iterator[MachineLock]:
    """The machine-wide lock of a command that measures; a warning if it is overridden."""
    with MachineLock(command, getattr(args, "config", None), args.ignore_lock) as lock:
        if lock.warning:
            print(f"Warning: {lock.warning}", file=sys.stderr)
        yield lock

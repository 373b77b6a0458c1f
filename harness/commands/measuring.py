"""The machine-wide lock (harness/measure/lock.py) as every command that measures takes it:
`run`, `aa` and `race` (not with --dry-run), `verify`, `overhead`, `seeds`, `dimension`."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator

from harness.config import Config
from harness.measure.lock import MachineLock


@contextlib.contextmanager
def measuring(command: str, args: argparse.Namespace) -> Iterator[MachineLock]:
    """The machine-wide lock of a command that measures; a warning if it is overridden."""
    with MachineLock(command, getattr(args, "config", None), args.ignore_lock) as lock:
        if lock.warning:
            print(f"Warning: {lock.warning}", file=sys.stderr)
        yield lock


def in_its_environment(config: Config) -> None:
    """Start this command again with the config's `env:` when this process lacks it, so the
    calibration, the profile and every child run in it: the allocator reads its variables when
    a process starts (docs/MEMORY.md)."""
    if all(os.environ.get(k) == v for k, v in config.env.items()):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], {**os.environ, **config.env})

"""SIGINT and SIGTERM during a measurement: raised as Interrupted, so what finished is kept."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)

_held: list[int] | None = None  # signals that arrived inside held(), oldest first


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived during a sweep; finished runs are already stored."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


def raise_interrupted(signum: int, frame: object) -> None:
    if _held is not None:
        _held.append(signum)
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """SIGINT and SIGTERM raise Interrupted inside the block; the previous handlers return
    after it."""
    previous = {s: signal.signal(s, raise_interrupted) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def held() -> Iterator[list[int]]:
    """Inside an interruptible block, SIGINT and SIGTERM that arrive here wait in the yielded
    list and are raised as Interrupted when the outermost held block ends. Starting or killing
    a process goes in such a block: an Interrupted raised inside Popen would unwind past a
    child that nobody then kills."""
    global _held
    outermost = _held is None
    if outermost:
        _held = []
    signals = _held
    try:
        yield signals
    finally:
        if outermost:
            _held = None
    if outermost and signals:
        raise Interrupted(signals[0])

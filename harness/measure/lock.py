"""One measurement per machine at a time: every command that measures (`run`, `verify`,
`overhead`, `seeds`) holds an OS lock (flock) on one file for the whole machine, so two sweeps
never time each other's load. The kernel drops the lock when the holding process ends, however
it ends, so a killed sweep never leaves a stale lock. The file holds who holds it (pid, command,
config, run folder), for the refusal message of the next one.

AUGSCALE_LOCK overrides the path (the test suite isolates its own sweeps with it).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path

from harness.errors import HarnessError
from harness.schema import utc_now

LOCK_ENV = "AUGSCALE_LOCK"
DEFAULT_PATH = Path("/tmp/augscale-measure.lock")
OVERRIDE_FLAG = "--ignore-lock"


def lock_path() -> Path:
    return Path(os.environ.get(LOCK_ENV) or DEFAULT_PATH)


class MachineLock:
    """Held from __enter__ to __exit__; `ignore` measures even when another process holds it
    (with a warning), as the command's --ignore-lock asks."""

    def __init__(self, command: str, config: str | None, ignore: bool = False) -> None:
        self.path = lock_path()
        self.info = {"pid": os.getpid(), "command": command, "config": config, "run_dir": None}
        self.ignore = ignore
        self.fd: int | None = None
        self.warning: str | None = None

    def __enter__(self) -> MachineLock:
        fd = _open(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = holder_text(self.path)
            os.close(fd)
            if not self.ignore:
                raise HarnessError(
                    str(self.path),
                    None,
                    f"another measurement is running on this machine ({holder}); two at once "
                    "would time each other's load",
                    f"wait for it to end, or pass {OVERRIDE_FLAG} to measure anyway",
                ) from None
            self.warning = f"measuring beside another measurement ({holder}): {OVERRIDE_FLAG}"
            return self
        self.fd = fd
        self._write()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the lock; the file stays (unlinking it would race)
            self.fd = None

    def set_run_dir(self, run_dir: Path) -> None:
        self.info["run_dir"] = str(run_dir)
        self._write()

    def _write(self) -> None:
        if self.fd is None:
            return
        text = json.dumps({**self.info, "since": utc_now()})
        with contextlib.suppress(OSError):  # another user's file: the lock still works
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, text.encode(), 0)


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:  # created by another user in a sticky /tmp: lock it read-only
        fd = os.open(path, os.O_RDONLY)
    with contextlib.suppress(OSError):
        os.fchmod(fd, 0o666)  # so every user of the machine can take it in turn
    return fd


def holder_text(path: Path) -> str:
    """Who holds the lock, from what it wrote into the file."""
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return "its pid, command and run folder are not recorded"
    parts = [f"pid {info.get('pid')}", f"`{info.get('command')}`"]
    if info.get("config"):
        parts.append(f"config {info['config']}")
    if info.get("command") == "run":
        parts.append(f"run folder {info.get('run_dir') or 'not made yet'}")
    if info.get("since"):
        parts.append(f"since {info['since']}")
    return ", ".join(parts)

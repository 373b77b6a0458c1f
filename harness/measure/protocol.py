"""The parent's side of the files it shares with a running child (rundir/units.py names them):
the child appends one JSON line per run to its results file; the parent touches the stop file
when a limit cuts the cell, and writes to the judged file how many recorded runs it has judged,
which the child waits for before a run beyond min (measure/child.py)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.rundir import units


class UnitFiles:
    """The files of one unit in a run folder's cells/."""

    def __init__(self, run_dir: Path, tag: str) -> None:
        self.spec, self.results, self.log, self.stop, self.judged = (
            units.unit_file(run_dir, tag, suffix)
            for suffix in (".spec.json", ".jsonl", ".log", ".stop", ".judged")
        )

    def clear(self) -> None:
        """What an earlier child of the unit left behind, removed before a new one starts."""
        self.spec.parent.mkdir(parents=True, exist_ok=True)
        for path in (self.results, self.stop, self.judged):
            path.unlink(missing_ok=True)

    def write_judged(self, count: int) -> None:
        units.write_judged(self.judged, count)


def read_new(path: Path, offset: int) -> tuple[list[dict], int]:
    """The complete lines written to a results file since `offset`, and the new offset."""
    if not path.is_file():
        return [], offset
    with open(path) as f:
        f.seek(offset)
        chunk = f.read()
    complete = chunk[: chunk.rfind("\n") + 1]
    return [json.loads(line) for line in complete.splitlines() if line], offset + len(complete)

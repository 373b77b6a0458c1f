"""A/B: each cell measured on two sides in interleaved pairs (asv continuous's method, with this
harness's children). Per cell, one paced child per side (measure/child.py `paced`): each warms
up, then records a run only when the parent allows it, so the runs go A B, B A, A B, ... and
pair n's two runs are back to back, in alternating order. B / A of each pair cancels the drift
the two runs share; the analysis is harness/analysis/ab.py.

`Child` is the executor interface: `PacedChild` runs processes, the tests pass a fake.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Protocol

from harness.measure.ab_sides import Side
from harness.measure.protocol import UnitFiles, read_new
from harness.measure.runner import POLL_S, kill_group, start_child
from harness.measure.sweep import cell_spec
from harness.plan.cells import Cell, Unit

STOP_WAIT_S = 30.0


class Child(Protocol):
    def start(self) -> str:
        """Start it and wait until its warm-up ends: "" or why it failed."""

    def run(self, n: int) -> dict:
        """Allow recorded run n and wait for its line (a failed one if the child is gone)."""

    def stop(self) -> None: ...


def order_of(pair: int) -> tuple[str, str]:
    """The sides of pair n in the order they run: A B, then B A, alternately, so neither side
    always runs first (ABBA)."""
    return ("A", "B") if pair % 2 == 0 else ("B", "A")


def measure_cell(
    cell: Cell, children: dict[str, Child], pairs: int, on_run: Callable[[dict], None]
) -> None:
    """The cell's pairs; on_run gets every recorded run (and a failed row for a side that could
    not start). A side that fails ends the cell: its later pairs would have nothing to pair."""
    try:
        for name in ("A", "B"):
            if problem := children[name].start():
                on_run(_failed(cell, name, 0, 0, problem))
                return
        for n in range(pairs):
            for position, name in enumerate(order_of(n)):
                row = children[name].run(n)
                on_run({**row, "cell_id": cell.id, "side": name, "pair": n, "position": position})
                if row.get("status") != "ok":
                    return
    finally:
        for child in children.values():
            child.stop()


def _failed(cell: Cell, side: str, pair: int, position: int, error: str) -> dict:
    return {
        "cell_id": cell.id,
        "side": side,
        "pair": pair,
        "position": position,
        "status": "failed",
        "error": error,
    }


class PacedChild:
    """One side's child process for one cell, paced by the judged file."""

    def __init__(self, side: Side, cell: Cell, pairs: int, folder: Path) -> None:
        self.side, self.cell = side, cell
        self.files = UnitFiles(folder, f"{cell.id}.{side.name}")
        self.files.clear()
        spec = cell_spec(side.sweep, Unit(cell, tuple(range(pairs))), self.files)
        self.spec = spec.model_copy(
            update={"target": [], "paced": True, "judged": str(self.files.judged)}
        )
        self.spec.write(self.files.spec)
        self.timeout = side.sweep.timeout(cell, 1)
        self.offset = 0
        self.proc: subprocess.Popen | None = None
        self.log: IO[str] | None = None

    def start(self) -> str:
        self.log = open(self.files.log, "w")  # noqa: SIM115 - open while the child runs
        paths = [str(self.side.code.root), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**self.side.sweep.config.env, "PYTHONPATH": os.pathsep.join(paths)}
        # -P: the child's own folder does not go first on sys.path, so PYTHONPATH decides
        # which `experiments` it imports.
        self.proc = start_child(self.files.spec, self.log, env, flags=["-P"])
        lines = self._wait(lambda ls: sum(1 for x in ls if x["kind"] == "warmup"), self.spec.warmup)
        if self.proc.poll() is not None:
            return self._death("during its warm-up")
        failed = [x["error"] for x in lines if x.get("status") != "ok"]
        return failed[0] if failed else ("" if lines or not self.spec.warmup else "timed out")

    def run(self, n: int) -> dict:
        self.files.write_judged(n + 1)
        lines = self._wait(lambda ls: sum(1 for x in ls if x["kind"] == "recorded"), 1)
        recorded = [x for x in lines if x["kind"] == "recorded"]
        if not recorded:
            return {"status": "failed", "error": self._death(f"before pair {n}'s run")}
        row = recorded[0]
        if row.get("status") == "ok" and row.get("code") != str(self.side.code.package):
            return {**row, "status": "failed", "error": f"ran {row.get('code')}, not its side's"}
        return {k: row.get(k) for k in KEPT}

    def _wait(self, count: Callable[[list[dict]], int], wanted: int) -> list[dict]:
        """The child's new lines until `count` of them reaches `wanted`, it exits, or the
        timeout passes."""
        deadline, lines = time.monotonic() + self.timeout, []
        while count(lines) < wanted and time.monotonic() < deadline:
            new, self.offset = read_new(self.files.results, self.offset)
            lines += new
            if count(lines) >= wanted or self.proc.poll() is not None:
                break
            time.sleep(POLL_S)
        new, self.offset = read_new(self.files.results, self.offset)
        return lines + new

    def _death(self, when: str) -> str:
        code = self.proc.poll() if self.proc else None
        tail = _tail(self.files.log)
        why = "timed out" if code is None else f"exited with status {code}"
        return f"side {self.side.name}'s child {why} {when}" + (f": {tail}" if tail else "")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.files.stop.touch()
        deadline = time.monotonic() + STOP_WAIT_S
        while self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(POLL_S)
        kill_group(self.proc)
        if self.log is not None:
            self.log.close()


KEPT: Sequence[str] = (
    "status",
    "error",
    "started_at",
    "wall_s",
    "tasks",
    "batch",
    "t_cpu_s",
    "minor_faults",
    "code",
)


def _tail(log: Path, chars: int = 300) -> str:
    text = log.read_text(errors="replace").strip() if log.is_file() else ""
    return " ".join(text[-chars:].split())

"""The sweep's progress bar on stderr."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

from harness.plan.cells import Unit
from harness.plan.sweep_plan import Plan


class Progress:
    """A tqdm bar weighted by each run's estimated seconds, so its ETA follows the plan."""

    def __init__(self, plan: Plan, total_s: float) -> None:
        self.plan, self.total = plan, max(total_s, 1e-9)
        self.bar = tqdm(
            total=self.total,
            unit="s",
            bar_format="{percentage:3.0f}%|{bar:20}| {desc} [{elapsed}<{remaining}]",
            mininterval=0.5,
            file=sys.stderr,
        )
        self.started = time.monotonic()
        self.done_s = 0.0  # estimated seconds of the runs finished so far
        self.n, self.unit, self.runs, self.lines = 0, None, 0, 0

    def start_unit(self, unit: Unit) -> None:
        self.n, self.unit, self.runs, self.lines = self.n + 1, unit, 0, 0
        self._describe()

    def run_done(self, line: dict) -> None:
        cell = self.unit.cell
        warm = line["kind"] == "warmup"
        child = self.plan.child_s if self.lines == 0 else 0.0  # the total counts it
        self.lines += 1
        self.done_s += child + self.plan.run_estimate(cell) * (
            self.plan.config.warmup_tasks if warm else 1.0
        )
        self.runs += not warm
        self.bar.n = min(self.total, self.done_s)
        self._describe()

    def speed(self) -> float:
        """Actual over estimated seconds so far (1 before anything finished)."""
        return (time.monotonic() - self.started) / self.done_s if self.done_s > 0 else 1.0

    def _describe(self) -> None:
        self.bar.set_description_str(f"unit {self.n} {self.unit.cell.id} run {self.runs}")

    def close(self) -> None:
        self.bar.close()

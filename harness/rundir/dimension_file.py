"""`dimension.json` in a run folder: where the variance of its baseline and of one cell at W =
usable cores lives (`python -m harness dimension`, harness/measure/dimension.py), and the
baseline's time pinned to each CPU. Written atomically; a damaged, foreign or newer file is
refused in one line."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from harness.rundir import store

FILE = "dimension.json"
FORMAT = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CellLevels(_Strict):
    """One cell's relative standard deviations at each level, and the runs per process they
    make cost-optimal."""

    cell_id: str
    median_s: float
    within: float
    between: float
    drift: float
    runs_per_process: int

    def line(self) -> str:
        return (
            f"{self.cell_id} ({self.median_s:.3f} s): within a process {self.within:.1%}, "
            f"between processes {self.between:.1%}, drift over time {self.drift:.1%}; "
            f"cost-optimal runs per process: {self.runs_per_process}"
        )


class PinnedRun(_Strict):
    cpu: int
    median_s: float | None  # None when no run of that process finished ok


class Dimension(_Strict):
    format_version: int = FORMAT
    config_name: str
    processes: int
    runs: int
    cells: list[CellLevels]
    pinned: list[PinnedRun]
    host: dict
    git_commit: str | None = None
    started_at: str
    ended_at: str

    def cpu_spread(self) -> float | None:
        """Slowest / fastest CPU - 1, each CPU's time the mean of its pinned processes."""
        per: dict[int, list[float]] = {}
        for p in self.pinned:
            if p.median_s is not None:
                per.setdefault(p.cpu, []).append(p.median_s)
        means = [sum(v) / len(v) for v in per.values()]
        return max(means) / min(means) - 1 if len(means) > 1 else None

    def lines(self) -> list[str]:
        spread = self.cpu_spread()
        cpus = (
            "the CPUs: not compared"
            if spread is None
            else f"the baseline pinned to each CPU: slowest / fastest - 1 = {spread:.1%}"
        )
        head = f"{self.processes} processes of {self.runs} runs per cell:"
        return [head, *(f"  {c.line()}" for c in self.cells), f"  {cpus}"]


def write(run_dir: Path, found: Dimension) -> Path:
    return store.write_model(Path(run_dir) / FILE, found)


def read(run_dir: Path) -> Dimension | None:
    fix = f"measure it again (python -m harness dimension CONFIG --run {run_dir}), or delete it"
    return store.read_model(Path(run_dir) / FILE, Dimension, FORMAT, "a dimension file", fix)

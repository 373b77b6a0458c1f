"""The control plane: a config expanded into cells (strategy x workers-or-point x saving)."""

from __future__ import annotations

from dataclasses import dataclass

from experiments.strategies import skip_reason
from harness.config import Config


@dataclass(frozen=True)
class Cell:
    strategy: str
    workers: int
    saving: bool
    width: int
    height: int
    skip: str | None = None  # why it does not run (shown as "—" in the report)

    @property
    def id(self) -> str:
        mode = "save" if self.saving else "nosave"
        return f"{self.strategy}-w{self.workers}-{mode}-{self.width}x{self.height}"

    @property
    def is_baseline(self) -> bool:
        return self.strategy == "sequential"


def plan_cells(config: Config) -> list[Cell]:
    """Every cell of the sweep in run order: per saving mode, the baseline, then by workers."""
    cells: list[Cell] = []
    bw, bh = config.base_size
    for saving in config.saving:
        cells.append(Cell("sequential", 1, saving, bw, bh))
        for workers, (w, h) in config.sweep:
            for name in config.strategies:
                cells.append(Cell(name, workers, saving, w, h, skip_reason(name, workers, saving)))
    return cells


def runnable(cells: list[Cell]) -> list[Cell]:
    return [c for c in cells if c.skip is None]

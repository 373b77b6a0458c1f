"""Renders a run folder's report from runs.parquet + meta.json. One module per output format,
each exposing `write(data: ReportData) -> list[Path]`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness import store
from harness.analysis import scaling_table


@dataclass(frozen=True)
class ReportData:
    run_dir: Path
    meta: dict
    runs: pd.DataFrame
    table: pd.DataFrame  # analysis.scaling_table: one row per cell that ran
    skipped: list[dict]  # cells the plan skipped, with the reason

    @property
    def kind(self) -> str:
        return self.meta["config"]["kind"]

    @property
    def strategies(self) -> list[str]:
        return list(self.meta["config"]["strategies"])


def load(run_dir: Path) -> ReportData:
    run_dir = store.require_run_dir(run_dir)
    meta = store.read_meta(run_dir)
    runs = store.load_runs(run_dir)
    return ReportData(run_dir, meta, runs, scaling_table(runs, meta["config"]["kind"]), meta.get("skipped", []))


def write_report(run_dir: Path) -> list[Path]:
    """Write report.md, tables/<kind>.csv and plots/*.png into the run folder."""
    from harness.report import markdown, plots, table_csv

    data = load(Path(run_dir))
    written: list[Path] = []
    for fmt in (table_csv, plots, markdown):
        written += fmt.write(data)
    return written

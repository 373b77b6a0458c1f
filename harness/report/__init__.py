"""Renders a run folder's report from runs.parquet + meta.json. One module per output format,
each exposing `write(data: ReportData) -> list[Path]`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
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

    # Derived views, computed once and shared by every format.
    @cached_property
    def cores(self) -> int:
        from harness.checks import usable_cores

        return usable_cores(self.meta)

    @cached_property
    def processes(self) -> pd.Series:
        from harness.checks import cell_processes

        return cell_processes(self.table, self.runs)

    @cached_property
    def oversubscribed(self) -> pd.Series:
        return self.processes > self.cores

    @cached_property
    def phases(self) -> pd.DataFrame:
        from harness.analysis import phase_table

        return phase_table(self.runs)

    @cached_property
    def fits(self) -> list:
        from harness.analysis import per_run_speedups
        from harness.models import fit_series

        return fit_series(per_run_speedups(self.runs, self.kind), self.kind, self.cores)

    @cached_property
    def karp_flatt(self) -> pd.DataFrame | None:
        from harness.models import karp_flatt_table

        return karp_flatt_table(self.table) if self.kind == "strong" else None

    @cached_property
    def reference(self) -> tuple[pd.DataFrame, str]:
        from harness.reference import reproduction_table

        return reproduction_table(self.table, self.kind)

    @cached_property
    def warnings(self) -> list[str]:
        from harness.checks import report_warnings

        return report_warnings(self)


def load(run_dir: Path) -> ReportData:
    run_dir = store.require_run_dir(run_dir)
    meta = store.read_meta(run_dir)
    runs = store.load_runs(run_dir)
    return ReportData(run_dir, meta, runs, scaling_table(runs, meta["config"]["kind"]), meta.get("skipped", []))


def write_report(run_dir: Path) -> list[Path]:
    """Write report.md, report.html, tables/<kind>.csv and plots/*.png into the run folder."""
    from harness.report import html, markdown, plots, table_csv

    data = load(Path(run_dir))
    written: list[Path] = []
    for fmt in (table_csv, plots, markdown, html):  # html embeds the plots, so after them
        written += fmt.write(data)
    return written

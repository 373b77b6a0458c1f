"""tables/<kind>.csv: the scaling table in long form, with intervals, spread and utilization."""

from __future__ import annotations

from pathlib import Path

from harness.report import ReportData

COLUMNS = ["strategy", "saving", "workers", "width", "height", "time_s", "speedup", "efficiency"]
STATISTICS = [
    "ci_low", "ci_high", "cv", "unstable", "n_outliers",
    "speedup_ci_low", "speedup_ci_high", "efficiency_ci_low", "efficiency_ci_high", "utilization",
]


def write(data: ReportData) -> list[Path]:
    out = data.run_dir / "tables" / f"{data.kind}.csv"
    out.parent.mkdir(exist_ok=True)
    table = data.table.assign(processes=data.processes, oversubscribed=data.oversubscribed)
    table[COLUMNS + ["n_ok", "n_runs"] + STATISTICS + ["processes", "oversubscribed"]].to_csv(out, index=False, float_format="%.6g")
    return [out]

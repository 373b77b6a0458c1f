"""tables/<kind>.csv: the scaling table in long form."""

from __future__ import annotations

from pathlib import Path

from harness.report import ReportData

COLUMNS = ["strategy", "saving", "workers", "width", "height", "time_s", "speedup", "efficiency"]


def write(data: ReportData) -> list[Path]:
    out = data.run_dir / "tables" / f"{data.kind}.csv"
    out.parent.mkdir(exist_ok=True)
    data.table[COLUMNS + ["n_ok", "n_runs"]].to_csv(out, index=False, float_format="%.6g")
    return [out]

"""tables/<kind>.csv: the scaling table in long form (schema.CSV_COLUMNS), with intervals,
spread, utilization, busy processes and oversubscription."""

from __future__ import annotations

from pathlib import Path

from harness.results import Results
from harness.schema import CSV_COLUMNS


def write(results: Results) -> list[Path]:
    out = results.run_dir / "tables" / f"{results.kind}.csv"
    out.parent.mkdir(exist_ok=True)
    table = results.table.assign(processes=results.processes,
                                 oversubscribed=results.oversubscribed)
    table[CSV_COLUMNS].to_csv(out, index=False, float_format="%.6g")
    return [out]

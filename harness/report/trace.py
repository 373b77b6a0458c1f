"""Chrome trace-event JSON of a run folder's traces (`python -m harness trace RUN_DIR`), for
Perfetto (ui.perfetto.dev) or chrome://tracing: one process per cell (its median run), one
thread per lane, a complete ("X") event per task, per saver's part of a task and per span of
the main thread. Timestamps are microseconds from the run's start. Processes of one host share
the clock; a Dask cluster on other hosts is not aligned (the report says so where it applies).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from harness.analysis.losses import representative
from harness.analysis.results import Results
from harness.errors import HarnessError
from harness.schema import CELL_KEYS

US = 1e6


def events(results: Results, cell_id: str | None = None) -> list[dict]:
    """The trace events of each cell's median run (or of one cell)."""
    found: list[dict] = []
    cells = [(key, rows) for key, rows in results.runs.groupby(CELL_KEYS, sort=False)]
    for pid, (_, rows) in enumerate(cells, 1):
        run = representative(rows)
        if run is None or (cell_id is not None and run["cell_id"] != cell_id):
            continue
        trace = results.run_trace(run["cell_id"], run["repeat"])
        found += _process(pid, f"{run['cell_id']} (repeat {run['repeat']})", trace)
    return found


def _process(pid: int, name: str, trace: pd.DataFrame) -> list[dict]:
    out = [{"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": name}}]
    main_lanes = set(trace.loc[trace["kind"].eq("main"), "lane"])
    lanes = list(dict.fromkeys(trace.sort_values("start_s")["lane"]))
    for n, lane in enumerate(lanes):
        label = "main" if lane in main_lanes else f"worker lane {n}"
        out.append(
            {
                "ph": "M",
                "name": "thread_name",
                "pid": pid,
                "tid": int(lane),
                "args": {"name": f"{label} (tid {lane})"},
            }
        )
    for r in trace.itertuples():
        name = r.span if r.kind == "main" else f"{r.kind} i={r.i} k={r.k}"
        args = (
            {}
            if r.kind == "main"
            else {
                "read_s": r.read_s,
                "augment_s": r.augment_s,
                "save_s": r.save_s,
                "handoff_s": r.handoff_s,
                "cpu_s": r.cpu_s,
            }
        )
        out.append(
            {
                "ph": "X",
                "name": name,
                "cat": r.kind,
                "pid": pid,
                "tid": int(r.lane),
                "ts": r.start_s * US,
                "dur": (r.end_s - r.start_s) * US,
                "args": args,
            }
        )
    return out


def write_trace(results: Results, out: Path, cell_id: str | None = None) -> Path:
    if results.tasks is None:
        raise HarnessError(
            str(results.run_dir),
            None,
            "no per-task traces here (tasks/): this run folder was recorded before them",
            "re-run the sweep to trace it",
        )
    found = events(results, cell_id)
    if cell_id is not None and not found:
        known = ", ".join(sorted(set(results.runs["cell_id"])))
        raise HarnessError(
            str(results.run_dir),
            "--cell",
            f"no traced run of cell {cell_id!r}",
            f"give one of: {known}",
        )
    out.write_text(json.dumps({"traceEvents": found, "displayTimeUnit": "ms"}))
    return out

"""Every warning about the measurement set-up and its results, in one place (hyperfine style):
each is one sentence saying what is wrong and why it matters, then "Fix:" and what to do.

This module lists them in the report's order; each check lives in the module of its concern,
with its thresholds and why:
- setup_checks: the machine and the plan, known before anything runs (busy CPUs at start, the
  governor, the affinity mask, threads inside the workers, cells beyond the usable cores, input
  files left out);
- cell_checks: what the scaling table's cells show (oversubscribed, an implausible speedup,
  intervals that hold within one session only, unstable, outliers, too few runs, missed targets);
- run_checks: what the recorded runs show (failed runs, steal, other programs, drift, a cold
  run 0, restarted workers).

Every function takes plain data (meta, runs, tables) and knows no strategy by name.
"""

from __future__ import annotations

import pandas as pd

from harness.analysis import cell_checks, run_checks, setup_checks
from harness.analysis.cell_checks import OVERSUBSCRIBED, UNSTABLE
from harness.analysis.cell_runs import paired
from harness.analysis.processes import usable_cores
from harness.rundir.meta import RunMeta, run_meta

__all__ = ["OVERSUBSCRIBED", "UNSTABLE", "pre_run_warnings", "report_warnings"]


def pre_run_warnings(meta: dict | RunMeta) -> list[str]:
    """Warnings known before anything runs: the machine's state and the plan."""
    meta = run_meta(meta)
    return setup_checks.setup_warnings(meta) + setup_checks.planned_oversubscription(meta)


def report_warnings(
    meta: dict | RunMeta, runs: pd.DataFrame, table: pd.DataFrame, oversubscribed: pd.Series
) -> list[str]:
    """Warnings for a finished (or partial) run: set-up, then what the results show.
    oversubscribed: per row of the scaling table `table`, whether it ran more busy processes
    than the usable cores. Whether the run is paired is read from its runs."""
    meta = run_meta(meta)
    pairs, order = paired(runs), meta.config.order
    return (
        setup_checks.setup_warnings(meta)
        + cell_checks.oversubscribed_cells(table, oversubscribed, usable_cores(meta))
        + cell_checks.implausible_speedups(
            table, oversubscribed, meta.config.kind, pairs, usable_cores(meta)
        )
        + cell_checks.session_only_intervals(table, pairs, None if order.paired else str(order))
        + cell_checks.unstable_cells(table)
        + cell_checks.outlier_cells(table)
        + run_checks.failed_cells(runs)
        + cell_checks.few_repeats(table)
        + cell_checks.missed_targets(table, meta, pairs)
        + run_checks.steal(runs, meta)
        + run_checks.shared_machine(runs, meta)
        + run_checks.drift(runs)
        + run_checks.cold_first_runs(runs, meta)
        + run_checks.worker_restarts(runs)
        + run_checks.page_faults(runs, meta.config.env)
        + setup_checks.input_files(meta)
    )

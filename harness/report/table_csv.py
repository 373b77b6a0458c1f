"""tables/<kind>.csv: the scaling table in long form (schema.CSV_COLUMNS), with intervals,
spread, utilization, busy processes and oversubscription; beside it the loss account, the replay
and, for runs in paired rounds, the paired comparisons (<kind>_pairs.csv) and the intervals
across sessions (<kind>_sessions.csv)."""

from __future__ import annotations

from pathlib import Path

from harness.analysis import cell_runs, loss_sessions, paired_rounds
from harness.analysis.results import Results
from harness.schema import CSV_COLUMNS


def write(results: Results) -> list[Path]:
    out = results.run_dir / "tables" / f"{results.kind}.csv"
    out.parent.mkdir(exist_ok=True)
    table = results.table.assign(processes=results.processes, oversubscribed=results.oversubscribed)
    table[CSV_COLUMNS].to_csv(out, index=False, float_format="%.6g")
    return (
        [out]
        + write_losses(results)
        + write_replay(results)
        + write_study_replay(results)
        + write_pairs(results)
        + write_sessions(results)
    )


def write_pairs(results: Results) -> list[Path]:
    """tables/<kind>_pairs.csv: the paired comparisons of a run in paired rounds."""
    if not cell_runs.paired(results.runs):
        return []
    pairs = paired_rounds.compare_pairs(results.runs, results.strategies)
    if pairs.empty:
        return []
    out = results.run_dir / "tables" / f"{results.kind}_pairs.csv"
    pairs.to_csv(out, index=False, float_format="%.6g")
    return [out]


def write_sessions(results: Results) -> list[Path]:
    """tables/<kind>_sessions.csv: a paired run's speedups at W <= cores with their intervals
    within the run and across sessions, when the session level is known."""
    table = results.across_sessions
    if table is None:
        return []
    out = results.run_dir / "tables" / f"{results.kind}_sessions.csv"
    table.to_csv(out, index=False, float_format="%.6g")
    return [out]


def write_replay(results: Results) -> list[Path]:
    """tables/<kind>_replay.csv: the replay bound beside the measured speedup."""
    if results.replayed.empty:
        return []
    out = results.run_dir / "tables" / f"{results.kind}_replay.csv"
    results.replayed.to_csv(out, index=False, float_format="%.6g")
    return [out]


def write_study_replay(results: Results) -> list[Path]:
    """tables/strong_study_replay.csv: the replay at the study's worker counts, beside it."""
    table, _ = results.study_replay
    if table.empty:
        return []
    out = results.run_dir / "tables" / f"{results.kind}_study_replay.csv"
    table.to_csv(out, index=False, float_format="%.6g")
    return [out]


def write_losses(results: Results) -> list[Path]:
    """tables/<kind>_loss.csv: the efficiency-loss account, where the run has traces; the CPU
    inflation's split is empty, with its reason, where it cannot be measured; the intervals
    across sessions where earlier sessions tell, the within-run ones beside them (_run_)."""
    if results.losses.empty:
        return []
    out = results.run_dir / "tables" / f"{results.kind}_loss.csv"
    results.losses[loss_sessions.CSV_COLUMNS].to_csv(out, index=False, float_format="%.6g")
    return [out]

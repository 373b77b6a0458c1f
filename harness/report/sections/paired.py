"""Paired rounds: the drift the baseline showed, what pairing did to each speedup's interval,
the machine time the rounds cost, and the paired comparisons of the run's strategies (or of an
A/A run's twins). Present only for runs made with `order: rounds`."""

from __future__ import annotations

import pandas as pd

from harness.analysis import cell_runs, paired_rounds, session_level
from harness.analysis.results import Results
from harness.report.blocks import Facts, Figure, Paragraph, Section, Table
from harness.report.format import DASH, fmt, mode
from harness.report.plots.drift import drift_plots
from harness.rundir import dimension_file
from harness.schema import CELL_KEYS
from harness.stats.pairing import rounds_run


def rounds(results: Results) -> Section | None:
    runs = results.runs
    if not cell_runs.paired(runs):
        return None
    config = results.config
    every = config.baseline_every
    used, sequential = paired_rounds.extra_machine_time(
        runs,
        float(results.run_meta.last_session.calibration.get("child_s", 0.0)),
        config.warmup_runs * config.warmup_tasks,
    )
    facts = Facts(
        [
            ("rounds", str(rounds_run(runs))),
            (
                "order",
                f"a fresh permutation per round and saving mode, drawn from seed {config.seed}",
            ),
            (
                "baseline visits",
                (
                    "at each round's start and end"
                    if paired_rounds.visits_at_both_ends(runs)
                    else "at each round's start (the next round's visit closes it, and a last "
                    "visit the last round)"
                )
                + (f", and after every {every} cells" if every else "")
                + (
                    "; the time-slicing cells run last, after a visit of their own"
                    if config.slicing_last
                    else ""
                ),
            ),
            (
                "machine time",
                f"{used / 60:.1f} min, {fmt(used / sequential - 1, 'pct')} more than sequential "
                "order would have taken for the same recorded runs (estimated)"
                if sequential == sequential and sequential > 0
                else DASH,
            ),
        ]
    )
    intro = Paragraph(
        "Each cell's speedup is the Hodges-Lehmann centre of its per-round ratios T_base / T_cell, "
        "T_base interpolated between the baseline visits that bracket the run, with the "
        "Wilcoxon signed-rank 95% interval (exact; the range of the Walsh averages below 6 "
        "rounds). A round whose run failed, or that has no ok visit, gives no ratio."
    )
    blocks = [intro, facts, Paragraph(_sessions(results))]
    return Section(
        "rounds",
        "Paired rounds",
        [
            *blocks,
            _drift_table(runs),
            _narrowing_table(results),
            Figure("drift.png", "drift and what pairing left", lambda: drift_plots(results)),
        ],
    )


def _sessions(results: Results) -> str:
    """Whether the intervals hold beyond this session, and by how much the session level widens
    them (harness/analysis/session_level.py)."""
    between, own = results.between, len(results.run_meta.sessions)
    if between is None:
        return (
            f"The intervals are within {'one session' if own < 2 else 'this run'}: they hold "
            "for the machine as it was while it ran. Fewer than "
            f"{session_level.MIN_SESSIONS} paired sessions of this config on this machine (this "
            "run's and earlier run folders beside it) say how far a session moves the speedups."
        )
    earlier = len(between.folders)
    where = (
        f"{between.cells} cells, {between.sessions} sessions: {between.own_sessions} of this run "
        f"and {earlier} earlier paired run folder{'s' if earlier != 1 else ''} of this config "
        "on this machine"
    )
    if between.sd == 0:
        return (
            f"Between sessions, the speedups at W <= {results.cores} moved no more than their own "
            f"intervals explain ({where}): these intervals hold beyond this session, and the "
            "column +- across sessions equals the paired one."
        )
    return (
        f"Between sessions, a speedup at W <= {results.cores} moves by sd {between.sd:.1%} "
        f"beyond what its intervals explain ({where}). The column +- across sessions widens "
        "each interval by it: the interval to quote for this machine rather than this session "
        f"(tables/{results.kind}_sessions.csv)."
    )


def _drift_table(runs: pd.DataFrame) -> Table:
    head = ["saving", "visits", "first s", "fastest s", "slowest s", "last s", "spread", "minutes"]
    rows = [
        [
            mode(r.saving),
            str(r.visits),
            fmt(r.first_s),
            fmt(r.fastest_s),
            fmt(r.slowest_s),
            fmt(r.last_s),
            f"{r.spread:.1%}",
            f"{r.minutes:.1f}",
        ]
        for r in paired_rounds.drift(runs).itertuples()
    ]
    return Table(head, rows)


def _narrowing_table(results: Results) -> Table:
    head = ["strategy", "saving", "W", "speedup +- paired", "+- if unpaired"]
    across = _across_sessions(results)
    if across is not None:
        head.append("+- across sessions")
    rows = []
    for r in paired_rounds.narrowing(results.table, results.runs).itertuples():
        row = [r.strategy, mode(r.saving), str(r.workers), f"{r.paired:.1%}", f"{r.unpaired:.1%}"]
        if across is not None:
            width = across.get(tuple(getattr(r, k) for k in CELL_KEYS), float("nan"))
            row.append(f"{width:.1%}" if width == width else DASH)
        rows.append(row)
    return Table(head, rows)


def _across_sessions(results: Results) -> dict[tuple, float] | None:
    """Per cell at W <= cores, the half-width of its speedup's interval across sessions."""
    table = results.across_sessions
    if table is None:
        return None
    if table.empty:
        return {}
    width = (table["sessions_ci_high"] - table["sessions_ci_low"]) / (2 * table["speedup"])
    return dict(zip(table[CELL_KEYS].itertuples(index=False, name=None), width, strict=True))


def comparisons(results: Results) -> Section | None:
    runs = results.runs
    if not cell_runs.paired(runs):
        return None
    table = paired_rounds.compare_pairs(runs, results.strategies)
    if table.empty:
        return None
    flagged = int(table["significant"].sum())
    covers = int(((table["low"] <= 1) & (table["high"] >= 1)).sum())
    intro = Paragraph(
        "Two strategies measured in the same rounds, round by round: ratio = T_A / T_B (above "
        "1: B is faster), its Hodges-Lehmann centre and Wilcoxon 95% interval; flagged when "
        f"the signed-rank test gives p < {paired_rounds.ALPHA}. {flagged} of {len(table)} pairs "
        f"flagged; {covers} intervals cover 1."
    )
    head = ["A", "B", "saving", "W", "rounds", "B vs A", "interval", "p", "flag"]
    rows = [
        [
            r.a,
            r.b,
            mode(r.saving),
            str(r.workers),
            str(r.rounds),
            _faster(r.ratio),
            f"[{fmt(r.low)}, {fmt(r.high)}]",
            f"{r.p_value:.3f}",
            "*" if r.significant else "",
        ]
        for r in table.itertuples()
    ]
    return Section("comparisons", "Paired comparisons", [intro, Table(head, rows)])


def _faster(ratio: float) -> str:
    if ratio != ratio:
        return DASH
    return f"{ratio - 1:+.1%} faster" if ratio >= 1 else f"{1 / ratio - 1:+.1%} slower"


def variance_levels(results: Results) -> Section | None:
    """From dimension.json (`python -m harness dimension --run`), when the folder has one."""
    found = dimension_file.read(results.run_dir)
    if found is None:
        return None
    intro = Paragraph(
        f"The dimensioning experiment ({found.started_at[:16]} UTC, commit "
        f"{(found.git_commit or '?')[:7]}): {found.processes} fresh processes of {found.runs} "
        "runs per cell, the two cells alternating, each level a relative standard deviation "
        "(log scale): within a process, between processes (beyond what the runs within "
        "explain, net of a linear drift), and the drift over the experiment. Where the "
        "between-process level dominates, repeats inside one process cannot show the spread "
        "and one run per process (paired rounds) is the cost-optimal design "
        '(docs/STATISTICS.md, "Paired rounds").'
    )
    head = ["cell", "median s", "within", "between", "drift", "runs per process"]
    rows = [
        [
            c.cell_id,
            fmt(c.median_s),
            f"{c.within:.1%}",
            f"{c.between:.1%}",
            f"{c.drift:.1%}",
            str(c.runs_per_process),
        ]
        for c in found.cells
    ]
    return Section(
        "variance",
        "Where the variance lives",
        [intro, Table(head, rows), Paragraph(_cpus(found.cpu_spread()))],
    )


def _cpus(spread: float | None) -> str:
    if spread is None:
        return "The CPUs were not compared (one usable CPU)."
    return (
        "The baseline pinned to each usable CPU in turn (twice, in mirrored order): slowest / "
        f"fastest - 1 = {spread:.1%}."
    )


# This topic's sections, in report order (harness.report.sections joins the topics).
SECTIONS = [variance_levels, rounds, comparisons]

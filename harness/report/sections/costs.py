"""Where the time goes and what it costs: the phases of each cell, the cores it kept busy,
the efficiency it lost by cause, and timelines of median runs."""

from __future__ import annotations

import pandas as pd

from harness.analysis import checks, loss_sessions, losses, phases
from harness.analysis.results import Results
from harness.report import plots
from harness.report.blocks import Block, Bullets, Figure, Paragraph, Section, Table, Warnings
from harness.report.format import DASH, fmt, marks, mode


def where_the_time_goes(results: Results) -> Section:
    if results.phases.empty:
        return Section(
            "phases",
            "Where the time goes",
            [Paragraph("No run finished ok with phase timings, so there is nothing to split.")],
        )
    return Section(
        "phases",
        "Where the time goes",
        [
            Figure("phases.png", "phases", lambda: plots.phase_plots(results)),
            phases_table(results),
            Bullets(phase_notes(results)),
        ],
    )


# Columns the phase table shows after utilization, where the runs have them.
PHASE_EXTRAS = {
    "cores_busy": ("cores busy", "{:.2f}"),
    "t_dispatch_s": ("main CPU [s]", "{:.3f}"),
    "peak_rss_mb": ("peak RSS [MB]", "{:.0f}"),
}


def phases_table(results: Results) -> Table:
    phases = results.phases
    parts = results.phase_parts
    extra = [(c, label, form) for c, (label, form) in PHASE_EXTRAS.items() if c in phases]
    head = ["strategy", "saving", "W", "wall [s]"] + [f"{label} [s/worker]" for _, label in parts]
    head += ["utilization"] + [label for _, label, _ in extra]
    rows = []
    for _, r in phases.iterrows():
        row = [r["strategy"], mode(r["saving"]), str(r["workers"]), fmt(r["wall_s"])]
        row += [f"{r[c]:.3f}" for c, _ in parts] + [fmt(r["utilization"], "pct")]
        row += [DASH if pd.isna(r[c]) else form.format(r[c]) for c, _, form in extra]
        rows.append(row)
    return Table(head, rows, "phases")


def phase_notes(results: Results) -> list[str]:
    notes = [
        "Each phase is the seconds summed over tasks divided by the workers, averaged over the ok "
        "runs; overhead/idle is the rest of the wall time (pool start-up, pickling and hand-out, "
        "waiting). Utilization = (read + augment + save) / (wall x workers).",
        "The phase times are wall-clock per task: with more busy processes than cores "
        f"({checks.OVERSUBSCRIBED}) they include time spent waiting for a CPU, so utilization "
        "there overstates real CPU use. Cores busy is the real use: CPU seconds of all the run's "
        "processes (getrusage of the cell process and its reaped children) per wall second; it "
        "cannot exceed the cores.",
        "Main CPU is the CPU time of the main process during the run: reading where it reads, "
        "pickling tasks out and results back, managing the pool. Pool start-up is the time to "
        "create the pool (forking W workers).",
    ]
    return notes + results.strategy_notes


def cores_busy(results: Results) -> Section:
    """How many cores each cell really kept busy, beside the usable cores."""
    table = phases.cores_busy_table(results.runs)
    name = "Cores busy"
    if table is None:
        why = (
            "this run folder records no CPU time per run (`t_cpu_s`), so how many cores its runs "
            "kept busy cannot be shown. Runs recorded by a newer harness have it."
        )
        return Section.unavailable("cores-busy", name, why)
    intro = (
        "Cores busy = CPU seconds of all the run's processes (`t_cpu_s`) per wall second, the "
        "median over a cell's ok runs: the cores a run really kept busy, whatever its phase "
        f"times say. It cannot exceed the {results.cores} usable cores (min of physical cores "
        "and affinity)."
    )
    if "steal_s" in table:
        intro += (
            " Steal: CPU seconds the hypervisor took from this VM during the run (median), "
            "time the run's processes wanted a CPU and did not get one."
        )
    return Section(
        "cores-busy",
        name,
        [
            Paragraph(intro),
            cores_busy_table(results, table),
            Bullets(cores_busy_sentences(results, table)),
        ],
    )


def cores_busy_table(results: Results, table: pd.DataFrame) -> Table:
    steal = "steal_s" in table
    processes = results.per_cell(results.processes, table)
    head = ["strategy", "saving", "W", "processes", "cores busy", "usable cores", "of usable"]
    head += ["steal [s]"] if steal else []
    rows = []
    for r, procs, mark in zip(table.itertuples(), processes, marks(results, table), strict=True):
        row = [
            r.strategy,
            mode(r.saving),
            str(r.workers),
            DASH if pd.isna(procs) else str(int(procs)),
            fmt(r.cores_busy) + mark,
            str(results.cores),
            fmt(r.cores_busy / results.cores, "pct"),
        ]
        row += [DASH if pd.isna(r.steal_s) else f"{r.steal_s:.3f}"] if steal else []
        rows.append(row)
    return Table(head, rows, "cores-busy")


def cores_busy_sentences(results: Results, table: pd.DataFrame) -> list[str]:
    """One per strategy: the most cores it kept busy, against the usable cores."""
    cores = results.cores
    peaks = phases.cores_busy_peaks(table)
    processes = results.per_cell(results.processes, peaks)
    out = []
    for r, procs in zip(peaks.itertuples(), processes, strict=True):
        share = r.cores_busy / cores
        text = (
            f"{r.strategy}: at most {r.cores_busy:.2f} cores busy (W={r.workers}, "
            f"{mode(r.saving)}), {share:.0%} of the {cores} usable cores"
        )
        if share >= 0.9:
            text += ": the machine's cores were nearly all in use."
        elif pd.notna(procs) and procs < cores:
            text += f"; with {int(procs)} busy process(es) it could not use more."
        else:
            text += (
                f"; {cores - r.cores_busy:.1f} core(s) stayed idle even there: its "
                "processes spent that time waiting, not computing."
            )
        out.append(text)
    return out


def why_efficiency_is_lost(results: Results) -> Section:
    """The loss account per cell (harness/analysis/losses.py), from the per-task traces."""
    name = "Why efficiency is lost"
    if results.tasks is None:
        why = "this run folder has no per-task traces (`tasks/`); newer runs have them."
        return Section.unavailable("losses", name, why)
    table = results.losses
    if table.empty:
        why = (
            "no cell has both a traced run and a sequential run of the same image size and "
            "saving mode to compare its tasks with (weak scaling grows the images)."
        )
        return Section.unavailable("losses", name, why)
    intro = (
        "For each cell, the efficiency its runs lost, 100 (1 − E run), split into causes measured "
        "from the per-task traces against each task's twin in a sequential run (in paired "
        "rounds, the baseline visit of the run's round; otherwise the median sequential run; "
        "identical seeded work). Each run gets its own account; the table gives their mean "
        "(E run is the mean of the runs' efficiencies, beside the table's E from medians), so "
        "the causes add up to the loss, and each cause's 95% interval over the runs (± its "
        "half-width; runs: how many). A cause whose interval holds zero shows as ≈0 with its "
        "interval: the runs cannot tell it from nothing. docs/REPORT.md, 'What each loss "
        "means', defines each. CPU inflation is split into a cold start and a steady state only "
        "where the split can be measured and both parts are known within "
        f"±{losses.SPLIT_WIDTH_PP:.0f} pp (n/a: see below the table). Load balance, "
        "communication efficiency, parallel efficiency, computation scaling and global "
        "efficiency are the POP metrics, the runs' mean."
    )
    blocks: list[Block] = [
        Paragraph(intro + sessions_text(results.loss_levels)),
        loss_table(table),
        *[Paragraph(text) for text in split_notes(table)],
        Figure("losses.png", "efficiency lost, by cause", lambda: plots.loss_bars(results)),
        Bullets(loss_sentences(results)),
        *cold_start_blocks(results),
    ]
    return Section("losses", name, blocks + loss_warnings(table))


def sessions_text(levels: loss_sessions.CauseLevels | None) -> str:
    """What the intervals hold beyond the run's own runs, if anything."""
    if levels is None:
        return (
            " The intervals hold what varied between this run's runs; with fewer than "
            f"{loss_sessions.MIN_SESSIONS} paired sessions of this config on this machine, not "
            "what varies between sessions."
        )
    return (
        " Each interval is widened by its cause's between-session level in that cell, estimated "
        f"from the paired sessions of this config on this machine ({levels.sessions}: this run "
        f"and {len(levels.folders)} earlier; sessions: how many measured the cell), so it holds "
        f"for another session too. A cell seen in fewer than {loss_sessions.MIN_SESSIONS}, or "
        "beyond the usable cores, keeps its run's interval (sessions 0). The CSV keeps the "
        "within-run intervals beside them (_run_ columns)."
    )


def loss_table(table: pd.DataFrame) -> Table:
    """The causes in pp, CPU inflation followed by its cold start and steady state (n/a where
    they cannot be measured), the residual and the POP metrics."""
    columns = list(zip(losses.LOSS_COLUMNS, losses.LOSSES.values(), strict=True))
    at = losses.LOSS_COLUMNS.index("loss_cpu_inflation_pp") + 1
    columns[at:at] = losses.SPLIT.items()
    sessions = bool(table.get(loss_sessions.SESSIONS, pd.Series(dtype=float)).gt(0).any())
    head = [
        "strategy",
        "saving",
        "W",
        "E",
        "E run",
        "runs",
        *(["sessions"] if sessions else []),
        *[label for _, label in columns],
        "residual",
        "load balance",
        "comm. eff.",
        "parallel eff.",
        "comp. scaling",
        "global eff.",
        "task CPU / workers' CPU",
    ]
    out = Table(head, css="losses")
    for _, r in table.iterrows():
        out.rows.append(
            [
                r["strategy"],
                mode(r["saving"]),
                str(r["workers"]),
                fmt(r["efficiency"], "pct"),
                fmt(r["efficiency_run"], "pct"),
                str(int(r["runs_accounted"])),
                *([str(int(r[loss_sessions.SESSIONS]))] if sessions else []),
                *[cause_text(r, c) for c, _ in columns],
                f"{r['closure_residual_pp']:+.2f}",
                *[fmt(r[c]) for c in losses.POP],
                fmt(r["cpu_agreement"]),
            ]
        )
    return out


NOT_SPLIT = "n/a"


def cause_text(row: pd.Series, column: str) -> str:
    """A cause in pp: "+3.4 ±0.6"; "≈0 [−1.1, +0.5]" where its interval holds zero, "0" where
    every run had none; the bare value where it has no interval (one run)."""
    value = row[column]
    if pd.isna(value):
        return NOT_SPLIT
    low, high = row[f"{column}_low"], row[f"{column}_high"]
    if pd.isna(low) or pd.isna(high):
        return f"{value:+.1f}"
    if low == high == 0:
        return "0"  # none in any run: P_1 reads nothing inside its tasks
    if losses.holds_zero(row, column):
        return f"≈0 [{low:+.1f}, {high:+.1f}]"
    return f"{value:+.1f} ±{(high - low) / 2:.1f}"


# Why CPU inflation's split is unavailable, per reason of losses.cpu_split.
SPLIT_UNAVAILABLE = {
    losses.NO_PAIRED_TWIN: (
        "their sequential twin was not measured in the cell's round (the run is not in paired "
        "rounds, or that round's baseline visit failed), so a steady state would be the drift of "
        "the machine's speed between two runs measured apart, not a cost of running in parallel. "
        "The total CPU inflation is measured; `order: rounds` measures the split too."
    ),
    losses.SHORT_LANES: (
        f"their median lane ran fewer than {losses.MIN_LANE_TASKS} tasks, too few for a first and "
        "a second half to tell a cold start from a steady state. The total CPU inflation is "
        "measured; more tasks per worker (images or augmentations) measure the split too."
    ),
    losses.ONE_RUN: (
        "one traced run gives no interval, so nothing says the two parts are told apart. The "
        "total CPU inflation is measured; more runs (repeats) measure the split too."
    ),
    losses.NOT_SEPARABLE: (
        f"at least one part's interval is wider than ±{losses.SPLIT_WIDTH_PP:.0f} pp: runs (and "
        "sessions, where the intervals hold them) trade points between the cold start and the "
        "steady state while the sum holds, so only the sum, the total CPU inflation, is "
        "reported. More runs narrow both."
    ),
    loss_sessions.NOT_ACROSS: (
        "the earlier sessions of this config never measured the two parts apart, so nothing "
        "says how far they move between sessions; only the sum, the total CPU inflation, is "
        "reported."
    ),
}


def split_notes(table: pd.DataFrame) -> list[str]:
    """Per reason, the cells whose CPU inflation is not split into cold start and steady state,
    and why."""
    out = []
    reasons = table[losses.SPLIT_REASON].fillna("")
    for reason, rows in table[reasons.ne("")].groupby(losses.SPLIT_REASON, sort=False):
        listed = ", ".join(
            f"{r.strategy} W={r.workers} ({mode(r.saving)})" for r in rows.itertuples()
        )
        cells = "every cell" if len(rows) == len(table) else f"{len(rows)} cell(s), {listed}"
        out.append(
            f"CPU inflation's cold start and steady state are unavailable ({NOT_SPLIT}) for "
            f"{cells}: {SPLIT_UNAVAILABLE[reason]}"
        )
    return out


def loss_sentences(results: Results) -> list[str]:
    out = []
    for c in losses.largest_causes(results.losses, results.cores):
        bounds = (
            f", 95% [{c['cause_low']:.1f}, {c['cause_high']:.1f}]"
            if pd.notna(c["cause_low"])
            else ""
        )
        out.append(
            f"{c['strategy']} ({mode(c['saving'])}) at W={c['workers']} loses "
            f"{c['lost_pp']:.0f} pp of efficiency; the largest cause is {c['cause']} "
            f"({c['cause_pp']:.1f} pp{bounds})."
        )
    return out


def cold_start_blocks(results: Results) -> list[Block]:
    """What a fresh pool's first tasks cost against the same tasks once warm (the cold start),
    beside starting the pool, per strategy and saving mode at its largest W within the usable
    cores, where the split is reported."""
    lines = []
    for (strategy, saving), rows in results.losses.groupby(["strategy", "saving"], sort=False):
        row = losses.at_largest_w(rows, results.cores)
        if pd.isna(row["cpu_cold_start_pp"]):
            continue
        lines.append(
            f"{strategy} ({mode(saving)}) at W={row['workers']}: cold start "
            f"{cause_text(row, 'cpu_cold_start_pp')} pp, pool start-up "
            f"{cause_text(row, 'loss_pool_startup_pp')} pp."
        )
    if not lines:
        return []
    text = (
        "What a cold pool costs: the CPU a fresh worker's first tasks use beyond the same tasks "
        "once warm (cold caches, copy-on-write faults after the fork), beside the time to start "
        "the pool, in pp of efficiency. Warming the workers before the first batch (an "
        "initializer that runs one task, or workers kept between epochs: P_TORCH with "
        "persistent_workers, dask, joblib's loky) buys back at most their sum."
    )
    return [Paragraph(text), Bullets(lines)]


def loss_warnings(table: pd.DataFrame) -> list[Block]:
    bad = table[table["closure_residual_pp"].abs() > losses.RESIDUAL_PP]
    off = table[(table["cpu_agreement"] - 1).abs() > losses.CPU_AGREEMENT]
    found = []
    if len(bad):
        found.append(
            f"{len(bad)} cell(s) do not close: the causes miss 100 (1 − E run) by more than "
            f"{losses.RESIDUAL_PP} pp (column residual), a measurement problem (lanes or task "
            "twins missing from the trace)."
        )
    if len(off):
        found.append(
            f"In {len(off)} cell(s) the tasks' own CPU time differs from the workers' CPU time "
            f"(getrusage) by more than {losses.CPU_AGREEMENT:.0%}: the rest is pickling, queues "
            "and pool management (or OpenCV threads that thread_time cannot see when "
            "cv2_threads > 1)."
        )
    return [Warnings(found, label="Note")] if found else []


def timelines(results: Results) -> Section | None:
    """Gantt charts of median runs: at the largest W within the usable cores, and the largest."""
    if results.tasks is None:
        return None
    picks = []
    for (strategy, saving), rows in results.runs.groupby(["strategy", "saving"], sort=False):
        ws = sorted(set(rows["workers"]))
        within = [w for w in ws if w <= results.cores]
        for w in dict.fromkeys([*within[-1:], ws[-1]]):
            run = losses.representative(rows[rows["workers"].eq(w)])
            if run is not None and len(results.run_trace(run["cell_id"], run["repeat"])):
                picks.append((run, f"{strategy} W={w} ({mode(saving)}), {run['wall_s']:.2f} s"))
    if not picks:
        return None
    text = (
        "One row per worker lane (a process, or a thread for in-process strategies; savers are "
        "lanes too) and one for the main thread; each task is drawn in its phases (read, augment, "
        "save, hand-off to a saver), the main thread's spans as read, pool start-up, dispatch "
        "(hand-out and join). Gaps are idle time. `python -m harness trace RUN_DIR` writes any "
        "run as Chrome trace-event JSON for Perfetto or chrome://tracing."
    )
    figure = Figure("timelines.png", "timelines", lambda: plots.timelines(results, picks))
    return Section("timelines", "Timelines", [Paragraph(text), figure])


# This topic's sections, in report order (harness.report.sections joins the topics).
SECTIONS = [where_the_time_goes, cores_busy, why_efficiency_is_lost, timelines]

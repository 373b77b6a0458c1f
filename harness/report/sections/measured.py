"""The measured results: the table shaped like the study's, the work at each size (weak
scaling), every cell with its intervals, and the baseline at other seeds."""

from __future__ import annotations

import pandas as pd

from harness.analysis import cell_runs, checks, scaling, stops
from harness.analysis.results import Results
from harness.report import plots
from harness.report.blocks import Block, Bullets, Figure, Paragraph, Section, Table, Warnings
from harness.report.format import DASH, fmt, interval, marks, mode
from harness.rundir import seeds_file
from harness.schema import BASELINE
from harness.stats import medians, precision

TABLE_NAME = {"strong": "Table 1 (strong scaling)", "weak": "Table 2 (weak scaling)"}


def paper_shaped(results: Results) -> Section:
    kind = results.kind
    return Section(
        "results",
        f"Results, shaped like the study's {TABLE_NAME[kind]}",
        [
            paper_table(results),
            Paragraph(legend(results), "legend"),
            Figure(f"{kind}_scaling.png", f"{kind} scaling", lambda: plots.scaling(results)),
            Paragraph(f"Long-form table: `tables/{kind}.csv`; raw runs: `runs.parquet`."),
        ],
    )


def work_at_each_size(results: Results) -> Section | None:
    """Weak scaling: how much work W times the pixels really was (scaling.work_growth)."""
    if results.kind != "weak":
        return None
    name = "Work at each size"
    table = scaling.work_growth(results.table, results.runs, results.tasks)
    if table.empty:
        why = "this run folder has no per-task traces (`tasks/`) to measure the work with."
        return Section.unavailable("work", name, why)
    intro = (
        "Weak-scaling efficiency E = T_base / T_W assumes that W times the pixels is W times "
        "the work. Work here is the CPU seconds inside the tasks (reading left out, saving in), "
        "the median over the cell's traced runs, against its baseline's; E at the work done = "
        "E x work / W compares T_W with the baseline's time scaled by that work over W "
        "workers. Task CPU includes contention, so above the usable cores (†) it overstates "
        "the work and flatters E at the work done."
    )
    head = ["strategy", "saving", "W", "size", "pixels", "work", "E", "E at the work done"]
    rows = [
        [
            r.strategy,
            mode(r.saving),
            str(r.workers),
            f"{r.width}x{r.height}",
            f"{r.pixels:.3g}x",
            f"{r.work:.3g}x",
            fmt(r.efficiency, "pct"),
            fmt(r.efficiency_work, "pct") + mark,
        ]
        for r, mark in zip(table.itertuples(), marks(results, table), strict=True)
    ]
    return Section(
        "work", name, [Paragraph(intro), Table(head, rows, "work"), Bullets(work_sentences(table))]
    )


def work_sentences(table: pd.DataFrame) -> list[str]:
    """Per saving mode, at its smallest W above 1: pixels against work."""
    out = []
    for saving, rows in table[table["workers"].gt(1)].groupby("saving", sort=False):
        first = rows[rows["workers"].eq(rows["workers"].min())]
        work, done = first["work"], first["efficiency_work"]
        out.append(
            f"{mode(saving).capitalize()}, W={first['workers'].iat[0]}: "
            f"{first['pixels'].iat[0]:.3g}x the pixels took {work.min():.2f}-{work.max():.2f}x "
            f"the baseline's work, so E reaches {first['efficiency'].max():.0%}, and the "
            f"efficiency at the work done is {done.min():.0%}-{done.max():.0%}."
        )
    return out


def legend(results: Results) -> str:
    return (
        f"{checks.OVERSUBSCRIBED} more busy processes than the {results.cores} usable physical "
        f"cores (oversubscribed); {checks.UNSTABLE} unstable: the repeats vary by more than "
        f"{medians.UNSTABLE_CV:.0%} (CV). Figures are medians of the ok repeats; {DASH} = not run "
        "or no ok repeat."
    )


def sweep_points(results: Results) -> list[tuple[int, tuple[int, int]]]:
    return results.config.sweep


def paper_table(results: Results) -> Table:
    """Rows: workers (strong) or image size (weak), grouped by saving mode; columns per
    strategy."""
    strong = results.kind == "strong"
    names = results.strategies
    metrics = [("Execution time [s]", "time_s", "s")]
    metrics += [("Speedup", "speedup", "x")] if strong else []
    metrics += [("Efficiency", "efficiency", "pct")]
    head = ["", "Workers" if strong else "Image size", "Ideal execution"]
    head += [f"{heading}: {n}" for heading, _, _ in metrics for n in names]
    rows = []
    table = results.table.assign(mark=marks(results)).set_index(["strategy", "saving", "workers"])
    for saving in results.saving_modes:
        key = (BASELINE, saving, 1)
        base = table.loc[key] if key in table.index else None
        label = f"**{mode(saving).capitalize()}**"
        if base is not None:
            first = (
                f"1 ({BASELINE})"
                if strong
                else f"{int(base['width'])}x{int(base['height'])} ({BASELINE})"
            )
            rows.append(
                [label, first, fmt(base["time_s"]) + base["mark"]] + [DASH] * (len(head) - 3)
            )
            label = ""
        for workers, (w, h) in sweep_points(results):
            ideal = float("nan")
            if base is not None:
                ideal = base["time_s"] / workers if strong else base["time_s"]
            row = [label, str(workers) if strong else f"{w}x{h}", fmt(ideal)]
            label = ""
            for _, col, kind in metrics:
                for n in names:
                    cell = (n, saving, workers)
                    if cell in table.index and pd.notna(value := table.loc[cell, col]):
                        row.append(fmt(value, kind) + table.loc[cell, "mark"])
                    else:
                        row.append(DASH)
            rows.append(row)
    return Table(head, rows, "paper")


def every_cell(results: Results) -> Section:
    intro = (
        "Time intervals are the distribution-free order-statistic intervals of the median: "
        "[x(k), x(n+1-k)] holds the true median of independent runs with probability exactly "
        "1 - 2 P(Binomial(n, 1/2) < k), whatever their distribution. 95% needs 6 runs; with "
        "fewer the interval is the runs' range and its own coverage is shown (75% with 3). "
        "+- = (high - low) / (2 median), the cell's relative precision; stop = why a precision "
        "target stopped the cell. "
        + (
            "Speedup and efficiency intervals come from the paired rounds (see Paired rounds). "
            if cell_runs.paired(results.runs)
            else "Speedup and efficiency intervals are percentile bootstraps (2000 resamples, "
            "fixed seed) resampling the baseline's and the cell's runs independently. "
        )
        + "CV = std / mean of the ok repeats; outliers: runs with modified z-score "
        f"> 3.5, assessed from 5 ok repeats on ({DASH} below). Processes: busy processes per "
        "run (see Notes)."
    )
    blocks: list[Block] = [Paragraph(intro)]
    if rule := stop_rule_coverage(results):
        blocks.append(Paragraph(rule))
    blocks.append(detail_table(results))
    return Section("details", "Every cell, with 95% intervals", blocks)


def stop_rule_coverage(results: Results) -> str:
    """What stopping on a narrow interval does to its coverage, simulated for this run's
    target at the spread of its own cells."""
    target = stops.run_target(results.meta)
    spread = results.table["cv"].dropna()
    if target.fixed or spread.empty:
        return ""
    sigma = max(float(spread.median()), 0.001)
    sim = precision.coverage(target, sigma, trials=1000)
    return (
        "Stopping a cell as soon as its interval is narrow biases the interval's coverage down. "
        f"Simulated for this run's rule (+-{target.ci:.0%}, {target.min} to {target.max} runs) "
        f"with log-normal runs at its median CV ({sigma:.1%}), 1000 cells: the final intervals "
        f"held the true median {sim['coverage']:.1%} of the time (each interval alone: 96-99%), "
        f"after {sim['mean_runs']:.1f} runs on average, {sim['reached']:.0%} reaching the target."
    )


def detail_table(results: Results) -> Table:
    """Every cell with its 95% intervals, spread and outliers."""
    t = results.table.assign(mark=marks(results), processes=results.processes)
    head = [
        "strategy",
        "saving",
        "W",
        "size",
        "processes",
        "ok/runs",
        "time [s] [95% CI]",
        "images/s [95% CI]",
        "+-",
        "stop",
        "CV",
        "outliers",
        "speedup [95% CI]",
        "efficiency [95% CI]",
        "utilization",
        "marks",
    ]
    rows = [
        [
            r.strategy,
            mode(r.saving),
            str(r.workers),
            f"{r.width}x{r.height}",
            str(r.processes),
            f"{r.n_ok}/{r.n_runs}",
            interval(r.time_s, r.ci_low, r.ci_high) + _coverage(r.ci_level),
            interval(r.images_per_s, r.images_per_s_ci_low, r.images_per_s_ci_high, "rate"),
            fmt(r.half_width, "pct") if pd.notna(r.half_width) else DASH,
            r.stop or DASH,
            fmt(r.cv, "pct") if pd.notna(r.cv) else DASH,
            DASH if pd.isna(r.n_outliers) else str(int(r.n_outliers)),
            interval(r.speedup, r.speedup_ci_low, r.speedup_ci_high),
            interval(r.efficiency, r.efficiency_ci_low, r.efficiency_ci_high, "pct"),
            fmt(r.utilization, "pct"),
            r.mark,
        ]
        for r in t.itertuples()
    ]
    return Table(head, rows, "details")


def _coverage(level: float) -> str:
    """The interval's own coverage when it is below 95% (the runs' range, under 6 runs)."""
    return f" ({level:.0%})" if pd.notna(level) and level < 0.95 else ""


def seed_sensitivity(results: Results) -> Section | None:
    """The baseline at other seeds (`python -m harness seeds`), when the folder has seeds.json."""
    found = seeds_file.read(results.run_dir)
    if found is None:
        return None
    own = results.config.seed
    table = Table(["seed", *(mode(s.saving) for s in found.spreads)])
    for seed in found.seeds:
        row = [f"{seed} (this run's)" if seed == own else str(seed)]
        for spread in found.spreads:
            rounds = [
                f"{r.wall_s:.2f}"
                for r in found.runs
                if (r.seed, r.saving) == (seed, spread.saving) and r.wall_s is not None
            ]
            median = fmt(spread.times.get(seed, float("nan")))
            row.append(median + (f" ({', '.join(rounds)})" if len(rounds) > 1 else ""))
        table.rows.append(row)
    text = (
        f"The {found.workload()}, timed by `python -m harness seeds` "
        f"({found.ended_at}, `{seeds_file.FILE}`). Seconds, the median of a seed's rounds "
        "(each round's time in brackets):"
    )
    spread = [
        f"{s.line()}: {s.verdict()}. This run's own baseline: "
        f"{fmt(results.baselines.get(s.saving))} s at seed {own}"
        for s in found.spreads
    ]
    blocks: list[Block] = [Paragraph(text), table, Bullets(spread), Paragraph(seeds_file.COMPARE)]
    if caveats := seed_caveats(results, found):
        blocks.append(Warnings(caveats))
    return Section("seeds", "Seed sensitivity", blocks)


def seed_caveats(results: Results, found: seeds_file.Seeds) -> list[str]:
    there, here = (
        (h.get("hostname"), h.get("cpu_model")) for h in (found.host, results.meta["host"])
    )
    items = []
    if there != here:
        items.append(
            f"measured on {there[0]} ({there[1]}), not on this run's machine {here[0]} "
            f"({here[1]}): its times do not compare with the run's"
        )
    if found.interrupted:
        items.append(
            f"interrupted by {found.interrupted} after {len(found.runs)} of {found.planned} runs"
        )
    items += [f"seed {r.seed}, {mode(r.saving)}: {r.status}: {r.error}" for r in found.failed]
    return items


# This topic's sections, in report order (harness.report.sections joins the topics).
SECTIONS = [paper_shaped, work_at_each_size, every_cell, seed_sensitivity]

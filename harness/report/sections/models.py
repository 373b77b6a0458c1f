"""What the numbers are compared with: the replay bound of an ideal machine, the fitted
scaling models, and the study's own figures."""

from __future__ import annotations

import pandas as pd

from harness.analysis import checks, replay, study
from harness.analysis.models import num
from harness.analysis.results import Results
from harness.report import plots
from harness.report.blocks import Block, Bullets, Figure, Paragraph, Section, Table
from harness.report.format import DASH, fmt, interval, mode
from harness.schema import BASELINE

GREEK = {"sigma": "σ", "kappa": "κ", "alpha": "α"}


def replay_bound(results: Results) -> Section | None:
    """What W ideal cores would give under each strategy's own scheduling rule."""
    if results.kind != "strong" or results.tasks is None:
        return None
    table = results.replayed
    if table.empty:
        return None
    text = (
        "The sequential run's per-task costs replayed under each strategy's scheduling rule "
        "(chunks handed to the next free worker, a serial read where main reads, savers where "
        "it has them) on W ideal cores, plus the pool start-up and per-task hand-out measured "
        "here: an upper bound, since nothing in it can contend. Where W is within the usable "
        "cores, the gap to the measured speedup is contention and unmodelled overhead. The "
        "same replay fed with the median run's own task times (its contention in them) checks "
        "the model: what remains between that and the measured speedup, the model missed. "
        "≈ marks a strategy whose rule only approximates how it hands out tasks (its note "
        "says how). `python -m harness predict RUN_DIR --workers 1 2 4 … 64` replays any W. "
        "docs/REPORT.md, 'What the replay assumes', says what it leaves out."
    )
    out = Table(
        [
            "strategy",
            "saving",
            "W",
            "predicted (bound)",
            "measured [95% CI]",
            "measured / predicted",
            "replayed from the run's tasks",
            "measured / replayed",
        ],
        css="replay",
    )
    for r in table.itertuples():
        out.rows.append(
            [
                r.strategy + ("" if r.exact else " ≈"),
                mode(r.saving),
                str(r.workers) + marks_for_workers(results, r.workers),
                fmt(r.predicted_speedup),
                interval(r.measured_speedup, r.measured_ci_low, r.measured_ci_high),
                _ratio(r.measured_speedup, r.predicted_speedup),
                fmt(r.replayed_run_speedup),
                _ratio(r.measured_speedup, r.replayed_run_speedup),
            ]
        )
    return Section(
        "replay", "What an ideal machine would give (replay bound)", [Paragraph(text), out]
    )


def _ratio(a: float, b: float) -> str:
    return DASH if pd.isna(a) or pd.isna(b) else f"{a / b:.0%}"


def marks_for_workers(results: Results, workers: int) -> str:
    """The oversubscription mark for a replayed W: the replay has no busy-process count, so W
    above the usable cores is what marks it."""
    return f" {checks.OVERSUBSCRIBED}" if workers > results.cores else ""


def scaling_models(results: Results) -> Section:
    what = (
        "Amdahl and the Universal Scalability Law (USL)"
        if results.kind == "strong"
        else "Gustafson's law on the scaled speedup E x W"
    )
    blocks: list[Block] = [
        Paragraph(
            f"Fitted per strategy and saving mode to the per-run speedups ({what}); the "
            f"{BASELINE} runs are the W = 1 points."
        ),
        Bullets(
            [s.sentence for s in results.fits] or ["No strategy has runs to fit."], "sentences"
        ),
    ]
    fitted = model_table(results)
    if fitted.rows:
        blocks.append(fitted)
    kf = karp_flatt_table(results)
    if kf is not None:
        blocks += [
            Paragraph(
                "Karp–Flatt serial fraction e(W) = (1/S − 1/W) / (1 − 1/W): constant "
                "with W means a fixed serial part; growing with W means overhead "
                "that grows with the processes."
            ),
            kf,
        ]
    blocks.append(Figure("models.png", "models", lambda: plots.model_plots(results)))
    return Section("models", "Scaling models", blocks)


def model_table(results: Results) -> Table:
    rows = []
    for series in results.fits:
        for f in series.fits.values():
            params = ", ".join(
                f"{GREEK.get(k, k)}={num(v)} ±{num(f.errors[k])}" for k, v in f.params.items()
            )
            rows.append(
                [
                    series.label,
                    f.model,
                    params,
                    f"{f.rel_rmse:.1%}",
                    f"{f.r2:.3f}" if pd.notna(f.r2) else DASH,
                    str(f.n_points),
                ]
            )
    head = [
        "series",
        "model",
        "parameters (± standard error)",
        "residual RMS / mean S",
        "R²",
        "runs",
    ]
    return Table(head, rows, "models")


def karp_flatt_table(results: Results) -> Table | None:
    kf = results.karp_flatt
    if kf is None or kf.empty:
        return None
    rows = [
        [r.strategy, mode(r.saving), str(r.workers), fmt(r.speedup), f"{r.karp_flatt:.3f}"]
        for r in kf.itertuples()
    ]
    return Table(
        ["strategy", "saving", "W", "speedup (median)", "Karp–Flatt e(W)"], rows, "karp-flatt"
    )


def beside_the_study(results: Results) -> Section:
    ref, series = results.reproduction
    blocks: list[Block] = [
        Paragraph(
            f"Matched to the study's `{series}` series (harness/data/paper_results.csv): paper "
            'columns are recomputed from its times, "published" are the figures printed in the '
            "paper."
        )
    ]
    if len(ref):
        blocks.append(reproduction_table(results))
    else:
        blocks.append(Paragraph("No cell of this run has a counterpart in the study."))
    blocks.append(Bullets(study.notes(results.meta, results.kind, series)))
    if results.kind == "strong":
        blocks += study_replay(results)
    return Section("reproduction", "Beside the study", blocks)


def study_replay(results: Results) -> list[Block]:
    """The replay at the study's worker counts, beside the study's efficiencies."""
    table, why = results.study_replay
    if why is not None:
        return [
            Paragraph(
                f"Replay of the study's worker counts: not available here, since {why}. "
                f"Make one with `{replay.STUDY_RUN}` (its duration: docs/RESULTS.md) and read its "
                "report."
            )
        ]
    text = (
        "The sequential run's per-task costs at the study's size replayed at the study's worker "
        "counts on W ideal cores (see 'What an ideal machine would give'): the efficiency that "
        "load imbalance, the serial read and the pool's fixed costs alone would leave. The gap "
        "is what the study's machine lost beyond them: contention, oversubscription (its core "
        "count is unknown), and whatever else the replay cannot see (Manager and queue "
        "throughput, pickling that grows with W, the OS scheduler). It uses this machine's "
        "task costs and fixed costs, whose ratios may differ on the study's."
    )
    out = Table(
        [
            "strategy",
            "saving",
            "W",
            "replay (bound)",
            "study",
            "study − replay",
            "measured here [95% CI]",
        ],
        css="study-replay",
    )
    for r in table.itertuples():
        out.rows.append(
            [
                r.strategy,
                mode(r.saving),
                str(r.workers),
                fmt(r.predicted_efficiency, "pct"),
                fmt(r.paper_efficiency, "pct"),
                f"{-r.gap_pp:+.0f} pp",
                interval(r.measured_efficiency, r.measured_ci_low, r.measured_ci_high, "pct"),
            ]
        )
    return [Paragraph(text), out, Paragraph(study_replay_summary(table))]


def study_replay_summary(table: pd.DataFrame) -> str:
    """One sentence from the numbers: where the study falls furthest below the bound."""
    worst = table.loc[table["gap_pp"].idxmax()]
    within = table[table["gap_pp"].le(5)]
    return (
        f"The study falls furthest below the bound for {worst['strategy']} "
        f"({mode(worst['saving'])}) at W={worst['workers']}: "
        f"{worst['paper_efficiency']:.0%} against {worst['predicted_efficiency']:.0%}, "
        f"{worst['gap_pp']:.0f} pp that imbalance and serial parts do not explain; "
        f"{len(within)} of {len(table)} study cells are within 5 pp of the bound."
    )


def reproduction_table(results: Results) -> Table:
    ref, _ = results.reproduction
    weak = results.kind == "weak"
    head = ["strategy", "saving", "W", "size", "paper size"] + (["paper W"] if weak else [])
    head += [
        "speedup",
        "paper speedup",
        "published",
        "efficiency",
        "paper efficiency",
        "published",
        "Δ efficiency",
    ]
    rows = []
    for r in ref.itertuples():
        published_s = fmt(r.published_speedup) if pd.notna(r.published_speedup) else DASH
        published_e = (
            f"{r.published_efficiency_pct:.0f}%" if pd.notna(r.published_efficiency_pct) else DASH
        )
        row = [r.strategy, mode(r.saving), str(r.workers), r.size, r.paper_size]
        row += [str(r.paper_workers)] if weak else []
        row += [
            fmt(r.speedup),
            fmt(r.paper_speedup),
            published_s,
            fmt(r.efficiency, "pct"),
            fmt(r.paper_efficiency, "pct"),
            published_e,
        ]
        row.append(DASH if pd.isna(r.efficiency_diff) else f"{r.efficiency_diff * 100:+.0f} pp")
        rows.append(row)
    return Table(head, rows, "reproduction")


# This topic's sections, in report order (harness.report.sections joins the topics).
SECTIONS = [replay_bound, scaling_models, beside_the_study]

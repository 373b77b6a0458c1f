"""report.md: the paper's Table 1 (strong) or Table 2 (weak), with the setup that produced it,
then the statistics, phases, models and the comparison with the study."""

from __future__ import annotations

from pathlib import Path

from harness import reference
from harness.report import ReportData, content
from harness.report.content import Table


def render(table: Table) -> list[str]:
    lines = ["| " + " | ".join(table.head) + " |", "|" + "---|" * len(table.head)]
    return lines + ["| " + " | ".join(row) + " |" for row in table.rows]


def header(data: ReportData) -> list[str]:
    lines = [content.title(data), ""] + [f"- **{label}:** {value}" for label, value in content.header_items(data)]
    return lines + [f"- **{label}:** {value}" for label, value in content.setup_items(data)]


def paper_table(data: ReportData) -> list[str]:
    return render(content.paper_table(data)) + ["", content.legend(data)]


def warnings(data: ReportData) -> list[str]:
    if not data.warnings:
        return ["", "## Warnings", "", "None: the set-up checks and the results raised nothing."]
    return ["", "## Warnings", ""] + [f"- **Warning:** {w}" for w in data.warnings]


def details(data: ReportData) -> list[str]:
    return [
        "", "## Every cell, with 95% intervals", "",
        "Bootstrap 95% intervals of the median (2000 resamples, fixed seed; none with fewer than 3 ok repeats, and with 3 the "
        "interval cannot be wider than the runs' range); speedup and efficiency intervals resample the baseline's and the cell's runs "
        "independently. CV = std / mean of the ok repeats; outliers: runs with modified z-score > 3.5, assessed from 5 ok repeats on (— below). Processes: busy processes per run (see Notes).",
        "",
    ] + render(content.detail_table(data))


def phases(data: ReportData) -> list[str]:
    if data.phases.empty:
        return ["", "## Where the time goes", "", "No run finished ok with phase timings, so there is nothing to split."]
    lines = ["", "## Where the time goes", "", "![phases](plots/phases.png)", ""] + render(content.phases_table(data)) + [""]
    return lines + [f"- {n}" for n in content.phase_notes(data)]


def models(data: ReportData) -> list[str]:
    what = "Amdahl and the Universal Scalability Law (USL)" if data.kind == "strong" else "Gustafson's law on the scaled speedup E x W"
    lines = ["", "## Scaling models", "", f"Fitted per strategy and saving mode to the per-run speedups ({what}); the sequential runs are the W = 1 points.", ""]
    lines += [f"- {s.sentence}" for s in data.fits] or ["- No strategy has runs to fit."]
    table = content.model_table(data)
    if table.rows:
        lines += [""] + render(table)
    kf = content.karp_flatt_table(data)
    if kf is not None:
        lines += ["", "Karp–Flatt serial fraction e(W) = (1/S − 1/W) / (1 − 1/W): constant with W means a fixed serial part; "
                  "growing with W means overhead that grows with the processes.", ""] + render(kf)
    return lines + ["", "![models](plots/models.png)"]


def reproduction(data: ReportData) -> list[str]:
    ref, study = data.reference
    lines = ["", "## Beside the study", "", f"Matched to the study's `{study}` series (harness/data/paper_results.csv): "
             "paper columns are recomputed from its times, \"published\" are the figures printed in the paper.", ""]
    lines += render(content.reproduction_table(data)) if len(ref) else ["No cell of this run has a counterpart in the study."]
    return lines + [""] + [f"- {n}" for n in reference.notes(data.meta, data.kind, study)]


def notes(data: ReportData) -> list[str]:
    lines = ["", "## Notes", ""]
    for text, sub in content.notes(data):
        lines += [f"- {text}"] + [f"  - {item}" for item in sub]
    return lines


def write(data: ReportData) -> list[Path]:
    title = "Table 1 (strong scaling)" if data.kind == "strong" else "Table 2 (weak scaling)"
    plot = f"plots/{data.kind}_scaling.png"
    body = header(data) + warnings(data) + ["", f"## Results, shaped like the study's {title}", ""] + paper_table(data)
    body += ["", f"![{data.kind} scaling]({plot})", "", f"Long-form table: `tables/{data.kind}.csv`; raw runs: `runs.parquet`."]
    body += details(data) + phases(data) + models(data) + reproduction(data) + notes(data)
    out = data.run_dir / "report.md"
    out.write_text("\n".join(body) + "\n")
    return [out]

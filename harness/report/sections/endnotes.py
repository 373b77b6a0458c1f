"""The report's closing notes: the definitions used, what is missing and why, how busy
processes are counted, and each strategy in one line."""

from __future__ import annotations

from harness.analysis import checks, processes, study
from harness.analysis.results import Results
from harness.report.blocks import Bullets, Section
from harness.report.format import DASH, mode
from harness.schema import BASELINE


def _names(items: list[str]) -> str:
    return ", ".join(items)


def notes(results: Results) -> Section:
    if results.kind == "strong":
        items: list[str | tuple[str, list[str]]] = [
            "Strong scaling: speedup S = T_seq / T_W, efficiency E = S / W, ideal execution = "
            "T_seq / W; each saving mode against its own sequential baseline."
        ]
    else:
        items = [
            "Weak scaling: efficiency E = T_seq(base size) / T_W, with the pixels per worker held "
            "constant; ideal execution = T_seq(base size). E > 100% need not be superlinear: "
            'it assumes W times the pixels is W times the work (see "Work at each size").'
        ]
    missing = [
        f"{s['strategy']} at W={s['workers']} ({mode(s['saving'])}): skipped, {s['reason']}"
        for s in results.skipped
    ]
    bad = results.runs[results.runs["status"].ne("ok")]
    missing += [
        f"{cell}: {len(rows)} run(s) {status}: {rows['error'].iloc[0]}"
        for (cell, status), rows in bad.groupby(["cell_id", "status"])
    ]
    items.append(
        (f"{DASH} marks a cell that was not run, or produced no successful repeat:", missing)
    )
    oversub = sorted({int(w) for w in results.table.loc[results.oversubscribed, "workers"]})
    if oversub:
        items.append(
            f"W = {', '.join(map(str, oversub))} exceed this machine's {results.cores} usable "
            f"physical cores ({results.meta['host']['physical_cores']} physical): those cells "
            f"({checks.OVERSUBSCRIBED}) measure oversubscription, not added hardware."
        )
    items.append(busy_processes_note(results))
    items.append(strategies_note(results))
    items.append(
        "Every strategy does identical work: augmentation k of image i is seeded with seed + i x "
        "augmentations + k (`python -m harness verify` checks the outputs match)."
    )
    items += [f"Study: {n}" for n in study.INCONSISTENCIES]
    return Section("notes", "Notes", [Bullets(items)])


def busy_processes_note(results: Results) -> str:
    """How the processes column counts, for the run's strategies."""
    names = [n for n in results.strategies if n != BASELINE]
    pools = [n for n in names if n not in results.in_process]
    threads = [n for n in names if n in results.in_process]
    parts = [f"{BASELINE} 1"]
    parts += [f"{_names(pools)}: the W pool workers"] if pools else []
    parts += [f"{_names(threads)}: the W threads of its one process"] if threads else []
    text = (
        f"Busy processes per run: {'; '.join(parts)}. The main process (reading, pickling tasks, "
        "waiting) and helper processes that only relay data are not counted, unless the main "
        f"process is measured dispatching for over {processes.MAIN_BUSY_FRACTION:.0%} of the wall "
        "time"
    )
    if threads:
        text += " (never for threads, whose CPU time is the main process's own)"
    return text + "."


def strategies_note(results: Results) -> tuple[str, list[str]]:
    """Each strategy of the run in one line, from the registry."""
    lines = []
    for name in [BASELINE, *results.strategies]:
        known = results.known.get(name)
        if known is None:
            lines.append(
                f"`{name}`: not known here (its plugin is not installed), so it counts "
                "as W pool workers, with no phases or notes of its own"
            )
        else:
            lines.append(f"`{name}`: {known.summary}")
    lines += [f"plugin {error}" for error in results.plugin_errors]
    return "Strategies:", lines


# This topic's sections, in report order (harness.report.sections joins the topics).
SECTIONS = [notes]

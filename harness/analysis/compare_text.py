"""`compare` as text: the verdict first (one line per cell that differs), then the resolution,
the table of speedups and, last, the absolute times marked drift-prone. Prose is wrapped and
tables aligned within 100 columns. The verdict and the speedup table read only the columns of
compare.SPEEDUP_COLUMNS, whatever estimated them."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from harness.analysis.compare import Comparison, Side
from harness.analysis.compare_levels import FROM_PAIR, Level
from harness.analysis.difference import change, direction, percent
from harness.analysis.scaling import SAVING_LABEL
from harness.plan.history import MIN_SESSIONS
from harness.rundir.meta import RunMeta
from harness.schema import BASELINE

WIDTH = 100


def format_compare(c: Comparison) -> str:
    lines = [_side("A", c.a), _side("B", c.b), ""]
    lines += _setup_differences(c.a.meta, c.b.meta)
    lines += verdict_lines(c.speedups, c.quantity, sized(c.speedups))
    lines += _baseline_moved(c.times, c.speedups) + [""]
    lines += resolution_lines(c) + [""]
    lines += speedup_table(c.speedups, c.quantity, sized(c.speedups))
    lines += _notes(c) + [""]
    lines += time_lines(c)
    return "\n".join(lines) + "\n"


def _side(name: str, side: Side) -> str:
    order = "paired rounds" if side.paired else "sequential order, not paired"
    started = str(getattr(side.meta, "started_at", "") or "")[:16].replace("T", " ")
    return f"{name}: {side.path} ({order}{', ' + started if started else ''})"


def sized(frame: pd.DataFrame) -> bool:
    """Whether a strategy, saving mode and W leave the size open, so a cell's label names it
    (in a weak run each W has its own size)."""
    return bool(frame.duplicated(["strategy", "saving", "workers"]).any())


def label(row: pd.Series, sizes: bool = False) -> str:
    """A cell as the verdict names it: "P_2 W = 2 saving"."""
    text = f"{row['strategy']} W = {row['workers']} {SAVING_LABEL[bool(row['saving'])]}"
    return text + (f" {row['width']}x{row['height']}" if sizes else "")


def verdict_lines(frame: pd.DataFrame, quantity: str, sizes: bool = False) -> list[str]:
    """The verdict: how many cells differ, then one line per cell that does."""
    judged = frame["log_se"].notna()
    flagged = frame[frame["flagged"]]
    if flagged.empty:
        head = f"B against A: no cell's {quantity} differs ({judged.sum()} cells judged): "
        return _wrap(head + "none by more than the resolution below.")
    head = f"B against A: the {quantity} of {len(flagged)} of {judged.sum()} cells differs (95%):"
    return [head] + [
        f"  {label(r, sizes)}: {change(r['ratio'], r['ratio_low'], r['ratio_high'])}"
        for _, r in flagged.iterrows()
    ]


def _baseline_moved(times: pd.DataFrame, speedups: pd.DataFrame) -> list[str]:
    """Where a saving mode has cells that differ and its baseline's time moved too: the change
    may be the baseline's, which every speedup of the mode divides."""
    moved = times[times["strategy"].eq(BASELINE) & times["flagged"]]
    lines = []
    for _, r in moved.iterrows():
        if not speedups.loc[speedups["saving"].eq(r["saving"]), "flagged"].any():
            continue
        words = change(1 / r["ratio"], 1 / r["ratio_high"], 1 / r["ratio_low"])
        lines += _wrap(
            f"  The baseline's own time moved too ({SAVING_LABEL[bool(r['saving'])]}: {words}, "
            "drift-prone): a change to the baseline moves every speedup of its saving mode.",
            indent="    ",
        )
    return lines


def resolution_lines(c: Comparison) -> list[str]:
    """The smallest change the test could flag, per group of cells, with its level."""
    name, q = c.a.meta.config.name, c.quantity
    lines = []
    for slicing, group in ((False, "cells"), (True, "slicing")):
        res = c.speedups.loc[c.speedups["slicing"].eq(slicing), "resolution"].dropna()
        if res.empty:
            continue
        same = slicing and _same_folders(c.levels["cells"], c.levels["slicing"])
        text = _resolution(res, c.cores, name, q, slicing)
        lines += _wrap(text + level_words(c.levels[group], name, q, same))
    return lines


def _resolution(res: pd.Series, cores: int, name: str, quantity: str, slicing: bool) -> str:
    median, spread = percent(res.median()), f"±{percent(res.min())} to ±{percent(res.max())}"
    if slicing:
        return f"Time-slicing cells (†, W > {cores}): beyond ±{median} ({spread}). "
    return (
        f"Resolution: between these two sessions of {name} on this machine, a change in a "
        f"cell's {quantity} beyond ±{median} is flagged (median over the {len(res)} cells at W <= "
        f'{cores}; {spread} by cell), so "none" reads as none larger. '
    )


def _same_folders(one: Level | None, other: Level | None) -> bool:
    return bool(one and other and one.folders and one.folders == other.folders)


def level_words(level: Level | None, name: str, quantity: str, same: bool = False) -> str:
    """Where a between-session level came from, in a sentence (`same`: from the sessions the
    sentence before named)."""
    fewer = f"fewer than {MIN_SESSIONS} other paired sessions of {name} on this machine"
    if level is None:
        return (
            f"Between-session level unknown ({fewer}): judged on each session's own intervals, "
            "which sessions may exceed."
        )
    if level.source == FROM_PAIR:
        return (
            f"Between-session level sd {percent(level.sd)}, taken from A and B themselves "
            f"({fewer}; a change in most of the {level.cells} cells would hide in it)."
        )
    sd = f"sd {percent(level.sd)}"
    if level.sd == 0:
        sd += ", the sessions spreading no more than their own intervals"
    where = f"{len(level.folders)} other paired sessions of {name} on this machine: "
    where += ", ".join(f.name for f in level.folders)
    if same:
        where = "the same sessions"
    return (
        f"Between-session level of a {quantity}: {sd} (DerSimonian-Laird over {level.cells} "
        f"cells of {where})."
    )


def speedup_table(frame: pd.DataFrame, quantity: str, sizes: bool = False) -> list[str]:
    """Per cell: A's and B's estimates with their intervals, B / A and the verdict."""
    if frame.empty:
        return ["(no cell but the baseline is in both runs)"]
    head = ["cell", f"{quantity} A", f"{quantity} B", "B/A [95%]", "verdict"]
    rows = [
        [
            label(r, sizes) + (" †" if r["slicing"] else ""),
            _interval(r["a"], r["a_low"], r["a_high"]),
            _interval(r["b"], r["b_low"], r["b_high"]),
            _interval(r["ratio"], r["ratio_low"], r["ratio_high"], 3),
            _short_verdict(r),
        ]
        for _, r in frame.iterrows()
    ]
    intro = (
        f"Each cell's {quantity} with its interval from the rounds of its own session; B/A's 95% "
        "interval includes the between-session level:"
    )
    return _wrap(intro) + align([head, *rows])


def _short_verdict(row: pd.Series, of_time: bool = False) -> str:
    if not np.isfinite(row["log_se"]):
        return "no interval"
    if not row["flagged"]:
        return f"none > {percent(row['resolution'])}"
    return direction(1 / row["ratio"] if of_time else row["ratio"])


def _notes(c: Comparison) -> list[str]:
    lines = []
    if c.speedups["slicing"].any():
        lines += _wrap(
            f"† W > the usable cores ({c.cores}): time-slicing; judged with the level of those "
            "cells."
        )
    unpaired = [name for name, side in (("A", c.a), ("B", c.b)) if not side.paired]
    if unpaired:
        were = "A and B were" if len(unpaired) == 2 else f"{unpaired[0]} was"
        lines += _wrap(
            f"{were} measured in sequential order: speedups not paired carry the drift within "
            "their session, which no level here includes."
        )
    return lines


def time_lines(c: Comparison) -> list[str]:
    """The absolute times and images/s, labelled drift-prone, with the baselines' level."""
    intro = (
        "Absolute times (drift-prone: they move with the machine's speed from session to "
        "session, which pairing removes from the speedups above). B/A's interval includes the "
        "between-session level of the paired sessions' baselines. "
    )
    same = _same_folders(c.levels["cells"], c.levels["times"])
    words = level_words(c.levels["times"], c.a.meta.config.name, "baseline's time", same)
    lines = _wrap(intro + words)
    if c.times.empty:
        return [*lines, "(no cell is in both runs)"]
    head = ["cell", "A [s]", "B [s]", "img/s A", "img/s B", "B/A [95%]", "moved"]
    sizes = sized(c.times)
    rows = [
        [
            label(r, sizes),
            _number(r["a"]),
            _number(r["b"]),
            _number(r["rate_a"], 1),
            _number(r["rate_b"], 1),
            _interval(r["ratio"], r["ratio_low"], r["ratio_high"], 3),
            _short_verdict(r, of_time=True),
        ]
        for _, r in c.times.iterrows()
    ]
    return lines + align([head, *rows])


def align(rows: list[list[str]]) -> list[str]:
    """Rows of cells as left-aligned columns two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def _interval(centre: float, low: float, high: float, digits: int = 2) -> str:
    if not np.isfinite(centre):
        return "—"
    if not (np.isfinite(low) and np.isfinite(high)):
        return f"{centre:.{digits}f}"
    return f"{centre:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _number(value: float, digits: int = 2) -> str:
    return "—" if pd.isna(value) else f"{value:.{digits}f}"


def _wrap(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, WIDTH, subsequent_indent=indent, break_on_hyphens=False)


def _setup_differences(meta_a: RunMeta, meta_b: RunMeta) -> list[str]:
    found = []
    for name, get in (
        ("host", lambda m: m.host.cpu_model),
        ("physical cores", lambda m: m.host.physical_cores),
        ("commit", lambda m: str(getattr(m, "git_commit", None))[:12]),
        ("start method", lambda m: m.config.start_method),
        ("cv2 threads", lambda m: m.config.cv2_threads),
    ):
        if get(meta_a) != get(meta_b):
            found.append(f"- {name} differs: A {get(meta_a)}, B {get(meta_b)}")
    if not found:
        return []
    return ["Set-up differences (a difference may come from these, not from the code):", *found, ""]

"""An A/B folder judged (harness/measure/ab.py measured it): per cell, B / A of each pair's two
runs, which ran back to back, and the Hodges-Lehmann centre of those ratios with the Wilcoxon
signed-rank interval of harness/stats/pairing.py.

The intervals are simultaneous: each covers 1 - 0.05 / m for m cells judged (Bonferroni), so
all m together cover 95% and an unchanged B flags any cell at all in at most 5% of A/B runs.
A cell is flagged when its interval leaves out 1 and has that coverage (from enough pairs:
10 for 20 cells). The resolution is the interval's half-width:
the smallest change this run could flag, per cell, summarised by its median over cells.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.analysis.compare_text import label, sized
from harness.analysis.difference import change, percent
from harness.rundir.ab_file import ABRecord
from harness.stats.pairing import ratio_interval
from harness.stats.precision import LEVEL

WIDTH = 100
COLUMNS = ["pairs", "a_s", "b_s", "ratio", "low", "high", "coverage", "flagged", "half_width"]


@dataclass(frozen=True)
class Judged:
    record: ABRecord
    cells: pd.DataFrame  # one row per cell: its fields, then COLUMNS (ratio = B / A of time)
    each_level: float  # the coverage asked of each cell's interval

    @property
    def judged(self) -> pd.DataFrame:
        return self.cells[self.cells["pairs"] > 0]

    @property
    def flagged(self) -> pd.DataFrame:
        return self.cells[self.cells["flagged"]]


def pair_ratios(runs: pd.DataFrame) -> pd.DataFrame:
    """cell_id, pair, B / A of each pair whose two runs are ok."""
    ok = runs[runs["status"].eq("ok")]
    wide = ok.pivot_table(index=["cell_id", "pair"], columns="side", values="wall_s")
    if not {"A", "B"} <= set(wide.columns):
        return pd.DataFrame(columns=["cell_id", "pair", "ratio", "a_s", "b_s"])
    wide = wide.dropna(subset=["A", "B"])
    return pd.DataFrame(
        {"ratio": wide["B"] / wide["A"], "a_s": wide["A"], "b_s": wide["B"]}
    ).reset_index()


def judge(record: ABRecord, level: float = LEVEL) -> Judged:
    runs = pd.DataFrame(record.runs, columns=["cell_id", "side", "pair", "status", "wall_s"])
    ratios = pair_ratios(runs)
    by_cell = dict(tuple(ratios.groupby("cell_id")))
    m = max(1, sum(1 for g in by_cell.values() if len(g) >= 2))
    each = 1 - (1 - level) / m
    rows = [{**c, **_cell(by_cell.get(c["id"]), each)} for c in record.cells]
    return Judged(record, pd.DataFrame(rows), each)


def _cell(pairs: pd.DataFrame | None, level: float) -> dict:
    if pairs is None or len(pairs) < 2:
        n = 0 if pairs is None else len(pairs)
        return dict(zip(COLUMNS, [n] + [np.nan] * 6 + [False, np.nan], strict=True))
    ratio, low, high, coverage = ratio_interval(pairs["ratio"], level)
    half = float(max(np.log(high / ratio), np.log(ratio / low)))
    return {
        "pairs": len(pairs),
        "a_s": float(pairs["a_s"].median()),
        "b_s": float(pairs["b_s"].median()),
        "ratio": ratio,
        "low": low,
        "high": high,
        "coverage": coverage,
        # an interval short of the level asked proves nothing at that level
        "flagged": bool((low > 1 or high < 1) and coverage >= level - 1e-9),
        "half_width": float(np.expm1(half)),
    }


def format_ab(j: Judged) -> str:
    r = j.record
    lines = [
        f"A/B of {r.name}: {r.pairs} pairs per cell, run A B, B A, A B, ... "
        f"(started {r.started_at[:16]})",
        *(f"{name}: {s.code}; config {s.config}" for name, s in r.sides.items()),
        "",
        *verdict(j),
        "",
        *resolution(j),
        "",
        *table(j),
    ]
    if not r.ended_at:
        lines += ["", "Interrupted: the cells above are judged on the pairs measured so far."]
    return "\n".join(lines) + "\n"


def _speed_change(row: pd.Series) -> str:
    """B against A in words, as a speed: a time ratio of 1.05 is "4.8% slower"."""
    return change(1 / row["ratio"], 1 / row["high"], 1 / row["low"])


def verdict(j: Judged) -> list[str]:
    n, flagged, sizes = len(j.judged), j.flagged, sized(j.cells)
    if j.judged.empty:
        return ["No cell has two ok pairs: nothing to judge (see the failures in the table)."]
    together = f"{LEVEL:.0%} for the {n} cells together, {j.each_level:.2%} each"
    if flagged.empty:
        return _wrap(f"B against A: no cell changed ({together}).")
    head = f"B against A: {len(flagged)} of {n} cells changed ({together}):"
    return [head] + [f"  {label(r, sizes)}: {_speed_change(r)}" for _, r in flagged.iterrows()]


def resolution(j: Judged) -> list[str]:
    judged = j.judged
    if judged.empty:
        return []
    half = judged["half_width"]
    low = judged[judged["coverage"] < j.each_level - 1e-9]
    text = (
        f"Resolution: a cell is flagged when it changed by more than about "
        f"{percent(float(half.median()))} (the median cell; "
        f"{percent(float(half.min()))} to {percent(float(half.max()))}"
        " over the cells): a cell not flagged changed by no more than its interval says."
    )
    if not low.empty:
        text += (
            f" {len(low)} cells have too few pairs for {j.each_level:.2%} intervals (theirs cover "
            f"{float(low['coverage'].min()):.1%}), so none of them is flagged: give --pairs 12."
        )
    return _wrap(text)


def table(j: Judged) -> list[str]:
    sizes = sized(j.cells)
    rows = [("cell", "pairs", "A s", "B s", "B/A time", "interval", "verdict")]
    for _, c in j.cells.iterrows():
        if c["pairs"] < 2:
            rows.append((label(c, sizes), str(c["pairs"]), "", "", "", "", "too few ok pairs"))
            continue
        rows.append(
            (
                label(c, sizes),
                str(c["pairs"]),
                f"{c['a_s']:.3f}",
                f"{c['b_s']:.3f}",
                f"{c['ratio']:.4f}",
                f"[{c['low']:.4f}, {c['high']:.4f}]",
                _speed_change(c) if c["flagged"] else "no change",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    failures = [x for x in j.record.runs if x.get("status") != "ok"]
    lines += [f"failed: {x['cell_id']} side {x['side']}: {x.get('error', '')}" for x in failures]
    return lines


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, subsequent_indent="  ")

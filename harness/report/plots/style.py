"""What every figure shares: strategy colours, the workers and speedup axes, the
oversubscribed band, interval bars, unstable rings, the title line, and saving as PNG."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import NullLocator

from harness.analysis.results import Results

DPI = 110
# Speedup ticks: these values where they fall inside the axis, powers of two when too many do.
SPEEDUP_TICKS = (
    0.125,
    0.25,
    0.5,
    0.75,
    1,
    1.25,
    1.5,
    2,
    2.5,
    3,
    4,
    6,
    8,
    12,
    16,
    24,
    32,
    48,
    64,
    96,
    128,
    192,
    256,
    384,
    512,
    768,
    1024,
)
MAX_TICKS = 9
MARGIN = 1.15  # room above the highest and below the lowest measured point, as a factor


def strategy_colors(names: list[str]) -> dict[str, str]:
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    if len(names) > len(cycle):  # many strategies and variants: 20 colours, none repeated
        cycle = [matplotlib.colors.to_hex(c) for c in plt.get_cmap("tab20").colors]
    return {s: cycle[n % len(cycle)] for n, s in enumerate(names)}


def figure_title(results: Results) -> str:
    host = results.meta["host"]
    return f"{results.config.name} on {host['cpu_model']} ({host['physical_cores']} physical cores)"


def workers_axis(ax: plt.Axes, workers: list[int]) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(workers, [str(w) for w in workers])
    ax.minorticks_off()
    ax.set_xlabel("workers")
    ax.grid(alpha=0.3)


def speedup_limits(
    low: Sequence[float], high: Sequence[float], top_workers: float
) -> tuple[float, float]:
    """(bottom, top) of a speedup axis: the measured points (and 1) with a margin; the top at
    min(top_workers, 2 x the highest measured upper bound), never below that bound, so the ideal
    line is clipped rather than squeezing the measurements into the bottom of the panel."""
    lows = [x for x in low if np.isfinite(x) and x > 0] + [1.0]
    highs = [x for x in high if np.isfinite(x) and x > 0] + [1.0]
    hi = max(highs)
    return min(lows) / MARGIN, max(min(float(top_workers), 2 * hi), hi * MARGIN)


def log2_speedup_axis(ax: plt.Axes, bottom: float, top: float) -> None:
    """A log2 y axis from bottom to top, labelled with plain numbers."""
    ax.set_yscale("log", base=2)
    ax.set_ylim(bottom, top)
    ticks = [t for t in SPEEDUP_TICKS if bottom <= t <= top]
    if len(ticks) > MAX_TICKS:
        ticks = [t for t in ticks if math.log2(t).is_integer()]
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax.yaxis.set_minor_locator(NullLocator())


def shade_oversubscribed(ax: plt.Axes, results: Results, label: bool = True) -> None:
    """Grey band from halfway (in log2) between the last fitting and the first oversubscribed W."""
    table = results.table
    over = sorted(set(table.loc[results.oversubscribed, "workers"]))
    if not over:
        return
    below = [w for w in table["workers"] if w < over[0]]
    start = np.sqrt(max(below) * over[0]) if below else over[0] / 1.2
    ax.axvspan(
        start,
        max(table["workers"]) * 1.3,
        color="grey",
        alpha=0.12,
        lw=0,
        label=f"oversubscribed (> {results.cores} cores)" if label else None,
    )


def errorbar(
    ax: plt.Axes, rows: pd.DataFrame, col: str, low: str, high: str, **style: object
) -> None:
    y = rows[col].to_numpy(float)
    err = np.vstack([y - rows[low].to_numpy(float), rows[high].to_numpy(float) - y])
    ax.errorbar(
        rows["workers"], y, yerr=np.nan_to_num(err, nan=0.0).clip(min=0), capsize=3, **style
    )


def ring_unstable(ax: plt.Axes, rows: pd.DataFrame, col: str, label: bool) -> bool:
    shaky = rows[rows["unstable"].fillna(False).astype(bool)]
    if shaky.empty:
        return label
    ax.scatter(
        shaky["workers"],
        shaky[col],
        s=160,
        facecolors="none",
        edgecolors="red",
        linewidths=1.2,
        zorder=5,
        label="unstable (CV > 5%)" if label else None,
    )
    return False


def axis_top(values: pd.Series) -> float:
    finite = values.dropna()
    return float(finite.max()) * 1.1 if len(finite) else 1.0


def save(fig: plt.Figure, path: Path) -> Path:
    """Write the figure as a PNG and free it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path

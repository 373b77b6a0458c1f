"""The report's figures, one function per figure, each (results) -> matplotlib Figure; the
sections (harness.report.sections) say which figure goes where, and the report writer saves
them as plots/<file>.png.

One line per strategy; saving solid, no saving dashed. Bars are 95% intervals, the grey band is
oversubscribed (more busy processes than usable cores), red rings are unstable cells (CV > 5%).
Speedups are drawn on a log2 axis whose limits follow the measured points, so speedups of 1.5
stay readable beside an ideal line that runs to 64.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import NullLocator  # noqa: E402

from harness.analysis import models  # noqa: E402
from harness.analysis.losses import LOSSES  # noqa: E402
from harness.analysis.results import Results  # noqa: E402
from harness.analysis.scaling import OVERHEAD, SAVING_LABEL, STARTUP  # noqa: E402
from harness.schema import BASELINE, WORK_PHASES  # noqa: E402

DPI = 110
LINE = {True: "-", False: "--"}
SAVING_COLOR = {True: "tab:blue", False: "tab:orange"}
PHASE_COLOR = dict(zip(WORK_PHASES, ["tab:green", "tab:blue", "tab:orange"], strict=True))
PHASE_COLOR |= {STARTUP: "tab:brown", OVERHEAD: "lightgrey"}
# A strategy's own phases take these in the order they appear.
EXTRA_PHASE_PALETTE = ["tab:purple", "tab:pink", "tab:olive", "tab:cyan", "tab:red", "tab:gray"]
CURVES = {"Amdahl": models.amdahl, "USL": models.usl, "Gustafson": models.gustafson}
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


def _colors(names: list[str]) -> dict[str, str]:
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    if len(names) > len(cycle):  # many strategies and variants: 20 colours, none repeated
        cycle = [matplotlib.colors.to_hex(c) for c in plt.get_cmap("tab20").colors]
    return {s: cycle[n % len(cycle)] for n, s in enumerate(names)}


def phase_colors(columns: Sequence[str]) -> dict[str, str]:
    """Fixed colours for the work phases, start-up and overhead; the palette for the rest."""
    extra = iter(EXTRA_PHASE_PALETTE * (len(columns) // len(EXTRA_PHASE_PALETTE) + 1))
    return {c: PHASE_COLOR[c] if c in PHASE_COLOR else next(extra) for c in columns}


def _title(results: Results) -> str:
    host = results.meta["host"]
    return (
        f"{results.meta['config']['name']} on {host['cpu_model']} "
        f"({host['physical_cores']} physical cores)"
    )


def _series(table: pd.DataFrame) -> Iterator[tuple[str, bool, pd.DataFrame]]:
    """(strategy, saving, rows) for every line to draw, baselines left out."""
    lines = table[table["strategy"].ne(BASELINE) & table["time_s"].notna()]
    for (strategy, saving), rows in lines.groupby(["strategy", "saving"], sort=False):
        yield strategy, bool(saving), rows.sort_values("workers")


def _workers_axis(ax: plt.Axes, workers: list[int]) -> None:
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


def _shade_oversubscribed(ax: plt.Axes, results: Results, label: bool = True) -> None:
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


def _errorbar(
    ax: plt.Axes, rows: pd.DataFrame, col: str, low: str, high: str, **style: object
) -> None:
    y = rows[col].to_numpy(float)
    err = np.vstack([y - rows[low].to_numpy(float), rows[high].to_numpy(float) - y])
    ax.errorbar(
        rows["workers"], y, yerr=np.nan_to_num(err, nan=0.0).clip(min=0), capsize=3, **style
    )


def _ring_unstable(ax: plt.Axes, rows: pd.DataFrame, col: str, label: bool) -> bool:
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


def _top(values: pd.Series) -> float:
    finite = values.dropna()
    return float(finite.max()) * 1.1 if len(finite) else 1.0


def scaling(results: Results) -> plt.Figure:
    """plots/<kind>_scaling.png."""
    return strong_plots(results) if results.kind == "strong" else weak_plots(results)


def strong_plots(results: Results) -> plt.Figure:
    table = results.table
    colors = _colors(results.strategies)
    workers = sorted(set(table["workers"]))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    time_ax, speed_ax, eff_ax = axes
    metrics = [
        (time_ax, "time_s", "ci_low", "ci_high"),
        (speed_ax, "speedup", "speedup_ci_low", "speedup_ci_high"),
        (eff_ax, "efficiency", "efficiency_ci_low", "efficiency_ci_high"),
    ]
    ring_label = {ax: True for ax in axes}
    for strategy, saving, rows in _series(table):
        style = {"color": colors.get(strategy, "black"), "linestyle": LINE[saving], "marker": "o"}
        label = f"{strategy} ({SAVING_LABEL[saving]})"
        for ax, col, low, high in metrics:
            _errorbar(ax, rows, col, low, high, label=label, **style)
            ring_label[ax] = _ring_unstable(ax, rows, col, ring_label[ax])
    for saving, t_seq in results.baselines.items():
        time_ax.plot(
            workers,
            [t_seq / w for w in workers],
            color="grey",
            linestyle=LINE[saving],
            linewidth=1,
            label=f"ideal ({SAVING_LABEL[saving]})",
        )
    speed_ax.plot(workers, workers, color="grey", linewidth=1, label="ideal")
    eff_ax.axhline(1.0, color="grey", linewidth=1)
    efficiency_top = _top(table["efficiency_ci_high"].fillna(table["efficiency"]))
    time_ax.set(ylabel="execution time [s]", title="Execution time (median, 95% CI)")
    speed_ax.set(ylabel="speedup  T_seq / T_W (log scale)", title="Speedup")
    eff_ax.set(ylabel="efficiency  S / W", title="Efficiency", ylim=(0, max(1.1, efficiency_top)))
    for n, ax in enumerate(axes):
        _shade_oversubscribed(ax, results, label=n == 0)
        _workers_axis(ax, workers)
    measured = table[table["strategy"].ne(BASELINE)]
    log2_speedup_axis(
        speed_ax,
        *speedup_limits(
            measured["speedup_ci_low"].fillna(measured["speedup"]),
            measured["speedup_ci_high"].fillna(measured["speedup"]),
            max(workers, default=1),
        ),
    )
    _figure_legend(fig, axes)
    fig.suptitle(_title(results), fontsize=9)
    return fig


def _figure_legend(fig: plt.Figure, axes: object) -> None:
    """One legend below the panels, each label once, so no panel's data hides behind it."""
    found: dict[str, object] = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            found.setdefault(label, handle)
    fig.legend(
        list(found.values()), list(found), loc="lower center", ncol=min(len(found), 6), fontsize=8
    )
    rows = -(-len(found) // 6)
    fig.tight_layout(rect=(0, 0.045 * rows + 0.03, 1, 0.95))


def weak_plots(results: Results) -> plt.Figure:
    table = results.table
    colors = _colors(results.strategies)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ring = True
    for strategy, saving, rows in _series(table):
        _errorbar(
            ax,
            rows,
            "efficiency",
            "efficiency_ci_low",
            "efficiency_ci_high",
            color=colors.get(strategy, "black"),
            linestyle=LINE[saving],
            marker="o",
            label=f"{strategy} ({SAVING_LABEL[saving]})",
        )
        ring = _ring_unstable(ax, rows, "efficiency", ring)
    points = table[table["strategy"].ne(BASELINE)].drop_duplicates("workers").sort_values("workers")
    _shade_oversubscribed(ax, results)
    _workers_axis(ax, list(points["workers"]))
    labels = [
        f"{w}\n{x}x{y}"
        for w, x, y in zip(points["workers"], points["width"], points["height"], strict=True)
    ]
    ax.set_xticks(points["workers"], labels, fontsize=8)
    ax.set_xlabel("workers / image size")
    ax.axhline(1.0, color="grey", linewidth=1, label="ideal")
    top = _top(table["efficiency_ci_high"].fillna(table["efficiency"]))
    ax.set(
        ylabel="efficiency  T_seq(base) / T_W",
        title="Weak scaling efficiency (median, 95% CI)",
        ylim=(0, max(1.1, top)),
    )
    ax.legend(fontsize=7)
    fig.suptitle(_title(results), fontsize=9)
    fig.tight_layout()
    return fig


def phase_plots(results: Results) -> plt.Figure:
    """plots/phases.png: stacked per-worker seconds per phase, one panel per saving mode and
    strategy."""
    phases = results.phases.assign(over=results.is_oversubscribed(results.phases))
    modes = [m for m in results.saving_modes if m in set(phases["saving"])]
    names = results.strategies
    n_rows, n_cols = max(len(modes), 1), max(len(names), 1)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4 * n_cols, 3.6 * n_rows), squeeze=False)
    parts = results.phase_parts
    colors = phase_colors([c for c, _ in parts])
    for i, saving in enumerate(modes):
        mode = phases[phases["saving"].eq(saving)]
        base = mode[mode["strategy"].eq(BASELINE)]
        for j, name in enumerate(names):
            ax = axes[i][j]
            rows = pd.concat([base, mode[mode["strategy"].eq(name)].sort_values("workers")])
            ax.set_title(f"{name} ({SAVING_LABEL[saving]})", fontsize=9)
            if len(rows) == len(base):
                ax.text(
                    0.5,
                    0.5,
                    "not run",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                    color="grey",
                )
                ax.set_xticks([])
                continue
            _stack(ax, rows, parts, colors)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[c]) for c, _ in parts]
    handles.append(plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="black", hatch="//"))
    labels = [label for _, label in parts] + [f"oversubscribed (> {results.cores} cores)"]
    fig.legend(handles, labels, loc="lower center", ncol=len(handles), fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    fig.suptitle(f"Where the time goes: {_title(results)}", fontsize=9)
    return fig


def _stack(
    ax: plt.Axes, rows: pd.DataFrame, parts: list[tuple[str, str]], colors: dict[str, str]
) -> None:
    x = np.arange(len(rows))
    bottom = np.zeros(len(rows))
    for col, _ in parts:
        height = rows[col].fillna(0).to_numpy(float)
        ax.bar(
            x,
            height,
            bottom=bottom,
            color=colors[col],
            width=0.7,
            hatch=["//" if o else "" for o in rows["over"]],
            edgecolor="white",
        )
        bottom += height
    for xi, top, util in zip(x, bottom, rows["utilization"], strict=True):
        ax.text(xi, top, f"{util:.0%}", ha="center", va="bottom", fontsize=7)
    ticks = [
        "seq" if s == BASELINE else str(w)
        for s, w in zip(rows["strategy"], rows["workers"], strict=True)
    ]
    ax.set_xticks(x, ticks)
    ax.set_xlabel("workers (label: utilization)", fontsize=8)
    ax.set_ylabel("seconds per worker", fontsize=8)
    ax.set_ylim(0, bottom.max() * 1.15 if bottom.max() > 0 else 1)
    ax.grid(axis="y", alpha=0.3)


def model_plots(results: Results) -> plt.Figure:
    """plots/models.png: per strategy, the per-run speedups and each fitted curve (strong) or
    the scaled speedup (weak), on a log2 speedup axis."""
    points = results.speedups
    names = results.strategies
    fig, axes = plt.subplots(
        1, max(len(names), 1), figsize=(4.5 * max(len(names), 1), 4), squeeze=False
    )
    by_series = {(s.strategy, s.saving): s for s in results.fits}
    top = int(points["workers"].max()) if len(points) else 1
    grid = np.geomspace(1, max(top, 2) * 1.2, 80)
    workers = sorted(set(points["workers"])) or [1]
    for ax, name in zip(axes[0], names, strict=True):
        measured: list[float] = []
        for saving in results.saving_modes:
            series = by_series.get((name, saving))
            if series is None:
                continue
            measured += list(series.speedups)
            color = SAVING_COLOR[saving]
            jitter = series.workers * (1 + 0.03 * (1 if saving else -1))
            ax.scatter(
                jitter,
                series.speedups,
                s=14,
                color=color,
                alpha=0.7,
                label=f"runs ({SAVING_LABEL[saving]})",
            )
            for f in series.fits.values():
                label = f"{f.model} ({SAVING_LABEL[saving]})" + (" poor fit" if f.poor else "")
                ax.plot(
                    grid,
                    CURVES[f.model](grid, *f.params.values()),
                    color=color,
                    linestyle=":" if f.model == "Amdahl" else "-",
                    linewidth=1.2,
                    label=label,
                )
        ax.plot(grid, grid, color="grey", linewidth=1, label="ideal")
        _shade_oversubscribed(ax, results)
        _workers_axis(ax, workers)
        ylabel = "speedup" if results.kind == "strong" else "scaled speedup  E x W"
        ax.set(title=name, ylabel=f"{ylabel} (log scale)")
        log2_speedup_axis(ax, *speedup_limits(measured, measured, top))
        ax.legend(fontsize=6)
    fig.suptitle(f"Scaling models: {_title(results)}", fontsize=9)
    fig.tight_layout()
    return fig


LOSS_COLORS = [
    "#8c564b",
    "#c49c94",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#d62728",
    "#9467bd",
    "#aec7e8",
]
TIMELINE_COLORS = {
    "read": "tab:green",
    "augment": "tab:blue",
    "save": "tab:orange",
    "handoff": "tab:purple",
    "startup": "tab:brown",
    "dispatch": "lightgrey",
    "join": "silver",
}


def loss_bars(results: Results) -> plt.Figure:
    """plots/losses.png: per strategy and W, the efficiency lost, stacked by cause (pp)."""
    table = results.losses
    modes = [m for m in results.saving_modes if m in set(table["saving"])]
    names = [n for n in results.strategies if n in set(table["strategy"])]
    fig, axes = plt.subplots(
        max(len(modes), 1),
        max(len(names), 1),
        squeeze=False,
        figsize=(3.6 * max(len(names), 1), 3.4 * max(len(modes), 1)),
    )
    columns = [f"loss_{cause}_pp" for cause in LOSSES]
    for i, saving in enumerate(modes):
        for j, name in enumerate(names):
            rows = table[table["strategy"].eq(name) & table["saving"].eq(saving)]
            axes[i][j].set_title(f"{name} ({SAVING_LABEL[saving]})", fontsize=9)
            if rows.empty:
                axes[i][j].text(0.5, 0.5, "not run", ha="center", va="center", color="grey",
                                transform=axes[i][j].transAxes)
                axes[i][j].set_xticks([])
                continue
            _loss_stack(axes[i][j], rows.sort_values("workers"), columns)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in LOSS_COLORS]
    fig.legend(handles, list(LOSSES.values()), loc="lower center", ncol=5, fontsize=7)
    fig.tight_layout(rect=(0, 0.1, 1, 0.95))
    fig.suptitle(f"Why efficiency is lost (pp of efficiency): {_title(results)}", fontsize=9)
    return fig


def _loss_stack(ax: plt.Axes, rows: pd.DataFrame, columns: list[str]) -> None:
    x = np.arange(len(rows))
    up, down = np.zeros(len(rows)), np.zeros(len(rows))
    for column, color in zip(columns, LOSS_COLORS, strict=True):
        values = rows[column].to_numpy(float)
        base = np.where(values >= 0, up, down)
        ax.bar(x, values, bottom=base, color=color, width=0.7)
        up, down = up + values.clip(min=0), down + values.clip(max=0)
    ax.scatter(
        x,
        100 * (1 - rows["efficiency_run"].to_numpy(float)),
        color="black",
        s=12,
        zorder=5,
        label="100 (1 - E)",
    )
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(x, [str(w) for w in rows["workers"]])
    ax.set_xlabel("workers", fontsize=8)
    ax.set_ylabel("pp of efficiency", fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def timeline(ax: plt.Axes, trace: pd.DataFrame, wall: float, title: str) -> None:
    """A Gantt chart of one run: a lane per worker (and main), tasks coloured by phase."""
    work = trace[trace["kind"].ne("main")]
    main = trace[trace["kind"].eq("main")]
    lanes = list(dict.fromkeys(work.sort_values("start_s")["lane"]))
    rows = {lane: n + 1 for n, lane in enumerate(lanes)}
    for r in work.itertuples():
        left = r.start_s
        for phase in ("read", "augment", "save", "handoff"):
            width = getattr(r, f"{phase}_s")
            if width > 0:
                ax.barh(
                    rows[r.lane],
                    width,
                    left=left,
                    height=0.8,
                    color=TIMELINE_COLORS[phase],
                    linewidth=0,
                )
                left += width
    for r in main.itertuples():
        ax.barh(
            0,
            r.end_s - r.start_s,
            left=r.start_s,
            height=0.8,
            color=TIMELINE_COLORS.get(r.span, "grey"),
            linewidth=0,
        )
    ax.set_yticks(
        range(len(lanes) + 1), ["main"] + [f"w{n}" for n in range(1, len(lanes) + 1)], fontsize=6
    )
    ax.set_xlim(0, wall)
    ax.invert_yaxis()
    ax.set_title(title, fontsize=8)
    ax.tick_params(axis="x", labelsize=7)


def timelines(results: Results, picks: list[tuple[pd.Series, str]]) -> plt.Figure:
    """plots/timelines.png: one Gantt chart per picked run (run row, title)."""
    fig, axes = plt.subplots(len(picks), 1, squeeze=False, figsize=(11, 0.9 + 1.25 * len(picks)))
    for ax, (run, title) in zip(axes[:, 0], picks, strict=True):
        timeline(ax, results.run_trace(run["cell_id"], run["repeat"]), float(run["wall_s"]), title)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in TIMELINE_COLORS.values()]
    fig.legend(handles, list(TIMELINE_COLORS), loc="lower center", ncol=len(handles), fontsize=7)
    axes[-1][0].set_xlabel("seconds from the run's start", fontsize=8)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    fig.suptitle(f"Timelines of median runs: {_title(results)}", fontsize=9)
    return fig


def save(fig: plt.Figure, path: Path) -> Path:
    """Write the figure as a PNG and free it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path

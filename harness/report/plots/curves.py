"""The scaling curves: time, speedup and efficiency against workers (strong), efficiency
against workers at growing sizes (weak), and the fitted scaling models."""

from __future__ import annotations

from collections.abc import Iterator

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from harness.analysis import models
from harness.analysis.results import Results
from harness.analysis.scaling import SAVING_LABEL
from harness.report.plots.style import (
    axis_top,
    errorbar,
    figure_title,
    log2_speedup_axis,
    ring_unstable,
    shade_oversubscribed,
    speedup_limits,
    strategy_colors,
    workers_axis,
)
from harness.schema import BASELINE

LINE = {True: "-", False: "--"}
SAVING_COLOR = {True: "tab:blue", False: "tab:orange"}
CURVES = {"Amdahl": models.amdahl, "USL": models.usl, "Gustafson": models.gustafson}


def _series(table: pd.DataFrame) -> Iterator[tuple[str, bool, pd.DataFrame]]:
    """(strategy, saving, rows) for every line to draw, baselines left out."""
    lines = table[table["strategy"].ne(BASELINE) & table["time_s"].notna()]
    for (strategy, saving), rows in lines.groupby(["strategy", "saving"], sort=False):
        yield strategy, bool(saving), rows.sort_values("workers")


def scaling(results: Results) -> plt.Figure:
    """plots/<kind>_scaling.png."""
    return strong_plots(results) if results.kind == "strong" else weak_plots(results)


def strong_plots(results: Results) -> plt.Figure:
    table = results.table
    colors = strategy_colors(results.strategies)
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
            errorbar(ax, rows, col, low, high, label=label, **style)
            ring_label[ax] = ring_unstable(ax, rows, col, ring_label[ax])
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
    efficiency_top = axis_top(table["efficiency_ci_high"].fillna(table["efficiency"]))
    time_ax.set(ylabel="execution time [s]", title="Execution time (median, 95% CI)")
    speed_ax.set(ylabel="speedup  T_seq / T_W (log scale)", title="Speedup")
    eff_ax.set(ylabel="efficiency  S / W", title="Efficiency", ylim=(0, max(1.1, efficiency_top)))
    for n, ax in enumerate(axes):
        shade_oversubscribed(ax, results, label=n == 0)
        workers_axis(ax, workers)
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
    fig.suptitle(figure_title(results), fontsize=9)
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
    colors = strategy_colors(results.strategies)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ring = True
    for strategy, saving, rows in _series(table):
        errorbar(
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
        ring = ring_unstable(ax, rows, "efficiency", ring)
    points = table[table["strategy"].ne(BASELINE)].drop_duplicates("workers").sort_values("workers")
    shade_oversubscribed(ax, results)
    workers_axis(ax, list(points["workers"]))
    labels = [
        f"{w}\n{x}x{y}"
        for w, x, y in zip(points["workers"], points["width"], points["height"], strict=True)
    ]
    ax.set_xticks(points["workers"], labels, fontsize=8)
    ax.set_xlabel("workers / image size")
    ax.axhline(1.0, color="grey", linewidth=1, label="ideal")
    top = axis_top(table["efficiency_ci_high"].fillna(table["efficiency"]))
    ax.set(
        ylabel="efficiency  T_seq(base) / T_W",
        title="Weak scaling efficiency (median, 95% CI)",
        ylim=(0, max(1.1, top)),
    )
    ax.legend(fontsize=7)
    fig.suptitle(figure_title(results), fontsize=9)
    fig.tight_layout()
    return fig


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
        shade_oversubscribed(ax, results)
        workers_axis(ax, workers)
        ylabel = "speedup" if results.kind == "strong" else "scaled speedup  E x W"
        ax.set(title=name, ylabel=f"{ylabel} (log scale)")
        log2_speedup_axis(ax, *speedup_limits(measured, measured, top))
        ax.legend(fontsize=6)
    fig.suptitle(f"Scaling models: {figure_title(results)}", fontsize=9)
    fig.tight_layout()
    return fig

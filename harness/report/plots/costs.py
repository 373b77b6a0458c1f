"""Where the time goes, drawn: the phases of each cell as stacked bars, the efficiency lost by
cause, and timelines of median runs, one row per worker lane."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from harness.analysis.losses import LOSSES
from harness.analysis.phases import OVERHEAD, STARTUP
from harness.analysis.results import Results
from harness.analysis.scaling import SAVING_LABEL
from harness.report.plots.style import figure_title
from harness.schema import BASELINE, WORK_PHASES

PHASE_COLOR = dict(zip(WORK_PHASES, ["tab:green", "tab:blue", "tab:orange"], strict=True))
PHASE_COLOR |= {STARTUP: "tab:brown", OVERHEAD: "lightgrey"}
# A strategy's own phases take these in the order they appear.
EXTRA_PHASE_PALETTE = ["tab:purple", "tab:pink", "tab:olive", "tab:cyan", "tab:red", "tab:gray"]


def phase_colors(columns: Sequence[str]) -> dict[str, str]:
    """Fixed colours for the work phases, start-up and overhead; the palette for the rest."""
    extra = iter(EXTRA_PHASE_PALETTE * (len(columns) // len(EXTRA_PHASE_PALETTE) + 1))
    return {c: PHASE_COLOR[c] if c in PHASE_COLOR else next(extra) for c in columns}


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
    fig.suptitle(f"Where the time goes: {figure_title(results)}", fontsize=9)
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
                axes[i][j].text(
                    0.5,
                    0.5,
                    "not run",
                    ha="center",
                    va="center",
                    color="grey",
                    transform=axes[i][j].transAxes,
                )
                axes[i][j].set_xticks([])
                continue
            _loss_stack(axes[i][j], rows.sort_values("workers"), columns)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in LOSS_COLORS]
    fig.legend(handles, list(LOSSES.values()), loc="lower center", ncol=5, fontsize=7)
    fig.tight_layout(rect=(0, 0.1, 1, 0.95))
    fig.suptitle(f"Why efficiency is lost (pp of efficiency): {figure_title(results)}", fontsize=9)
    return fig


def _loss_stack(ax: plt.Axes, rows: pd.DataFrame, columns: list[str]) -> None:
    """The causes stacked, each with its interval as a whisker at its segment's end, the
    whiskers spread across the bar in the causes' order."""
    x = np.arange(len(rows))
    up, down = np.zeros(len(rows)), np.zeros(len(rows))
    for k, (column, color) in enumerate(zip(columns, LOSS_COLORS, strict=True)):
        values = rows[column].to_numpy(float)
        base = np.where(values >= 0, up, down)
        ax.bar(x, values, bottom=base, color=color, width=0.7)
        if f"{column}_low" in rows:
            half = (rows[f"{column}_high"] - rows[f"{column}_low"]).to_numpy(float) / 2
            at = x - 0.3 + 0.6 * k / max(1, len(columns) - 1)
            ax.errorbar(at, base + values, yerr=half, fmt="none", ecolor="black", elinewidth=0.5)
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
    fig.suptitle(f"Timelines of median runs: {figure_title(results)}", fontsize=9)
    return fig

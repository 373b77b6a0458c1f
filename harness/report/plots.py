"""plots/*.png: one line per strategy; saving solid, no saving dashed. Bars are 95% intervals,
the grey band is oversubscribed (more busy processes than usable cores), red rings are unstable
cells (CV > 5%)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from harness import models  # noqa: E402
from harness.analysis import per_run_speedups, phase_columns  # noqa: E402
from harness.report import ReportData  # noqa: E402

LINE = {True: "-", False: "--"}
MODE = {True: "saving", False: "no saving"}
SAVING_COLOR = {True: "tab:blue", False: "tab:orange"}
PHASE_COLOR = {
    "t_read_s": "tab:green", "t_augment_s": "tab:blue", "t_save_s": "tab:orange", "t_queue_put_s": "tab:purple",
    "t_startup_s": "tab:brown", "overhead_s": "lightgrey",
}


def _colors(strategies: list[str]) -> dict[str, str]:
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {s: cycle[n % len(cycle)] for n, s in enumerate(strategies)}


def _series(table: pd.DataFrame):  # noqa: ANN202
    """(strategy, saving, rows) for every line to draw, baselines left out."""
    lines = table[table["strategy"].ne("sequential") & table["time_s"].notna()]
    for (strategy, saving), rows in lines.groupby(["strategy", "saving"], sort=False):
        yield strategy, saving, rows.sort_values("workers")


def _workers_axis(ax: plt.Axes, workers: list[int]) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(workers, [str(w) for w in workers])
    ax.minorticks_off()
    ax.set_xlabel("workers")
    ax.grid(alpha=0.3)


def _shade_oversubscribed(ax: plt.Axes, data: ReportData, label: bool = True) -> None:
    """Grey band from halfway (in log2) between the last fitting and the first oversubscribed W."""
    over = sorted(set(data.table.loc[data.oversubscribed, "workers"]))
    if not over:
        return
    below = [w for w in data.table["workers"] if w < over[0]]
    start = np.sqrt(max(below) * over[0]) if below else over[0] / 1.2
    ax.axvspan(start, max(data.table["workers"]) * 1.3, color="grey", alpha=0.12, lw=0,
               label=f"oversubscribed (> {data.cores} cores)" if label else None)


def _errorbar(ax: plt.Axes, rows: pd.DataFrame, col: str, low: str, high: str, **style: object) -> None:
    y = rows[col].to_numpy(float)
    err = np.nan_to_num(np.vstack([y - rows[low].to_numpy(float), rows[high].to_numpy(float) - y]), nan=0.0).clip(min=0)
    ax.errorbar(rows["workers"], y, yerr=err, capsize=3, **style)


def _ring_unstable(ax: plt.Axes, rows: pd.DataFrame, col: str, label: bool) -> bool:
    shaky = rows[rows["unstable"].fillna(False).astype(bool)]
    if shaky.empty:
        return label
    ax.scatter(shaky["workers"], shaky[col], s=160, facecolors="none", edgecolors="red", linewidths=1.2,
               zorder=5, label="unstable (CV > 5%)" if label else None)
    return False


def strong_plots(data: ReportData) -> plt.Figure:
    table = data.table
    colors = _colors(data.strategies)
    workers = sorted(set(table["workers"]))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    time_ax, speed_ax, eff_ax = axes
    metrics = [(time_ax, "time_s", "ci_low", "ci_high"), (speed_ax, "speedup", "speedup_ci_low", "speedup_ci_high"),
               (eff_ax, "efficiency", "efficiency_ci_low", "efficiency_ci_high")]
    ring_label = {ax: True for ax in axes}
    for strategy, saving, rows in _series(table):
        style = {"color": colors[strategy], "linestyle": LINE[saving], "marker": "o"}
        label = f"{strategy} ({MODE[saving]})"
        for ax, col, low, high in metrics:
            _errorbar(ax, rows, col, low, high, label=label, **style)
            ring_label[ax] = _ring_unstable(ax, rows, col, ring_label[ax])
    for saving, t_seq in _baselines(table).items():
        time_ax.plot(workers, [t_seq / w for w in workers], color="grey", linestyle=LINE[saving], linewidth=1, label=f"ideal ({MODE[saving]})")
    speed_ax.plot(workers, workers, color="grey", linewidth=1, label="ideal")
    eff_ax.axhline(1.0, color="grey", linewidth=1)
    time_ax.set(ylabel="execution time [s]", title="Execution time (median, 95% CI)")
    speed_ax.set(ylabel="speedup  T_seq / T_W", title="Speedup")
    eff_ax.set(ylabel="efficiency  S / W", title="Efficiency", ylim=(0, max(1.1, _top(table["efficiency_ci_high"].fillna(table["efficiency"])))))
    for n, ax in enumerate(axes):
        _shade_oversubscribed(ax, data, label=n == 0)
        _workers_axis(ax, workers)
    _figure_legend(fig, axes)
    return fig


def _figure_legend(fig: plt.Figure, axes: object) -> None:
    """One legend below the panels, each label once, so no panel's data hides behind it."""
    found: dict[str, object] = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            found.setdefault(label, handle)
    fig.legend(list(found.values()), list(found), loc="lower center", ncol=min(len(found), 6), fontsize=8)
    rows = -(-len(found) // 6)
    fig.tight_layout(rect=(0, 0.045 * rows + 0.03, 1, 0.95))


def weak_plots(data: ReportData) -> plt.Figure:
    table = data.table
    colors = _colors(data.strategies)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ring = True
    for strategy, saving, rows in _series(table):
        _errorbar(ax, rows, "efficiency", "efficiency_ci_low", "efficiency_ci_high", color=colors[strategy],
                  linestyle=LINE[saving], marker="o", label=f"{strategy} ({MODE[saving]})")
        ring = _ring_unstable(ax, rows, "efficiency", ring)
    points = table[table["strategy"].ne("sequential")].drop_duplicates("workers").sort_values("workers")
    _shade_oversubscribed(ax, data)
    _workers_axis(ax, list(points["workers"]))
    ax.set_xticks(points["workers"], [f"{w}\n{x}x{y}" for w, x, y in zip(points["workers"], points["width"], points["height"], strict=True)], fontsize=8)
    ax.set_xlabel("workers / image size")
    ax.axhline(1.0, color="grey", linewidth=1, label="ideal")
    ax.set(ylabel="efficiency  T_seq(base) / T_W", title="Weak scaling efficiency (median, 95% CI)",
           ylim=(0, max(1.1, _top(table["efficiency_ci_high"].fillna(table["efficiency"])))))
    ax.legend(fontsize=7)
    return fig


def _baselines(table: pd.DataFrame) -> dict[bool, float]:
    rows = table[table["strategy"].eq("sequential") & table["time_s"].notna()]
    return dict(zip(rows["saving"], rows["time_s"], strict=True))


def _top(values: pd.Series) -> float:
    finite = values.dropna()
    return float(finite.max()) * 1.1 if len(finite) else 1.0


def phase_plots(data: ReportData) -> plt.Figure:
    """Stacked per-worker seconds per phase, one panel per saving mode and strategy."""
    phases = _with_oversubscription(data.phases, data)
    modes = [m for m in data.meta["config"]["saving"] if m in set(phases["saving"])]
    names = data.strategies
    fig, axes = plt.subplots(max(len(modes), 1), max(len(names), 1), figsize=(4 * len(names), 3.6 * max(len(modes), 1)), squeeze=False)
    parts = phase_columns(phases)
    for i, saving in enumerate(modes):
        base = phases[phases["strategy"].eq("sequential") & phases["saving"].eq(saving)]
        for j, name in enumerate(names):
            ax = axes[i][j]
            rows = pd.concat([base, phases[phases["strategy"].eq(name) & phases["saving"].eq(saving)].sort_values("workers")])
            ax.set_title(f"{name} ({MODE[saving]})", fontsize=9)
            if len(rows) == len(base):
                ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes, color="grey")
                ax.set_xticks([])
                continue
            _stack(ax, rows, parts)
    handles = [plt.Rectangle((0, 0), 1, 1, color=PHASE_COLOR.get(c, "grey")) for c, _ in parts]
    handles.append(plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="black", hatch="//"))
    fig.legend(handles, [label for _, label in parts] + [f"oversubscribed (> {data.cores} cores)"], loc="lower center", ncol=len(handles), fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    return fig


def _with_oversubscription(phases: pd.DataFrame, data: ReportData) -> pd.DataFrame:
    from harness.checks import cell_processes

    return phases.assign(over=(cell_processes(phases, data.runs) > data.cores).to_numpy())


def _stack(ax: plt.Axes, rows: pd.DataFrame, parts: list[tuple[str, str]]) -> None:
    x = np.arange(len(rows))
    bottom = np.zeros(len(rows))
    for col, _ in parts:
        height = rows[col].fillna(0).to_numpy(float)
        ax.bar(x, height, bottom=bottom, color=PHASE_COLOR.get(col, "grey"), width=0.7,
               hatch=["//" if o else "" for o in rows["over"]], edgecolor="white")
        bottom += height
    for xi, top, util in zip(x, bottom, rows["utilization"], strict=True):
        ax.text(xi, top, f"{util:.0%}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, ["seq" if s == "sequential" else str(w) for s, w in zip(rows["strategy"], rows["workers"], strict=True)])
    ax.set_xlabel("workers (label: utilization)", fontsize=8)
    ax.set_ylabel("seconds per worker", fontsize=8)
    ax.set_ylim(0, bottom.max() * 1.15 if bottom.max() > 0 else 1)
    ax.grid(axis="y", alpha=0.3)


def model_plots(data: ReportData) -> plt.Figure:
    """Per strategy: the per-run speedups and each fitted curve (strong) or scaled speedup (weak)."""
    points = per_run_speedups(data.runs, data.kind)
    names = data.strategies
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(4.5 * max(len(names), 1), 4), squeeze=False)
    by_series = {(s.strategy, s.saving): s for s in data.fits}
    top = int(points["workers"].max()) if len(points) else 1
    grid = np.geomspace(1, max(top, 2) * 1.2, 80)
    for ax, name in zip(axes[0], names, strict=True):
        for saving in data.meta["config"]["saving"]:
            series = by_series.get((name, saving))
            if series is None:
                continue
            color = SAVING_COLOR[saving]
            jitter = series.workers * (1 + 0.03 * (1 if saving else -1))
            ax.scatter(jitter, series.speedups, s=14, color=color, alpha=0.7, label=f"runs ({MODE[saving]})")
            for f in series.fits.values():
                curve = {"Amdahl": models.amdahl, "USL": models.usl, "Gustafson": models.gustafson}[f.model]
                ax.plot(grid, curve(grid, *f.params.values()), color=color, linestyle=":" if f.model == "Amdahl" else "-",
                        linewidth=1.2, label=f"{f.model} ({MODE[saving]})" + (" poor fit" if f.poor else ""))
        ax.plot(grid, grid, color="grey", linewidth=1, label="ideal")
        _shade_oversubscribed(ax, data)
        _workers_axis(ax, sorted(set(points["workers"])) or [1])
        ax.set_yscale("linear")
        ax.set(title=name, ylabel="speedup" if data.kind == "strong" else "scaled speedup  E x W",
               ylim=(0, max(2.0, float(points["speedup"].max()) * 1.3 if len(points) else 2.0)))
        ax.legend(fontsize=6)
    return fig


def _save(fig: plt.Figure, path: Path, title: str, tight: bool = True) -> Path:
    fig.suptitle(title, fontsize=9)
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(data: ReportData) -> list[Path]:
    out_dir = data.run_dir / "plots"
    out_dir.mkdir(exist_ok=True)
    title = f"{data.meta['config']['name']} on {data.meta['host']['cpu_model']} ({data.meta['host']['physical_cores']} physical cores)"
    scaling = strong_plots(data) if data.kind == "strong" else weak_plots(data)
    return [
        _save(scaling, out_dir / f"{data.kind}_scaling.png", title, tight=data.kind != "strong"),
        _save(phase_plots(data), out_dir / "phases.png", f"Where the time goes: {title}", tight=False),
        _save(model_plots(data), out_dir / "models.png", f"Scaling models: {title}"),
    ]

"""plots/*.png: one line per strategy; saving solid, no saving dashed."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from harness.report import ReportData  # noqa: E402

LINE = {True: "-", False: "--"}
MODE = {True: "saving", False: "no saving"}


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


def strong_plots(data: ReportData) -> plt.Figure:
    table = data.table
    colors = _colors(data.strategies)
    workers = sorted(set(table["workers"]))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    time_ax, speed_ax, eff_ax = axes
    for strategy, saving, rows in _series(table):
        style = {"color": colors[strategy], "linestyle": LINE[saving], "marker": "o"}
        label = f"{strategy} ({MODE[saving]})"
        time_ax.plot(rows["workers"], rows["time_s"], label=label, **style)
        speed_ax.plot(rows["workers"], rows["speedup"], label=label, **style)
        eff_ax.plot(rows["workers"], rows["efficiency"], label=label, **style)
    for saving, t_seq in _baselines(table).items():
        time_ax.plot(workers, [t_seq / w for w in workers], color="grey", linestyle=LINE[saving], linewidth=1, label=f"ideal ({MODE[saving]})")
    speed_ax.plot(workers, workers, color="grey", linewidth=1, label="ideal")
    eff_ax.axhline(1.0, color="grey", linewidth=1)
    time_ax.set(ylabel="execution time [s]", title="Execution time (median)")
    speed_ax.set(ylabel="speedup  T_seq / T_W", title="Speedup")
    eff_ax.set(ylabel="efficiency  S / W", title="Efficiency", ylim=(0, max(1.1, _top(table["efficiency"]))))
    for ax in axes:
        _workers_axis(ax, workers)
    time_ax.legend(fontsize=7)
    speed_ax.legend(fontsize=7)
    return fig


def weak_plots(data: ReportData) -> plt.Figure:
    table = data.table
    colors = _colors(data.strategies)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for strategy, saving, rows in _series(table):
        ax.plot(rows["workers"], rows["efficiency"], color=colors[strategy], linestyle=LINE[saving], marker="o", label=f"{strategy} ({MODE[saving]})")
    points = table[table["strategy"].ne("sequential")].drop_duplicates("workers").sort_values("workers")
    _workers_axis(ax, list(points["workers"]))
    ax.set_xticks(points["workers"], [f"{w}\n{x}x{y}" for w, x, y in zip(points["workers"], points["width"], points["height"], strict=True)], fontsize=8)
    ax.set_xlabel("workers / image size")
    ax.axhline(1.0, color="grey", linewidth=1, label="ideal")
    ax.set(ylabel="efficiency  T_seq(base) / T_W", title="Weak scaling efficiency", ylim=(0, max(1.1, _top(table["efficiency"]))))
    ax.legend(fontsize=7)
    return fig


def _baselines(table: pd.DataFrame) -> dict[bool, float]:
    rows = table[table["strategy"].eq("sequential") & table["time_s"].notna()]
    return dict(zip(rows["saving"], rows["time_s"], strict=True))


def _top(values: pd.Series) -> float:
    finite = values.dropna()
    return float(finite.max()) * 1.1 if len(finite) else 1.0


def write(data: ReportData) -> list[Path]:
    out_dir = data.run_dir / "plots"
    out_dir.mkdir(exist_ok=True)
    fig = strong_plots(data) if data.kind == "strong" else weak_plots(data)
    fig.suptitle(f"{data.meta['config']['name']} on {data.meta['host']['cpu_model']} ({data.meta['host']['physical_cores']} physical cores)", fontsize=9)
    fig.tight_layout()
    path = out_dir / f"{data.kind}_scaling.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]

"""The drift of a paired run, drawn: each saving mode's baseline visits over the sweep's
minutes, relative to their median, beside every cell's per-round speedup relative to its
centre: what the machine did, and what pairing left of it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from harness.analysis.results import Results
from harness.analysis.scaling import SAVING_LABEL
from harness.report.plots.style import figure_title
from harness.schema import BASELINE
from harness.stats.pairing import midpoints, round_ratios


def drift_plots(results: Results) -> plt.Figure:
    runs = results.runs[results.runs["round"].notna()]
    runs = runs.assign(minute=(midpoints(runs) - midpoints(runs).min()) / 60)
    ratios = round_ratios(runs).merge(
        runs[["cell_id", "round", "minute"]], on=["cell_id", "round"], how="left"
    )
    modes = [m for m in results.saving_modes if m in set(runs["saving"])]
    fig, axes = plt.subplots(1, max(len(modes), 1), figsize=(6 * max(len(modes), 1), 3.6))
    for ax, saving in zip(np.atleast_1d(axes), modes, strict=False):
        base = runs[runs["strategy"].eq(BASELINE) & runs["saving"].eq(saving)]
        base = base[base["status"].eq("ok")].sort_values("minute")
        ax.plot(
            base["minute"],
            base["wall_s"] / base["wall_s"].median(),
            "o-",
            color="black",
            label="baseline time / its median",
        )
        mine = ratios[ratios["saving"].eq(saving) & ratios["ratio"].notna()]
        centre = mine.groupby("cell_id")["ratio"].transform("median")
        ax.plot(
            mine["minute"],
            mine["ratio"] / centre,
            ".",
            color="tab:blue",
            alpha=0.6,
            label="paired speedup / its median",
        )
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_xlabel("minutes into the sweep")
        ax.set_title(SAVING_LABEL[bool(saving)])
        ax.legend(fontsize=8)
    fig.suptitle(figure_title(results) + ": drift and what pairing left")
    fig.tight_layout()
    return fig

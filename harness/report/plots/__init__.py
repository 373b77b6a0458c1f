"""The report's figures, one function per figure, each (results) -> matplotlib Figure; the
sections (harness.report.sections) say which figure goes where, and the report writer saves
them as plots/<file>.png.

One line per strategy; saving solid, no saving dashed. Bars are 95% intervals, the grey band is
oversubscribed (more busy processes than usable cores), red rings are unstable cells (CV > 5%).
Speedups are drawn on a log2 axis whose limits follow the measured points, so speedups of 1.5
stay readable beside an ideal line that runs to 64.

By topic: curves (scaling and models), costs (phases, losses, timelines), and style, what
every figure shares.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported anywhere below: no display needed

from harness.report.plots.costs import (  # noqa: E402
    EXTRA_PHASE_PALETTE,
    loss_bars,
    phase_colors,
    phase_plots,
    timeline,
    timelines,
)
from harness.report.plots.curves import model_plots, scaling, strong_plots, weak_plots  # noqa: E402
from harness.report.plots.style import log2_speedup_axis, save, speedup_limits  # noqa: E402

__all__ = [
    "EXTRA_PHASE_PALETTE",
    "log2_speedup_axis",
    "loss_bars",
    "model_plots",
    "phase_colors",
    "phase_plots",
    "save",
    "scaling",
    "speedup_limits",
    "strong_plots",
    "timeline",
    "timelines",
    "weak_plots",
]

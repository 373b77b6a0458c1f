"""How the report writes its numbers: seconds and percentages, intervals, the marks for
oversubscribed and unstable cells, and the saving mode's name. Shared by every section, so a
number reads the same wherever it appears."""

from __future__ import annotations

import pandas as pd

from harness.analysis import checks
from harness.analysis.results import Results
from harness.analysis.scaling import SAVING_LABEL

DASH = "—"


def fmt(value: float, kind: str = "s") -> str:
    if pd.isna(value):
        return DASH
    if kind == "pct":
        return f"{value * 100:.0f}%"
    if kind == "rate":  # images per second: three significant figures at any scale
        return f"{value:.3g}" if value < 1000 else f"{value:.0f}"
    return f"{value:.2f}"


def interval(value: float, low: float, high: float, kind: str = "s") -> str:
    """ "1.23 [1.20, 1.27]"; the bare value when there is no interval (n < 3)."""
    if pd.isna(value):
        return DASH
    if pd.isna(low):
        return fmt(value, kind)
    return f"{fmt(value, kind)} [{fmt(low, kind)}, {fmt(high, kind)}]"


def marks(results: Results, frame: pd.DataFrame | None = None) -> pd.Series:
    """Per row (of the scaling table, or of `frame`): "†" when oversubscribed, "~" when
    unstable (CV > 5%)."""
    table = results.table if frame is None else frame
    over = results.is_oversubscribed(table).map({True: checks.OVERSUBSCRIBED, False: ""})
    if "unstable" not in table:
        return over
    shaky = table["unstable"].fillna(False).astype(bool)
    return over + shaky.map({True: checks.UNSTABLE, False: ""})


def mode(saving: object) -> str:
    """ "saving" or "no saving": how the report names a saving mode."""
    return SAVING_LABEL[bool(saving)]

"""What paired rounds show (`order: rounds`, stats.pairing): how far the baseline drifted over
the sweep, how much pairing narrowed each speedup's interval, what the rounds cost beyond
sequential order, and paired comparisons of two strategies (or an A/A twin) measured in the same
rounds: "B is x% faster than A, +- y%", flagged when the Wilcoxon signed-rank test on the
per-round log-ratios gives p < 0.05."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from harness.schema import BASELINE, CELL_KEYS
from harness.stats.pairing import midpoints, ratio_interval, signed_rank_p, unpaired_interval
from harness.variants import twin_of

ALPHA = 0.05
PAIR_COLUMNS = ["a", "b", "saving", "workers", "width", "height", "rounds", "ratio", "low", "high"]
PAIR_COLUMNS += ["coverage", "p_value", "significant"]


def drift(runs: pd.DataFrame) -> pd.DataFrame:
    """Per saving mode: the baseline's visits, its first, fastest, slowest and last time, the
    spread slowest / fastest - 1, and the minutes the visits span."""
    ok = runs[runs["strategy"].eq(BASELINE) & runs["status"].eq("ok") & runs["round"].notna()]
    rows = []
    for saving, g in ok.assign(mid=midpoints(ok)).sort_values("mid").groupby("saving", sort=False):
        walls = g["wall_s"].to_numpy(dtype=float)
        rows.append(
            {
                "saving": saving,
                "visits": len(walls),
                "first_s": walls[0],
                "fastest_s": walls.min(),
                "slowest_s": walls.max(),
                "last_s": walls[-1],
                "spread": walls.max() / walls.min() - 1,
                "minutes": (g["mid"].iat[-1] - g["mid"].iat[0]) / 60,
            }
        )
    return pd.DataFrame(rows)


def visits_at_both_ends(runs: pd.DataFrame) -> bool:
    """Whether the run visited the baseline at each round's end as well as its start (paired
    rounds before the closing visit was shared with the next round's opening one)."""
    ok = runs[runs["round"].notna()]
    cells = ok[~ok["strategy"].eq(BASELINE)].groupby(["round", "saving"])["position"].max()
    base = ok[ok["strategy"].eq(BASELINE)].groupby(["round", "saving"])["position"].max()
    after = base.reindex(cells.index) > cells
    return bool(len(after)) and bool(after.mean() > 0.5)  # a failed end visit is not a design


def narrowing(table: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Per non-baseline cell of a paired run: its speedup's +- from the rounds (the table's),
    beside the +- of the same runs taken as if unpaired (stats.pairing.unpaired_interval)."""
    ok = runs[runs["status"].eq("ok")]
    walls = {k: g["wall_s"].to_numpy(dtype=float) for k, g in ok.groupby(CELL_KEYS, sort=False)}
    base = {k[1]: v for k, v in walls.items() if k[0] == BASELINE}
    rows = []
    for _, row in table[~table["strategy"].eq(BASELINE)].iterrows():
        key = tuple(row[k] for k in CELL_KEYS)
        centre, low, high = unpaired_interval(base.get(key[1], []), walls.get(key, []))
        unpaired = (high - low) / (2 * centre) if centre > 0 else np.nan
        spread = row["speedup_ci_high"] - row["speedup_ci_low"]
        rows.append(
            {
                **{k: row[k] for k in CELL_KEYS},
                "paired": spread / (2 * row["speedup"]) if row["speedup"] else np.nan,
                "unpaired": unpaired,
            }
        )
    return pd.DataFrame(rows)


def comparison_pairs(labels: list[str]) -> list[tuple[str, str]]:
    """The (A, B) label pairs a paired run compares: each A/A twin with its original when the
    run has twins, else every two strategies in config order."""
    twins = [(twin_of(b), b) for b in labels if twin_of(b) in labels]
    if twins:
        return twins  # type: ignore[return-value]
    plain = [label for label in labels if label != BASELINE]
    return list(itertools.combinations(plain, 2))


def compare_pairs(runs: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """One row per (A, B) pair and cell they share (same saving, W and size): T_A / T_B per
    round (above 1: B is faster), its Hodges-Lehmann centre, Wilcoxon interval, p and flag."""
    ok = runs[runs["status"].eq("ok") & runs["round"].notna()]
    at = {
        key: g.set_index("round")["wall_s"]
        for key, g in ok.groupby(["strategy", "saving", "workers", "width", "height"])
    }
    rows = []
    for a, b in comparison_pairs(labels):
        for key in [k for k in at if k[0] == a]:
            other = (b, *key[1:])
            if other in at:
                rows.append(_pair_row(a, b, key[1:], at[key], at[other]))
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def _pair_row(a: str, b: str, where: tuple, time_a: pd.Series, time_b: pd.Series) -> dict:
    both = pd.concat([time_a, time_b], axis=1, join="inner").dropna()
    ratios = (both.iloc[:, 0] / both.iloc[:, 1]).to_numpy(dtype=float)
    centre, low, high, coverage = ratio_interval(ratios)
    p = signed_rank_p(np.log(ratios)) if len(ratios) else np.nan
    return {
        "a": a,
        "b": b,
        **dict(zip(["saving", "workers", "width", "height"], where, strict=True)),
        "rounds": len(ratios),
        "ratio": centre,
        "low": low,
        "high": high,
        "coverage": coverage,
        "p_value": p,
        "significant": bool(p < ALPHA),
    }


def extra_machine_time(runs: pd.DataFrame, child_s: float, warmup: float) -> tuple[float, float]:
    """(the paired rounds' machine time, what sequential order would have taken for the same
    recorded runs of the cells), in seconds. Rounds: the spans from the first run's start to the
    last run's end, split where a gap between two runs exceeds ten minutes (a resume). Sequential:
    every ok run's wall time, the baseline as many times as the rounds its group ran, plus one
    child start and one warm-up (`warmup` run-equivalents) per cell."""
    ok = runs[runs["status"].eq("ok") & runs["round"].notna()]
    if ok.empty:
        return np.nan, np.nan
    start = midpoints(ok) - ok["wall_s"] / 2
    spans = pd.DataFrame({"start": start, "end": start + ok["wall_s"]}).sort_values("start")
    gap = spans["start"] - spans["end"].cummax().shift()
    session = (gap > 600).cumsum()
    used = (spans.groupby(session)["end"].max() - spans.groupby(session)["start"].min()).sum()
    cells = ok[~ok["strategy"].eq(BASELINE)]
    base = ok[ok["strategy"].eq(BASELINE)].groupby("saving")["wall_s"].median()
    rounds = cells.groupby("saving")["round"].nunique()
    medians = ok.groupby("cell_id")["wall_s"].median()
    sequential = cells["wall_s"].sum() + (base * rounds.reindex(base.index).fillna(0)).sum()
    sequential += len(medians) * child_s + (medians * warmup).sum()
    return float(used), float(sequential)

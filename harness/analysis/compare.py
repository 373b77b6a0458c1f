"""Two runs cell by cell: is B faster or slower than A, beyond the noise?

A cell differs significantly when the two-sided Mann-Whitney U test gives p < 0.05 and the
bootstrap 95% interval of median(B) / median(A) excludes 1. The exact test cannot give a small p
with few runs: its smallest two-sided p is 2 / C(n_a + n_b, n_a), 0.1 for 3 vs 3.

Both tests see only the noise inside each run. Two sessions of the same config differ by more
(the machine's speed moves between them), so where other run folders of the config measured on
this machine say how far a cell's median moves from session to session (sd of its log medians,
harness.plan.history.session_spread), a cell is flagged only when B/A also lies beyond
1.96 sqrt(2) sd of 1: the difference two sessions of unchanged code would show 95% of the time.
"""

from __future__ import annotations

from math import comb
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

from harness.analysis.cell_runs import ok_samples
from harness.analysis.scaling import SAVING_LABEL
from harness.plan.history import Spread, session_spread, siblings
from harness.rundir import store
from harness.rundir.meta import stored_config
from harness.schema import CELL_KEYS
from harness.stats import medians

ALPHA = 0.05
SESSIONS_Z = 1.96 * np.sqrt(2)  # a 95% band for the difference of two sessions
COLUMNS = CELL_KEYS + [
    "n_a",
    "n_b",
    "median_a",
    "median_b",
    "ratio",
    "ratio_ci_low",
    "ratio_ci_high",
    "p_value",
    "smallest_p",
    "session_sd",
    "significant",
]


def smallest_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p-value the exact Mann-Whitney test can reach with these counts."""
    if n_a == 0 or n_b == 0:
        return 1.0
    return min(1.0, 2.0 / comb(n_a + n_b, n_a))


def compare_runs(run_a: Path, run_b: Path, spread_from: list[Path] | None = None) -> pd.DataFrame:
    """One row per cell present in both runs (A's order): medians, B/A with its interval, p.
    The session-to-session spread comes from `spread_from`, by default the other run folders
    beside A and B."""
    runs_a, runs_b = (store.load_runs(store.require_run_dir(Path(r))) for r in (run_a, run_b))
    meta_a, meta_b = (store.read_meta(Path(r)) for r in (run_a, run_b))
    times_a, times_b = ok_samples(runs_a), ok_samples(runs_b)
    keys_b = set(runs_b[CELL_KEYS].itertuples(index=False, name=None))
    keys_a = dict.fromkeys(runs_a[CELL_KEYS].itertuples(index=False, name=None))
    folders = siblings(Path(run_a), Path(run_b)) if spread_from is None else spread_from
    spread = session_spread(folders, stored_config(meta_a).name, meta_a.get("host") or {})
    empty = np.array([])
    rows = [
        _compare_cell(k, times_a.get(k, empty), times_b.get(k, empty), spread)
        for k in keys_a
        if k in keys_b
    ]
    df = pd.DataFrame(rows, columns=COLUMNS)
    df.attrs.update(a=str(run_a), b=str(run_b), a_meta=meta_a, b_meta=meta_b, spread=spread)
    return df


def _compare_cell(key: tuple, a: np.ndarray, b: np.ndarray, spread: Spread | None) -> dict:
    low, high = medians.ratio_ci(b, a)
    p = float("nan")
    if len(a) and len(b):
        p = float(mannwhitneyu(b, a, alternative="two-sided").pvalue)
    median_a, median_b = medians.median(a), medians.median(b)
    ratio = median_b / median_a if median_a else float("nan")
    sd = spread.of(key) if spread else float("nan")
    beyond = not spread or abs(np.log(ratio)) > SESSIONS_Z * sd
    return {
        **dict(zip(CELL_KEYS, key, strict=True)),
        "n_a": len(a),
        "n_b": len(b),
        "median_a": median_a,
        "median_b": median_b,
        "ratio": ratio,
        "ratio_ci_low": low,
        "ratio_ci_high": high,
        "p_value": p,
        "smallest_p": smallest_p(len(a), len(b)),
        "session_sd": sd,
        "significant": bool(p < ALPHA and (low > 1 or high < 1) and beyond),
    }


def verdict(row: pd.Series) -> str:
    if row["smallest_p"] >= ALPHA:
        hint = ""
        if row["ratio_ci_low"] > 1 or row["ratio_ci_high"] < 1:
            hint = f"interval excludes 1 (B {'slower' if row['ratio'] > 1 else 'faster'}?), but "
        return hint + (
            f"cannot reach p < {ALPHA} with {row['n_a']} vs {row['n_b']} runs "
            f"(smallest p = {row['smallest_p']:.2g})"
        )
    if not row["significant"]:
        within = row["p_value"] < ALPHA and (row["ratio_ci_low"] > 1 or row["ratio_ci_high"] < 1)
        if within and pd.notna(row["session_sd"]):
            band = np.exp(SESSIONS_Z * row["session_sd"]) - 1
            return f"within the spread between sessions (+-{band:.1%})"
        return "no significant difference"
    return "B slower" if row["ratio"] > 1 else "B faster"


def format_compare(df: pd.DataFrame) -> str:
    """The comparison as text: a markdown table, then what differs between the two set-ups."""
    a, b = df.attrs.get("a", "A"), df.attrs.get("b", "B")
    lines = [f"A: {a}", f"B: {b}", ""]
    lines += _setup_differences(df.attrs.get("a_meta") or {}, df.attrs.get("b_meta") or {})
    lines += _spread_lines(df.attrs.get("spread"))
    head = [
        "strategy",
        "saving",
        "W",
        "size",
        "n A/B",
        "median A [s]",
        "median B [s]",
        "B/A [95% CI]",
        "p (MWU)",
        "verdict",
    ]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in df.iterrows():
        ci = "[n < 3]"
        if pd.notna(r["ratio_ci_low"]):
            ci = f"[{r['ratio_ci_low']:.3f}, {r['ratio_ci_high']:.3f}]"
        lines.append(
            "| "
            + " | ".join(
                [
                    r["strategy"],
                    SAVING_LABEL[bool(r["saving"])],
                    str(r["workers"]),
                    f"{r['width']}x{r['height']}",
                    f"{r['n_a']}/{r['n_b']}",
                    _num(r["median_a"]),
                    _num(r["median_b"]),
                    f"{_num(r['ratio'], 3)} {ci}",
                    _num(r["p_value"], 3),
                    verdict(r),
                ]
            )
            + " |"
        )
    if df.empty:
        lines.append("(no cell is present in both runs)")
    n_sig = int(df["significant"].sum()) if len(df) else 0
    unreachable = int((df["smallest_p"] >= ALPHA).sum()) if len(df) else 0
    lines += [
        "",
        f"{n_sig} of {len(df)} cells differ significantly (p < {ALPHA}, the interval excludes "
        "1, and beyond the spread between sessions where it is known).",
    ]
    if unreachable:
        lines.append(
            f"{unreachable} cell(s) cannot show a significant difference whatever the times: too "
            "few runs for the exact test (3 vs 3 gives p >= 0.1). Record 5 or more repeats per "
            "cell to compare runs."
        )
    return "\n".join(lines) + "\n"


def _spread_lines(spread: Spread | None) -> list[str]:
    if spread is None:
        return [
            "No session-to-session spread: fewer than 3 other run folders of this config on this "
            "machine, so cells are judged on the noise inside each run alone, which two sessions "
            "of unchanged code exceed (docs/STATISTICS.md).",
            "",
        ]
    band = np.exp(SESSIONS_Z * spread.typical) - 1
    return [
        f"Session-to-session spread of this config on this machine: a cell's median moves by "
        f"sd {spread.typical:.1%} (median over cells, {len(spread.folders)} other run folders); "
        f"a cell is flagged only beyond it (typically +-{band:.1%}).",
        "",
    ]


def _num(value: float, digits: int = 2) -> str:
    return "—" if pd.isna(value) else f"{value:.{digits}f}"


def _setup_differences(meta_a: dict, meta_b: dict) -> list[str]:
    if not meta_a or not meta_b:
        return []
    found = []
    for label, get in (
        (
            "host",
            lambda m: (m.get("host") or {}).get("cpu_model"),
        ),
        ("physical cores", lambda m: (m.get("host") or {}).get("physical_cores")),
        ("commit", lambda m: m.get("git_commit")),
        ("start method", lambda m: stored_config(m).start_method),
        ("cv2 threads", lambda m: stored_config(m).cv2_threads),
    ):
        if get(meta_a) != get(meta_b):
            found.append(f"- {label} differs: A {get(meta_a)}, B {get(meta_b)}")
    if not found:
        return []
    return ["Set-up differences (a difference may come from these, not from the code):", *found, ""]

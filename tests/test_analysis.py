"""scaling_table against the study's own published figures, and on synthetic repeats."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness import schema
from harness.analysis import cell_checks, study
from harness.analysis.phases import cores_busy_peaks, cores_busy_table, phase_columns, phase_table
from harness.analysis.results import load_results
from harness.analysis.scaling import (
    SAVING_LABEL,
    TABLE_COLUMNS,
    baselines,
    cell_medians,
    scaling_table,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "runs"
T_SEQ_STRONG_SAVING = 82.0677
T_SEQ_STRONG_NOSAVING = 76.373
# Per-run phase timings a real run stores beside wall_s; the paper has none (NaN here).
PHASE_COLUMNS = ["t_read_s", "t_augment_s", "t_save_s"]


def paper_runs(series: str) -> pd.DataFrame:
    """The paper's times as if they were one ok repeat per cell of a run."""
    df = study.load_paper()
    df = df[df["study"].eq(series) & df["strategy"].ne("P_Q1")].copy()
    size = df["size"].str.split("x", expand=True).astype(int)
    runs = pd.DataFrame(
        {
            "strategy": df["strategy"],
            "workers": df["ranks"].astype(int),
            "saving": df["saving"].astype(bool),
            "width": size[0],
            "height": size[1],
            "repeat": 0,
            "wall_s": df["time_s"].astype(float),
            "status": "ok",
            "error": "",
            **dict.fromkeys(PHASE_COLUMNS, float("nan")),
        }
    )
    return runs.reset_index(drop=True)


def paper_published(series: str) -> pd.DataFrame:
    df = study.load_paper()
    df = df[df["study"].eq(series) & df["strategy"].ne("P_Q1")]
    columns = ["strategy", "saving", "workers", "time_s", "published_speedup",
               "published_efficiency_pct"]
    return df.rename(columns={"ranks": "workers"})[columns]


def merged(series: str) -> pd.DataFrame:
    table = scaling_table(paper_runs(series), series)
    out = table.merge(paper_published(series), on=["strategy", "saving", "workers"],
                      suffixes=("", "_paper"))
    assert len(out) == len(table)
    return out


def test_paper_csv_has_both_studies():
    df = study.load_paper()
    assert {"strong", "weak"} <= set(df["study"])
    for series in ("strong", "weak"):
        rows = df[df["study"].eq(series)]
        assert set(rows["saving"]) == {True, False}
        assert (rows["strategy"].eq("sequential") & rows["ranks"].eq(1)).sum() == 2


@pytest.mark.parametrize("kind", ["strong", "weak"])
def test_table_shape_on_paper_data(kind):
    runs = paper_runs(kind)
    table = scaling_table(runs, kind)
    assert list(table.columns) == TABLE_COLUMNS
    assert len(table) == len(runs)
    assert (table["n_ok"] == 1).all() and (table["n_runs"] == 1).all()
    walls = table.merge(runs, on=["strategy", "saving", "workers"])["wall_s"]
    assert np.allclose(table["time_s"].to_numpy(), walls.to_numpy())
    # saving first, each mode's baseline at its head, then by workers
    assert table["saving"].tolist() == sorted(table["saving"], reverse=True)
    for saving in (True, False):
        block = table[table["saving"].eq(saving)]
        assert block.iloc[0]["strategy"] == "sequential"
        assert block["workers"].is_monotonic_increasing
        assert block.iloc[0]["speedup"] == pytest.approx(1.0)
        assert block.iloc[0]["efficiency"] == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["strong", "weak"])
def test_published_efficiencies_reproduced(kind):
    rows = merged(kind)
    printed = rows[rows["published_efficiency_pct"].notna()]
    assert len(printed) >= 20  # every non-baseline cell of both modes
    assert len(printed) == rows["strategy"].ne("sequential").sum()
    diff = (printed["efficiency"] * 100 - printed["published_efficiency_pct"]).abs()
    assert (diff <= 0.5 + 1e-9).all(), printed.assign(diff=diff)[diff > 0.5]


def test_weak_efficiency_and_scaled_speedup():
    table = scaling_table(paper_runs("weak"), "weak")
    row = table[table["strategy"].eq("P_1") & table["saving"] & table["workers"].eq(2)].iloc[0]
    assert row["efficiency"] == pytest.approx(7.3142 / 5.9363)
    assert row["speedup"] == pytest.approx(2 * 7.3142 / 5.9363)
    assert row["ideal_s"] == pytest.approx(7.3142)  # weak ideal: the base-size baseline
    nosave = table[table["strategy"].eq("P_2") & ~table["saving"] & table["workers"].eq(4)].iloc[0]
    assert nosave["efficiency"] == pytest.approx(6.7894 / 4.2989)  # its own (no-saving) baseline


def test_strong_saving_speedups_reproduced():
    rows = merged("strong")
    printed = rows[rows["saving"] & rows["published_speedup"].notna()]
    assert len(printed) == 18  # P_1, P_2, P_Q at 2..64
    diff = (printed["speedup"] - printed["published_speedup"]).abs()
    assert (diff <= 0.005 + 1e-9).all(), printed.assign(diff=diff)[diff > 0.005]
    assert np.allclose(printed["speedup"], T_SEQ_STRONG_SAVING / printed["time_s"])
    assert np.allclose(printed["efficiency"], printed["speedup"] / printed["workers"])
    assert np.allclose(printed["ideal_s"], T_SEQ_STRONG_SAVING / printed["workers"])


def test_strong_no_saving_speedups_use_own_baseline_unlike_the_paper():
    """Table 1's printed no-saving speedups divide by the *saving* baseline (82.07 s);
    we divide by the no-saving baseline (76.37 s), which is what its printed efficiencies use."""
    rows = merged("strong")
    nosave = rows[~rows["saving"] & rows["strategy"].ne("sequential")]
    assert len(nosave) == 12  # P_1, P_2 at 2..64; P_Q only saves
    strong = scaling_table(paper_runs("strong"), "strong")
    assert baselines(strong)[False] == pytest.approx(T_SEQ_STRONG_NOSAVING)
    # ours: own baseline
    assert np.allclose(nosave["speedup"], T_SEQ_STRONG_NOSAVING / nosave["time_s"])
    # the paper's printed speedups: the saving baseline, to rounding
    paper_way = T_SEQ_STRONG_SAVING / nosave["time_s"]
    assert ((paper_way - nosave["published_speedup"]).abs() <= 0.005 + 1e-9).all()
    # ... and so they differ from ours by the ratio of the two baselines
    assert ((nosave["published_speedup"] - nosave["speedup"]).abs() > 0.1).all()
    ratio = nosave["published_speedup"] / nosave["speedup"]
    assert np.allclose(ratio, T_SEQ_STRONG_SAVING / T_SEQ_STRONG_NOSAVING, atol=0.005)
    # while the printed efficiencies agree with our (own-baseline) efficiencies
    diff = (nosave["efficiency"] * 100 - nosave["published_efficiency_pct"]).abs()
    assert (diff <= 0.5 + 1e-9).all()
    # the example from the reference notes: P_1 at 2 ranks
    p1 = nosave[nosave["strategy"].eq("P_1") & nosave["workers"].eq(2)].iloc[0]
    assert round(p1["speedup"], 2) == 1.55 and p1["published_speedup"] == 1.67


# ---------------------------------------------------------------- synthetic repeats


def synthetic_runs() -> pd.DataFrame:
    nan = float("nan")
    rows = []

    def add(strategy: str, workers: int, saving: bool, walls: list[float],
            statuses: list[str]) -> None:
        for r, (wall, status) in enumerate(zip(walls, statuses, strict=True)):
            rows.append({
                "strategy": strategy, "workers": workers, "saving": saving, "width": 160,
                "height": 80, "repeat": r, "wall_s": wall, "status": status,
                "error": "" if status == "ok" else "boom",
                **dict.fromkeys(PHASE_COLUMNS, float("nan")),
            })

    add("sequential", 1, True, [10.0, 30.0, 11.0], ["ok"] * 3)  # median 11, not the mean 17
    add("P_1", 2, True, [5.0, nan, 6.0], ["ok", "failed", "ok"])  # median of the ok ones: 5.5
    add("P_2", 2, True, [4.0, 0.1, 8.0], ["ok", "failed", "ok"])  # a failed run that has a time
    add("P_1", 4, True, [nan, nan, nan], ["timeout", "failed", "timeout"])  # none ok
    add("sequential", 1, False, [9.0, 8.0, 100.0], ["ok"] * 3)  # median 9
    add("P_1", 2, False, [3.0, 4.5, 6.0], ["ok"] * 3)  # median 4.5
    return pd.DataFrame(rows)


def _cell(table: pd.DataFrame, strategy: str, workers: int, saving: bool) -> pd.Series:
    keep = table["strategy"].eq(strategy) & table["workers"].eq(workers)
    rows = table[keep & table["saving"].eq(saving)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_cell_medians_use_median_of_ok_runs():
    cells = cell_medians(synthetic_runs())
    assert len(cells) == 6
    seq = _cell(cells, "sequential", 1, True)
    assert seq["time_s"] == 11.0 and seq["n_ok"] == 3 and seq["n_runs"] == 3


def test_strong_synthetic_medians_and_failed_runs():
    table = scaling_table(synthetic_runs(), "strong")
    assert list(table.columns) == TABLE_COLUMNS
    assert len(table) == 6

    seq = _cell(table, "sequential", 1, True)
    assert seq["time_s"] == 11.0 and seq["speedup"] == 1.0

    p1 = _cell(table, "P_1", 2, True)
    assert p1["time_s"] == 5.5
    assert (p1["n_ok"], p1["n_runs"]) == (2, 3)
    assert p1["speedup"] == pytest.approx(2.0)
    assert p1["efficiency"] == pytest.approx(1.0)
    assert p1["ideal_s"] == pytest.approx(5.5)

    p2 = _cell(table, "P_2", 2, True)
    assert p2["time_s"] == 6.0  # the failed run's 0.1 s is not counted
    assert (p2["n_ok"], p2["n_runs"]) == (2, 3)

    none_ok = _cell(table, "P_1", 4, True)
    assert (none_ok["n_ok"], none_ok["n_runs"]) == (0, 3)
    assert math.isnan(none_ok["time_s"]) and math.isnan(none_ok["speedup"])
    assert math.isnan(none_ok["efficiency"])
    assert none_ok["ideal_s"] == pytest.approx(11.0 / 4)

    nosave = _cell(table, "P_1", 2, False)
    assert nosave["time_s"] == 4.5
    assert nosave["speedup"] == pytest.approx(9.0 / 4.5)  # its own baseline, not the saving one
    assert baselines(table) == {True: 11.0, False: 9.0}


def test_weak_synthetic():
    table = scaling_table(synthetic_runs(), "weak")
    p1 = _cell(table, "P_1", 2, True)
    assert p1["efficiency"] == pytest.approx(11.0 / 5.5)
    assert p1["speedup"] == pytest.approx(2 * 11.0 / 5.5)
    assert p1["ideal_s"] == pytest.approx(11.0)


def test_int_counts_and_bool_saving():
    table = scaling_table(synthetic_runs(), "strong")
    assert table["n_ok"].tolist() == [int(x) for x in table["n_ok"]]
    assert set(table["saving"]) == {True, False}


def test_minimal_columns_without_phase_timings():
    """A run folder whose runs all timed out or failed stores no phase columns (t_read_s, ...):
    the runner only adds them from a finished run. scaling_table must still work on the rows
    every run has, so the report of such a run can be written."""
    runs = synthetic_runs().drop(columns=PHASE_COLUMNS)
    table = scaling_table(runs, "strong")
    assert _cell(table, "P_1", 2, True)["time_s"] == 5.5
    timed_out = runs.assign(status="timeout", wall_s=float("nan"))
    table = scaling_table(timed_out, "strong")
    assert table["time_s"].isna().all()
    assert (table["n_ok"] == 0).all() and (table["n_runs"] == 3).all()


# ---------------------------------------------------------------- columns, phases, cores busy


def test_table_columns_are_the_schemas():
    checks_add = ("processes", "oversubscribed")
    assert TABLE_COLUMNS == [c for c in schema.TABLE_COLUMNS if c not in checks_add]
    assert SAVING_LABEL == {True: "saving", False: "no saving"}


def _runs_with(**columns: object) -> pd.DataFrame:
    runs = synthetic_runs().fillna({c: 0.0 for c in PHASE_COLUMNS})
    runs["t_read_s"], runs["t_augment_s"] = 0.1, runs["wall_s"] * runs["workers"] * 0.5
    return runs.assign(**columns)


def test_phase_table_stacks_the_phases_it_is_given():
    """A strategy's own phase column is stacked only when the caller names it (from the
    registry); the label comes with it, and the parts still add up to the wall time."""
    runs = _runs_with(t_hand_off_s=0.2, t_dispatch_s=0.3)
    plain = phase_table(runs)
    assert "t_hand_off_s" not in plain
    extra = {"t_hand_off_s": "hand-off"}
    table = phase_table(runs, extra, in_process={"sequential", "P_2"})
    parts = phase_columns(table, extra)
    assert ("t_hand_off_s", "hand-off") in parts and parts[-1] == ("overhead_s", "overhead/idle")
    p1 = table[table["strategy"].eq("P_1") & table["workers"].eq(2) & table["saving"]].iloc[0]
    assert p1["t_hand_off_s"] == pytest.approx(0.1)  # seconds per worker: 0.2 / 2
    cols = [c for c, _ in parts]
    assert table[cols].sum(axis=1).to_numpy() == pytest.approx(table["wall_s"].to_numpy())
    # in-process strategies' main-process CPU is their workers' own: no dispatch figure
    assert table.loc[table["strategy"].isin(["sequential", "P_2"]), "t_dispatch_s"].isna().all()
    assert (table.loc[table["strategy"].eq("P_1"), "t_dispatch_s"] == 0.3).all()


def test_cores_busy_is_the_median_over_ok_runs():
    runs = _runs_with(t_cpu_s=0.0, steal_s=0.01)
    runs["t_cpu_s"] = runs["wall_s"] * runs["workers"] * 0.9
    seq = runs["strategy"].eq("sequential") & runs["saving"]
    runs.loc[seq, "t_cpu_s"] = runs.loc[seq, "wall_s"] * [1.0, 0.5, 0.9]  # median 0.9
    table = cores_busy_table(runs)
    assert list(table.columns) == ["strategy", "saving", "workers", "width", "height",
                                   "cores_busy", "steal_s"]
    first = table.iloc[0]
    assert (first["strategy"], bool(first["saving"])) == ("sequential", True)
    assert first["cores_busy"] == pytest.approx(0.9)
    p1 = table[table["strategy"].eq("P_1") & table["workers"].eq(2) & table["saving"]].iloc[0]
    assert p1["cores_busy"] == pytest.approx(1.8)  # its failed run does not count
    assert table[table["strategy"].eq("P_1") & table["workers"].eq(4)].empty  # no ok run
    peaks = cores_busy_peaks(table)
    assert list(peaks["strategy"]) == ["sequential", "P_1", "P_2"]
    assert peaks.set_index("strategy").loc["P_1", "cores_busy"] == pytest.approx(1.8)


def test_cores_busy_is_none_without_cpu_time():
    assert cores_busy_table(_runs_with()) is None
    assert cores_busy_table(_runs_with(t_cpu_s=float("nan"))) is None
    assert "steal_s" not in cores_busy_table(_runs_with(t_cpu_s=1.0))


# ---------------------------------------------------------------- warnings from the table


def _speedup_table() -> tuple[pd.DataFrame, pd.Series]:
    """A strong table: the baseline, P_T at W=2 just above W (its interval reaching below),
    P_1 at W=2 below W, P_2 at W=2 wholly above W, and P_Q at W=4 above W but oversubscribed."""
    rows = [
        ("sequential", 1, 1.00, 0.98, 1.02, False),
        ("P_T", 2, 2.03, 1.94, 2.34, False),
        ("P_1", 2, 1.90, 1.85, 1.95, False),
        ("P_2", 2, 2.20, 2.10, 2.30, False),
        ("P_Q", 4, 4.40, 4.10, 4.60, True),
    ]
    table = pd.DataFrame(
        [
            {"strategy": s, "workers": w, "saving": True, "speedup": sp, "speedup_ci_low": lo,
             "speedup_ci_high": hi, "efficiency": sp / w, "efficiency_ci_low": lo / w,
             "efficiency_ci_high": hi / w}
            for s, w, sp, lo, hi, _ in rows
        ]
    )
    return table, pd.Series([over for *_, over in rows])


def test_a_speedup_above_w_within_the_cores_is_called_implausible_with_its_fix():
    table, over = _speedup_table()
    (found,) = cell_checks.implausible_speedups(table, over, "strong", paired=False, cores=2)
    assert found.startswith("2 cell(s) report a speedup above W on W usable cores")
    assert "P_T W=2 (saving) 2.03 [1.94, 2.34];" in found  # its interval reaches W: listed
    assert "P_2 W=2 (saving) 2.20 [2.10, 2.30], its whole interval above W" in found
    assert "P_1" not in found and "P_Q" not in found and "sequential W=" not in found
    assert "baseline measured at another speed" in found and "Fix: `order: rounds`" in found
    (paired,) = cell_checks.implausible_speedups(table, over, "strong", paired=True, cores=2)
    assert "`repeats.max`" in paired and "order: rounds" not in paired
    assert cell_checks.implausible_speedups(table, over, "weak", paired=False, cores=2) == []
    below = table.assign(efficiency=table["efficiency"].clip(upper=0.99))
    assert cell_checks.implausible_speedups(below, over, "strong", paired=False, cores=2) == []
    # on 4 cores, W = 2 leaves the main process a core: a speedup above 2 can be real
    assert cell_checks.implausible_speedups(table, over, "strong", paired=False, cores=4) == []


def test_intervals_outside_paired_rounds_are_said_to_hold_within_the_session():
    table, _ = _speedup_table()
    (found,) = cell_checks.session_only_intervals(table, paired=False, order="sequential")
    assert "`order: sequential`" in found and "within this session only" in found
    assert "Fix: `order: rounds`" in found
    (unnamed,) = cell_checks.session_only_intervals(table, paired=False, order=None)
    assert unnamed.startswith("This run (not in paired rounds)")
    assert cell_checks.session_only_intervals(table, paired=True, order=None) == []
    no_intervals = table.assign(speedup_ci_low=float("nan"))
    assert cell_checks.session_only_intervals(no_intervals, False, "sequential") == []


@pytest.mark.parametrize(
    "run, session_only",
    [("strong_scaling/sequential", True), ("quick_strong/paired", False)],
)
def test_the_report_warns_of_session_only_intervals_from_the_runs(run, session_only):
    results = load_results(FIXTURES / run)
    warned = any("within this session only" in w for w in results.warnings)
    assert warned == session_only

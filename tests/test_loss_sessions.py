"""harness.analysis.loss_sessions without processes: each cause's between-session level
recovered from sessions of known spread, the folders it is read from, the widened intervals, and
the cold start / steady state split judged again on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as t_dist
from test_session_level import paired_meta

from harness.analysis import losses
from harness.analysis.loss_sessions import (
    CSV_COLUMNS,
    LONG,
    NOT_ACROSS,
    RUN_COLUMNS,
    SESSIONS,
    CauseLevels,
    across_sessions,
    cause_levels,
    cell_level,
    estimates,
)
from harness.analysis.session_level import Z
from harness.report.sections.costs import SPLIT_UNAVAILABLE, sessions_text
from harness.rundir import store
from harness.rundir.meta import run_meta as typed

CORES = 2
RUNS = 6
T = float(t_dist.ppf(0.975, RUNS - 1))
CELL = ("P_1", True, 2, 100, 100)  # loss_rows' first cell


def loss_rows(values: list[dict[str, float]], se: float = 0.2) -> pd.DataFrame:
    """A loss table of P_1 at W = 2 with saving, one row per entry of `values` (a cell each, by
    image width), every cause given or 0, each interval +-t se over RUNS runs, the split kept."""
    rows = []
    for n, given in enumerate(values):
        row = {"strategy": "P_1", "saving": True, "workers": 2, "width": 100 + n, "height": 100}
        for cause in losses.CAUSES:
            value = given.get(cause, 0.0)
            row |= {cause: value, f"{cause}_low": value - T * se, f"{cause}_high": value + T * se}
        rows.append(row | {"runs_accounted": RUNS, losses.SPLIT_REASON: ""})
    return pd.DataFrame(rows)


def sessions_of(rng: np.random.Generator, sessions: int, sd: float, se: float) -> pd.DataFrame:
    """LONG rows of one cause in one cell: 2 pp, + N(0, sd) per session, + N(0, se)."""
    values = 2 + rng.normal(0, sd, sessions) + rng.normal(0, se, sessions)
    return pd.DataFrame(
        [(*CELL, f"session {s}", "loss_gaps_pp", v, se) for s, v in enumerate(values)],
        columns=LONG,
    )


def test_a_cells_level_recovers_a_known_spread_between_sessions():
    rng = np.random.default_rng(0)
    found = [cell_level(sessions_of(rng, 8, 0.5, 0.1)) for _ in range(200)]
    assert all(n == 8 for _, n in found)
    assert np.sqrt(np.mean([sd**2 for sd, _ in found])) == pytest.approx(0.5, rel=0.1)


def test_a_spread_that_the_sessions_own_intervals_explain_leaves_little_level():
    rng = np.random.default_rng(1)
    found = [cell_level(sessions_of(rng, 8, 0.0, 0.5))[0] for _ in range(200)]
    assert np.median(found) == 0.0


def test_a_cell_seen_in_fewer_than_four_sessions_has_no_level():
    assert cell_level(sessions_of(np.random.default_rng(2), 3, 0.5, 0.1)) is None


@pytest.mark.parametrize("sd, se", [(0.5, 0.1), (0.3, 0.3), (0.0, 0.3)])
def test_a_sessions_widened_interval_holds_the_cells_value_at_its_level(sd, se):
    """The newest of four sessions, widened by the level the four give: its interval holds the
    cell's value across sessions (2 pp here) in at least 93% of 600 simulated cells, whether the
    sessions or the runs spread more."""
    rng = np.random.default_rng(3)
    held = 0
    for _ in range(600):
        rows = sessions_of(rng, 4, sd, se)
        level, _ = cell_level(rows)
        held += abs(rows["value"].iloc[-1] - 2) <= np.hypot(T * se, Z * level)
    assert held / 600 >= 0.93


def test_estimates_read_the_within_run_interval_where_a_table_keeps_it():
    table = across_sessions(loss_rows([{"loss_gaps_pp": 2.0}], se=0.2), None)
    table["loss_gaps_pp_low"], table["loss_gaps_pp_high"] = -10.0, 14.0  # as if widened
    found = estimates(table, "x", CORES).set_index("cause").loc["loss_gaps_pp"]
    assert found["value"] == 2.0 and found["se"] == pytest.approx(0.2)


def test_cells_beyond_the_cores_or_of_one_run_give_no_estimate():
    table = loss_rows([{}, {}])
    table.loc[0, "workers"] = 4
    table.loc[1, "runs_accounted"] = 1
    assert estimates(table, "x", CORES).empty


# ---------------------------------------------------------------- the intervals across sessions


def levels_of(sd: dict[str, float], sessions: int = 3) -> CauseLevels:
    return CauseLevels({(c, *CELL): (v, sessions) for c, v in sd.items()}, sessions, ())


def test_a_cell_without_a_level_keeps_its_runs_interval_and_split():
    table = loss_rows([{"loss_gaps_pp": 2.0, "cpu_cold_start_pp": 5.0}, {}])
    table.loc[1, "workers"] = 4
    out = across_sessions(table, levels_of(dict.fromkeys(losses.LOSS_COLUMNS, 0.3)))
    assert out[SESSIONS].tolist() == [3, 0]
    assert out["loss_gaps_pp_high"].iloc[1] == table["loss_gaps_pp_high"].iloc[1]
    assert out[losses.SPLIT_REASON].iloc[1] == ""


def test_without_a_level_the_table_is_unchanged_and_keeps_its_within_run_columns():
    table = loss_rows([{"loss_gaps_pp": 2.0, "cpu_cold_start_pp": 5.0}])
    out = across_sessions(table, None)
    assert set(CSV_COLUMNS) - set(losses.TABLE_COLUMNS) == {SESSIONS, *RUN_COLUMNS}
    pd.testing.assert_frame_equal(out[table.columns], table)
    assert (out[SESSIONS] == 0).all()
    assert out["loss_gaps_pp_run_low"].iloc[0] == table["loss_gaps_pp_low"].iloc[0]
    assert out["cpu_cold_start_pp_run"].iloc[0] == 5.0


def test_each_side_widens_in_quadrature_with_its_causes_level():
    table = loss_rows([{"loss_gaps_pp": 2.0}], se=0.2)
    out = across_sessions(table, levels_of(dict.fromkeys(losses.CAUSES, 0.3)))
    half = float(out["loss_gaps_pp_high"].iloc[0] - 2.0)
    assert half == pytest.approx(np.hypot(T * 0.2, Z * 0.3))
    assert out["loss_gaps_pp_run_high"].iloc[0] == pytest.approx(2.0 + T * 0.2)
    assert (out[SESSIONS] == 3).all()
    assert out[losses.SPLIT_REASON].iloc[0] == ""  # both parts still within +-2 pp


def test_a_split_part_that_moves_between_sessions_is_not_reported():
    table = loss_rows([{"cpu_cold_start_pp": 7.0, "cpu_steady_pp": 1.0}], se=0.2)
    sd = dict.fromkeys(losses.CAUSES, 0.1) | {"cpu_cold_start_pp": 1.5, "cpu_steady_pp": 1.5}
    out = across_sessions(table, levels_of(sd, 6)).iloc[0]
    assert out[losses.SPLIT_REASON] == losses.NOT_SEPARABLE
    assert pd.isna(out["cpu_cold_start_pp"]) and pd.isna(out["cpu_steady_pp_high"])
    assert out["cpu_cold_start_pp_run"] == 7.0  # the next session's level still sees it


def test_a_split_no_earlier_session_measured_is_not_reported():
    table = loss_rows([{"cpu_cold_start_pp": 7.0, "cpu_steady_pp": 1.0}], se=0.2)
    out = across_sessions(table, levels_of(dict.fromkeys(losses.LOSS_COLUMNS, 0.1))).iloc[0]
    assert out[losses.SPLIT_REASON] == NOT_ACROSS
    assert pd.isna(out["cpu_cold_start_pp"])
    assert "never measured the two parts apart" in SPLIT_UNAVAILABLE[NOT_ACROSS]


# ---------------------------------------------------------------- the folders it reads


def loss_folder(parent: Path, name: str, started: str, gaps: float, cpu: str = "Synthetic CPU"):
    run_dir = parent / name
    (run_dir / "tables").mkdir(parents=True)
    meta = paired_meta(started, cpu=cpu)
    store.write_meta(run_dir, meta)
    store.replace_runs(
        run_dir, [{"cell_id": "P_1", "repeat": 0, "status": "ok", "wall_s": 1.0, "round": 0}]
    )
    table = across_sessions(loss_rows([{"loss_gaps_pp": gaps}], se=0.05), None)
    table.reindex(columns=CSV_COLUMNS).to_csv(run_dir / "tables" / "strong_loss.csv", index=False)
    return run_dir


def test_the_level_comes_from_earlier_paired_folders_of_this_config_on_this_machine(tmp_path):
    earlier = [
        loss_folder(tmp_path, "a", "2026-01-01T00:00:00+00:00", 1.0),
        loss_folder(tmp_path, "b", "2026-01-02T00:00:00+00:00", 2.0),
        loss_folder(tmp_path, "c", "2026-01-02T12:00:00+00:00", 4.0),
    ]
    loss_folder(tmp_path, "later", "2026-01-04T00:00:00+00:00", 9.0)
    loss_folder(tmp_path, "elsewhere", "2026-01-01T00:00:00+00:00", -9.0, cpu="Another CPU")
    meta = typed(paired_meta("2026-01-03T00:00:00+00:00"))
    table = loss_rows([{"loss_gaps_pp": 3.0}], se=0.05)
    found = cause_levels(tmp_path / "this", meta, table, CORES)
    assert found is not None
    assert set(found.folders) == {p.resolve() for p in earlier} and found.sessions == 4
    expected = np.sqrt(np.var([1.0, 2.0, 4.0, 3.0], ddof=1) - 0.05**2)
    assert found.at("loss_gaps_pp", CELL) == (pytest.approx(expected), 4)
    assert "(4: this run and 3 earlier" in sessions_text(found)


def test_fewer_than_four_sessions_give_no_level(tmp_path):
    loss_folder(tmp_path, "a", "2026-01-01T00:00:00+00:00", 1.0)
    loss_folder(tmp_path, "b", "2026-01-02T00:00:00+00:00", 2.0)
    meta = typed(paired_meta("2026-01-03T00:00:00+00:00"))
    table = loss_rows([{"loss_gaps_pp": 3.0}])
    assert cause_levels(tmp_path / "this", meta, table, CORES) is None
    assert "not what varies between sessions" in sessions_text(None)

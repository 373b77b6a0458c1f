"""harness.analysis.session_level without processes: the between-session level recovered from
sessions of known spread, the folders it is taken from (earlier, paired, this config, this
machine), a resumed run's sessions counted one by one, and the interval across sessions."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import run_meta
from test_pairing import drifting_sweep

from harness.analysis.scaling import scaling_table
from harness.analysis.session_level import (
    COLUMNS,
    Between,
    Z,
    across_sessions,
    between_sessions,
    own_estimates,
    pooled_between,
)
from harness.report.sections.paired import _narrowing_table, _sessions
from harness.rundir import store
from harness.rundir.meta import run_meta as typed
from harness.schema import BASELINE, Cell

CORES = 2


def estimates(rng: np.random.Generator, cells: int, sessions: int, sd: float, se: float):
    """Per cell and session: log speedup = the cell's own + N(0, sd) + N(0, se), the session's
    interval saying se."""
    rows = []
    for c in range(cells):
        truth = np.log(1.5 + 0.01 * c)
        for s in range(sessions):
            x = truth + rng.normal(0, sd) + rng.normal(0, se)
            rows.append(("P_1", c % 2 == 0, c, f"session {s}", x, se))
    frame = pd.DataFrame(rows, columns=["strategy", "saving", "workers", *COLUMNS[5:]])
    return frame.assign(width=200, height=100)[COLUMNS]


def test_the_pooled_level_recovers_a_known_spread_between_sessions():
    found, cells = pooled_between(estimates(np.random.default_rng(0), 60, 3, 0.02, 0.005))
    assert cells == 60
    assert found == pytest.approx(0.02, rel=0.15)


def test_a_spread_that_the_sessions_own_intervals_explain_leaves_no_level():
    found, _ = pooled_between(estimates(np.random.default_rng(1), 60, 3, 0.0, 0.02))
    assert found < 0.006


def test_a_cell_seen_in_one_session_says_nothing():
    frame = estimates(np.random.default_rng(2), 5, 1, 0.02, 0.005)
    assert pooled_between(frame) == (pytest.approx(np.nan, nan_ok=True), 0)


def test_the_interval_across_sessions_widens_each_side_in_quadrature():
    between = Between(sd=0.01, sessions=3, cells=4, folders=(), own_sessions=1)
    low, high = between.widen(1.7, 1.7 * np.exp(-0.02), 1.7 * np.exp(0.03))
    assert np.log(1.7 / low) == pytest.approx(np.hypot(0.02, Z * 0.01))
    assert np.log(high / 1.7) == pytest.approx(np.hypot(0.03, Z * 0.01))
    twice = Between(sd=0.01, sessions=3, cells=4, folders=(), own_sessions=2)
    assert twice.widen(1.7, 1.6, 1.8)[1] < between.widen(1.7, 1.6, 1.8)[1]
    none = Between(sd=0.0, sessions=3, cells=4, folders=(), own_sessions=1)
    assert none.widen(1.7, 1.6, 1.8) == pytest.approx((1.6, 1.8))


# ---------------------------------------------------------------- the folders it reads


def paired_meta(started: str, cpu: str = "Synthetic CPU", order: str = "rounds") -> dict:
    meta = run_meta("strong", workers=[1, 2], strategies=["P_1", "P_2"])
    meta["config"] = {**meta["config"], "order": order}
    meta["config"]["repeats"] = {"min": 3, "max": 9, "ci": 0.03}
    meta["host"] = {**meta["host"], "cpu_model": cpu, "physical_cores": CORES}
    meta["started_at"] = started
    return meta


def folder(parent: Path, name: str, meta: dict, speedups: dict[str, float]) -> Path:
    """A run folder holding only meta.json, tables/strong.csv (P_1 and P_2 at W = 2) and one
    stored run, with a round when its order pairs (paired is read from the runs)."""
    run_dir = parent / name
    (run_dir / "tables").mkdir(parents=True)
    store.write_meta(run_dir, meta)
    paired = meta["config"]["order"] in ("rounds", "race")
    run = {"cell_id": "P_1", "repeat": 0, "status": "ok", "wall_s": 1.0}
    store.replace_runs(run_dir, [{**run, "round": 0 if paired else None}])
    table_of(speedups).to_csv(run_dir / "tables" / "strong.csv", index=False)
    return run_dir


def table_of(speedups: dict[str, float], half: float = 0.01) -> pd.DataFrame:
    rows = [{"strategy": BASELINE, "saving": True, "workers": 1, "speedup": 1.0}]
    rows += [
        {"strategy": s, "saving": True, "workers": 2, "speedup": v} for s, v in speedups.items()
    ]
    table = pd.DataFrame(rows).assign(width=200, height=100)
    return table.assign(
        speedup_ci_low=table["speedup"] * np.exp(-half),
        speedup_ci_high=table["speedup"] * np.exp(half),
    )


def test_the_level_comes_from_earlier_paired_folders_of_this_config_on_this_machine(tmp_path):
    now = "2026-01-03T00:00:00+00:00"
    earlier = [
        folder(tmp_path, "a", paired_meta("2026-01-01T00:00:00+00:00"), {"P_1": 1.70, "P_2": 1.65}),
        folder(tmp_path, "b", paired_meta("2026-01-02T00:00:00+00:00"), {"P_1": 1.76, "P_2": 1.71}),
    ]
    folder(tmp_path, "later", paired_meta("2026-01-04T00:00:00+00:00"), {"P_1": 2.5, "P_2": 2.5})
    seq = paired_meta("2026-01-01T00:00:00+00:00", order="sequential")
    folder(tmp_path, "sequential", seq, {"P_1": 1.2, "P_2": 1.2})
    other = paired_meta("2026-01-01T00:00:00+00:00", cpu="Another CPU")
    folder(tmp_path, "elsewhere", other, {"P_1": 1.2, "P_2": 1.2})
    renamed = copy.deepcopy(paired_meta("2026-01-01T00:00:00+00:00"))
    renamed["config"]["name"] = "another_config"
    folder(tmp_path, "renamed", renamed, {"P_1": 1.2, "P_2": 1.2})

    meta = typed(paired_meta(now))
    table = table_of({"P_1": 1.73, "P_2": 1.68})
    found = between_sessions(tmp_path / "this", meta, pd.DataFrame(), table, CORES)
    assert found is not None
    assert set(found.folders) == {p.resolve() for p in earlier}
    assert (found.sessions, found.cells, found.own_sessions) == (3, 2, 1)
    # log speedups per cell: 1.70, 1.73, 1.76 (P_1) -> sd 0.0174, less the intervals' own
    x = np.log([1.70, 1.73, 1.76])
    expected = np.sqrt(np.var(x, ddof=1) - (0.01 / Z) ** 2)
    assert found.sd == pytest.approx(expected, rel=0.05)


def test_fewer_than_three_sessions_give_no_level(tmp_path):
    folder(tmp_path, "a", paired_meta("2026-01-01T00:00:00+00:00"), {"P_1": 1.7, "P_2": 1.6})
    meta = typed(paired_meta("2026-01-03T00:00:00+00:00"))
    table = table_of({"P_1": 1.73, "P_2": 1.68})
    assert between_sessions(tmp_path / "this", meta, pd.DataFrame(), table, CORES) is None


# ---------------------------------------------------------------- a resumed run


def resumed_runs(speedups: list[float], rounds: int = 6) -> pd.DataFrame:
    """Rounds of baseline then P_1 at W = 2, a minute apart; each session runs `rounds` rounds
    at its own speedup, the second starting a day after the first."""
    base, cell = Cell(BASELINE, 1, True, 200, 100), Cell("P_1", 2, True, 200, 100)
    t0, rows = pd.Timestamp("2026-01-01T00:00:00", tz="UTC"), []
    for s, speedup in enumerate(speedups):
        for r in range(rounds):
            at = t0 + pd.Timedelta(days=s, minutes=r)
            wobble = 1 + 0.001 * (r % 3)
            for position, (c, wall) in enumerate(((base, 2.0), (cell, 2.0 / speedup * wobble))):
                rows.append(
                    {
                        "cell_id": c.id,
                        **c.key(),
                        "repeat": r,
                        "round": s * rounds + r,
                        "position": position,
                        "status": "ok",
                        "wall_s": wall,
                        "started_at": (at + pd.Timedelta(seconds=10 * position)).isoformat(),
                    }
                )
    return pd.DataFrame(rows)


def test_a_resumed_run_gives_one_estimate_per_session():
    meta = paired_meta("2026-01-01T00:00:00+00:00")
    meta["sessions"] = [
        {"started_at": "2026-01-01T00:00:00+00:00"},
        {"started_at": "2026-01-02T00:00:00+00:00"},
    ]
    runs = resumed_runs([1.8, 1.7])
    found = own_estimates(typed(meta), runs, table_of({}), CORES)
    assert list(found["source"]) == ["this run, session 1", "this run, session 2"]
    np.testing.assert_allclose(np.exp(found["log_centre"]), [1.8, 1.7], rtol=0.003)


def test_a_session_with_a_wide_interval_does_not_hide_the_others_spread():
    frame = estimates(np.random.default_rng(3), 60, 3, 0.02, 0.005)
    wide = frame[frame["source"].eq("session 0")].assign(source="wide", log_se=0.2)
    found, _ = pooled_between(pd.concat([frame, wide]))
    assert found == pytest.approx(0.02, rel=0.2)


# ---------------------------------------------------------------- the report


@pytest.mark.parametrize("sd", [0.0, 0.01])
def test_the_report_gives_each_cell_its_interval_across_sessions(sd):
    runs = drifting_sweep()
    between = Between(sd=sd, sessions=3, cells=2, folders=(Path("a"), Path("b")), own_sessions=1)
    results = SimpleNamespace(
        table=scaling_table(runs, "strong"),
        runs=runs,
        between=between,
        cores=CORES,
        kind="strong",
        run_meta=typed(paired_meta("2026-01-03T00:00:00+00:00")),
    )
    results.across_sessions = across_sessions(results.table, between, CORES)
    table = _narrowing_table(results)
    assert table.head[-1] == "+- across sessions"
    widths = {row[0]: float(row[-1].rstrip("%")) / 100 for row in table.rows}
    # the synthetic ratios are exact: the paired interval has no width, the session level all
    assert widths == pytest.approx({"P_1": Z * sd, "P_2": Z * sd}, abs=0.001)
    text = _sessions(results)
    assert ("moved no more than their own intervals" in text) == (sd == 0)
    assert "3 sessions: 1 of this run and 2 earlier paired run folders" in text

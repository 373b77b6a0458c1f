"""Paired rounds (`order: rounds`, harness/plan/rounds.py): the plan against a fake runner that
stores a row per unit in memory (the order is randomised, recorded and reproducible; cells
leave the rounds by their ratio's stop rule; a resume in the middle of a round goes on with
the same round), then one tiny real sweep through `python -m harness run`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from harness.cli import main
from harness.plan.cells import Unit, plan_cells
from harness.plan.rounds import (
    by_ratio,
    by_twin_ratio,
    groups,
    leaving_out,
    plan_rounds,
    round_order,
    split,
    visits,
    visits_per_round,
)
from harness.plan.sweep_plan import Plan
from harness.schema import BASE_RUN_COLUMNS, BASELINE, Cell
from harness.stats.pairing import cell_ratios, ratio_interval
from harness.stats.precision import Target
from harness.variants import twin_of
from tests._tiny import config as tiny_config

T0 = pd.Timestamp("2026-01-01T00:00:00", tz="UTC")
CORES = 2
BASE = Cell(BASELINE, 1, False, 200, 100)
STEADY_1 = Cell("P_1", 1, False, 200, 100)  # the same ratio every round: meets ci at 6 rounds
NOISY = Cell("P_1", 2, False, 200, 100)  # +-4% round to round: goes on past 6 rounds
STEADY_2 = Cell("P_2", 2, False, 200, 100)
SLICING = Cell("P_1", 4, False, 200, 100)  # W = 4 > 2 cores: time-slicing, stops at min
SAVE_BASE = Cell(BASELINE, 1, True, 200, 100)
SAVE_CELL = Cell("P_Q", 2, True, 200, 100)
CELLS = [BASE, STEADY_1, NOISY, STEADY_2, SLICING, SAVE_BASE, SAVE_CELL]
PRECISE = Target(3, 12, 0.03)


def ratio(cell: Cell, round_: int) -> float:
    """The baseline time over the cell's in a round; the baseline takes 1 s every time."""
    if cell == NOISY:
        return 1.5 * np.exp(0.04 if round_ % 2 else -0.04)
    return 1.2 + cell.workers / 10


class FakeRunner:
    """Runs a unit by storing its row, as the runner stores a child's line: the runs callable
    plan_rounds reads is this in-memory table."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def runs(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows) if self.rows else pd.DataFrame(columns=BASE_RUN_COLUMNS)

    def run(self, unit: Unit) -> None:
        (repeat,) = unit.repeats
        cell = unit.cell
        wall = 1.0 if cell.is_baseline else 1.0 / ratio(cell, unit.round)
        start = T0 + pd.Timedelta(seconds=10 * len(self.rows))
        self.rows.append(
            {
                "cell_id": cell.id,
                **cell.key(),
                "repeat": repeat,
                "wall_s": wall,
                "status": "ok",
                "error": "",
                "started_at": start.isoformat(),
                **unit.where,
            }
        )


def plan(
    runner: FakeRunner,
    target: Target = PRECISE,
    seed: int = 0,
    every: int | None = None,
    slicing_last: bool = False,
):
    return plan_rounds(CELLS, target, runner.runs, CORES, seed, every, slicing_last=slicing_last)


def sweep(
    target: Target = PRECISE, seed: int = 0, every: int | None = None, slicing_last: bool = False
) -> tuple[list[Unit], pd.DataFrame]:
    """Every unit of a fake sweep, in the order planned, and the table it stored."""
    runner, units = FakeRunner(), []
    for unit in plan(runner, target, seed, every, slicing_last):
        runner.run(unit)
        units.append(unit)
    return units, runner.runs()


def rounds_of(runs: pd.DataFrame) -> dict[str, set[int]]:
    return {c: set(g["round"]) for c, g in runs.groupby("cell_id")}


def sequences(runs: pd.DataFrame) -> Iterator[tuple[int, bool, pd.DataFrame]]:
    """Each round of each group, its runs in position order."""
    for (r, saving), group in runs.groupby(["round", "saving"]):
        yield int(r), bool(saving), group.sort_values("position")


def key(units: list[Unit]) -> list[tuple]:
    return [(u.cell.id, u.repeats, u.round, u.position) for u in units]


# ---------------------------------------------------------------- the order of a round


def test_groups_are_a_baseline_and_the_cells_of_its_saving_mode():
    assert groups(CELLS) == [
        (BASE, [STEADY_1, NOISY, STEADY_2, SLICING]),
        (SAVE_BASE, [SAVE_CELL]),
    ]
    assert groups([STEADY_1]) == []  # no baseline: nothing to divide by


@pytest.mark.parametrize("every", [None, 2, 3])
def test_each_round_opens_with_the_baseline_and_a_permutation_of_the_cells_that_want_runs(every):
    _, runs = sweep(every=every)
    members = {False: {STEADY_1.id, NOISY.id, STEADY_2.id, SLICING.id}, True: {SAVE_CELL.id}}
    taking_part = rounds_of(runs)
    closing = {False: 0, True: 0}
    for r, saving, seq in sequences(runs):
        assert seq["position"].tolist() == list(range(len(seq)))
        ids = seq["cell_id"].tolist()
        base = SAVE_BASE.id if saving else BASE.id
        assert ids[0] == base
        cells = [c for c in ids if c != base]
        if not cells:  # the visit that closes the group's last round
            closing[saving] += 1
            assert r == max(r for c in members[saving] for r in taking_part[c]) + 1
            continue
        assert ids[-1] != base  # the next round's first visit closes this one
        assert len(cells) == len(set(cells))  # each cell once
        assert set(cells) == {c for c in members[saving] if r in taking_part[c]}
        # a visit after every `every` cells (but the last): no stretch longer than that
        step = every or len(cells)
        parts = _between(ids, base)
        assert [len(p) for p in parts[:-1]] == [step] * (len(parts) - 1)
        assert 1 <= len(parts[-1]) <= step
        assert ids.count(base) == visits(len(cells), every)
    assert closing == {False: 1, True: 1}


def _between(ids: list[str], base: str) -> list[list[str]]:
    """The cells after each baseline visit, up to the next one or the round's end."""
    parts: list[list[str]] = []
    for cell in ids:
        if cell == base:
            parts.append([])
        else:
            parts[-1].append(cell)
    return parts


@pytest.mark.parametrize("every", [None, 2])
def test_baseline_repeat_numbers_are_round_times_visits_plus_the_visit(every):
    _, runs = sweep(every=every)
    for saving, members in ((False, 4), (True, 1)):
        base = runs[runs["strategy"].eq(BASELINE) & runs["saving"].eq(saving)]
        assert base["repeat"].is_unique
        for r, rows in base.groupby("round"):
            first = r * visits(members, every)
            assert rows.sort_values("position")["repeat"].tolist() == list(
                range(first, first + len(rows))
            )
    cells = runs[~runs["strategy"].eq(BASELINE)]
    assert (cells["repeat"] == cells["round"]).all()  # a cell's repeat is its round


def test_the_order_is_randomised_across_rounds_and_recorded():
    _, runs = sweep()
    orders = {}
    for r, saving, seq in sequences(runs):
        cells = seq[~seq["strategy"].eq(BASELINE)]
        if saving:
            continue
        orders[r] = tuple(cells["cell_id"])
        # the stored positions give back the order drawn from (seed, round, saving), from the
        # cells that took part in the round, in plan order
        taking_part = [c for c in CELLS if c.id in set(cells["cell_id"])]
        assert list(orders[r]) == [c.id for c in round_order(taking_part, 0, r, saving)]
    by_cells: dict[frozenset, set[tuple]] = {}
    for order in orders.values():
        by_cells.setdefault(frozenset(order), set()).add(order)
    all_four = by_cells[frozenset(c.id for c in (STEADY_1, NOISY, STEADY_2, SLICING))]
    assert len(all_four) == 3  # rounds 0-2, before SLICING stopped: three different orders
    assert len(by_cells[frozenset(c.id for c in (STEADY_1, NOISY, STEADY_2))]) > 1


def test_the_same_seed_plans_the_same_sweep_and_another_seed_another():
    units, runs = sweep(seed=7)
    again, runs_again = sweep(seed=7)
    assert key(units) == key(again)
    pd.testing.assert_frame_equal(runs, runs_again)
    other, _ = sweep(seed=8)
    assert key(units) != key(other)
    assert sorted(key(units), key=str) != sorted(key(other), key=str)  # positions differ too


def test_cells_leave_the_rounds_by_their_ratio_while_others_go_on():
    _, runs = sweep()
    taking_part = rounds_of(runs)
    steady = set(range(6))  # a constant ratio meets +-3% once 6 rounds give a 95% interval
    assert taking_part[STEADY_1.id] == steady
    assert taking_part[STEADY_2.id] == steady
    assert taking_part[SAVE_CELL.id] == steady
    assert taking_part[SLICING.id] == set(range(PRECISE.min))  # time-slicing: min rounds
    noisy = taking_part[NOISY.id]
    assert noisy == set(range(len(noisy))) and 6 < len(noisy) <= PRECISE.max
    # the baseline is visited while any cell of its group runs, then once more to close
    assert taking_part[BASE.id] == noisy | {len(noisy)}
    assert taking_part[SAVE_BASE.id] == steady | {6}
    ratios = cell_ratios(runs)
    assert ratio_interval(ratios[STEADY_2.id])[0] == pytest.approx(1.4)


TWIN_A = Cell("P_T", 2, False, 200, 100)
TWIN_B = Cell("P_T[aa=B]", 2, False, 200, 100)


def twin_ratio(cell: Cell, round_: int) -> float:
    """Each twin's speedup +-2% round to round, in opposite phase: the speedups meet +-3% at 6
    rounds, their pair's ratio T_A / T_B (+-4%) does not."""
    sign = -1 if twin_of(cell.strategy) else 1
    return 1.5 * np.exp(sign * (0.02 if round_ % 2 else -0.02))


@pytest.mark.parametrize("aimed", [False, True])
def test_an_aa_pair_takes_part_until_its_own_ratio_meets_the_target(aimed, monkeypatch):
    monkeypatch.setitem(globals(), "ratio", twin_ratio)
    runner, cells = FakeRunner(), [BASE, TWIN_A, TWIN_B]
    taking_part = by_twin_ratio(PRECISE, CORES) if aimed else None
    for unit in plan_rounds(cells, PRECISE, runner.runs, CORES, 0, None, taking_part):
        runner.run(unit)
    rounds = rounds_of(runner.runs())
    assert rounds[TWIN_A.id] == rounds[TWIN_B.id]
    assert (len(rounds[TWIN_A.id]) > 6) is aimed  # 6: the speedups alone meet +-3%


def test_a_fixed_count_runs_every_cell_in_every_round():
    units, runs = sweep(target=Target(3, 3))
    taking_part = rounds_of(runs)
    assert set(taking_part) == {c.id for c in CELLS}
    assert all(r == {0, 1, 2} for c, r in taking_part.items() if BASELINE not in c)
    assert taking_part[BASE.id] == taking_part[SAVE_BASE.id] == {0, 1, 2, 3}  # 3 closes round 2
    per_round = 1 + 4 + 1 + 1  # each group: the visit that opens the round, and its cells
    assert len(units) == 3 * per_round + 2  # and a closing visit per group
    assert [u.optional for u in units] == [False] * len(units)  # all within min


def test_every_round_in_paired_order_stores_round_and_position():
    units, runs = sweep()
    assert all(u.where == {"round": u.round, "position": u.position} for u in units)
    assert runs["round"].notna().all() and runs["position"].notna().all()
    assert not runs.duplicated(["cell_id", "repeat"]).any()
    optional = {u.optional for u in units if u.round < PRECISE.min}
    assert optional == {False}


@pytest.mark.parametrize("every", [None, 2])
def test_with_slicing_last_the_aimed_cells_sit_between_two_visits(every):
    """The cells at W <= cores first, in the round's drawn order, then a visit, then the
    time-slicing cells: the aimed cells' bracketing visits are as near as their own runs."""
    units, runs = sweep(every=every, slicing_last=True)
    aimed = {STEADY_1.id, NOISY.id, STEADY_2.id}
    split_rounds = 0
    for r, saving, seq in sequences(runs):
        ids = seq["cell_id"].tolist()
        base = SAVE_BASE.id if saving else BASE.id
        cells = [c for c in ids if c != base]
        if not cells:
            continue
        members = [c for c in CELLS if c.id in set(cells)]
        drawn = [c.id for c in round_order(members, 0, r, saving)]
        assert cells == [c for c in drawn if c in aimed] + [c for c in drawn if c not in aimed]
        if SLICING.id in cells:
            split_rounds += 1
            before = ids[: ids.index(SLICING.id)]
            assert before[-1] == base  # a visit of its own before the slicing cell
            assert set(before) - {base} == aimed & set(cells)
        assert ids[0] == base and ids[-1] != base
    assert split_rounds == PRECISE.min  # SLICING stops at min; the rounds after are unsplit
    assert not runs.duplicated(["cell_id", "repeat"]).any()
    per_round = visits_per_round([STEADY_1, NOISY, STEADY_2, SLICING], every, CORES, True)
    assert per_round == visits(4, every) + 1
    visits_ = runs[runs["cell_id"].eq(BASE.id)]
    assert (visits_["repeat"] // per_round == visits_["round"]).all()


def test_slicing_last_changes_nothing_without_both_kinds_of_cell():
    columns = ["cell_id", "repeat", "round", "position"]
    plain, apart = (sweep(slicing_last=flag)[1] for flag in (False, True))
    saving = [r[r["saving"]][columns].reset_index(drop=True) for r in (plain, apart)]
    pd.testing.assert_frame_equal(*saving)  # the saving group has no time-slicing cell
    assert not split([STEADY_1, NOISY], CORES, True) and not split([SLICING], CORES, True)


def test_the_plan_counts_the_visits_slicing_last_adds():
    """The estimate's baseline visits are those a fixed count of rounds runs."""
    config = tiny_config(
        workers=[1, 2, 4], order="rounds", slicing_last=True, repeats=3, saving=[False]
    )
    cells = [c for c in plan_cells(config) if not c.skip]
    planned = Plan(config, cells, lambda c: 1.0, CORES, config.target).planned(cells[0])
    runner = FakeRunner()
    for unit in plan_rounds(cells, config.target, runner.runs, CORES, 0, slicing_last=True):
        runner.run(unit)
    assert planned == runner.runs()["strategy"].eq(BASELINE).sum() == 3 * 2 + 1


def test_a_cell_a_limit_cut_sits_out_the_rounds_after():
    """leaving_out: NOISY, cut after round 4, takes part in rounds 0-4 only; once every cell of
    a group is cut, the visit that opens the next round closes the group's last one."""
    runner, cut = FakeRunner(), set()
    part = leaving_out(by_ratio(PRECISE, CORES), lambda: cut)
    for unit in plan_rounds(CELLS, PRECISE, runner.runs, CORES, 0, taking_part=part):
        runner.run(unit)
        if unit.cell == NOISY and unit.round == 4:
            cut.add(NOISY.id)
    taking_part = rounds_of(runner.runs())
    assert taking_part[NOISY.id] == set(range(5))
    assert max(taking_part[BASE.id]) == max(max(taking_part[c.id]) for c in CELLS[1:5]) + 1
    cut = {c.id for c in CELLS}
    runner = FakeRunner()
    units = list(
        _run_all(plan_rounds(CELLS, PRECISE, runner.runs, CORES, 0, taking_part=part), runner.run)
    )
    assert [u.cell for u in units] == [BASE, SAVE_BASE]  # nothing to close: a visit each, no round


# ---------------------------------------------------------------- resume in a round


@pytest.mark.parametrize("slicing_last", [False, True])
@pytest.mark.parametrize(("round_", "done"), [(0, 1), (2, 3), (2, 5), (4, 5), (7, 1), (11, 0)])
def test_a_resume_in_the_middle_of_a_round_goes_on_with_that_round(round_, done, slicing_last):
    """Run the units up to `done` of round `round_`, stop, plan again from the stored rows."""
    whole, _ = sweep(slicing_last=slicing_last)
    runner, first = FakeRunner(), []
    planned = plan(runner, slicing_last=slicing_last)
    for unit in planned:
        if unit.round == round_ and sum(u.round == round_ for u in first) == done:
            break
        runner.run(unit)
        first.append(unit)
    planned.close()
    resumed = list(_run_all(plan(runner, slicing_last=slicing_last), runner.run))
    assert key(first) + key(resumed) == key(whole)
    rest = [u for u in whole if u.round == round_][done:]
    assert key(resumed[: len(rest)]) == key(rest)
    assert resumed[0].round == round_
    stored = runner.runs()
    assert not stored.duplicated(["cell_id", "repeat"]).any()  # none run twice


def test_a_failed_run_is_not_run_again_on_resume():
    """Re-run later, it would pair with its round's visits long past: it stays failed."""
    runner = FakeRunner()
    planned = plan(runner, target=Target(3, 3))
    for unit in planned:
        runner.run(unit)
        if unit.round == 1:
            break
    planned.close()
    failed = next(r for r in runner.rows if r["round"] == 0 and r["cell_id"] == NOISY.id)
    failed.update(status="failed", wall_s=float("nan"), error="child exited with status 1")
    resumed = list(_run_all(plan(runner, target=Target(3, 3)), runner.run))
    assert all(u.round >= 1 for u in resumed)
    assert (NOISY.id, failed["repeat"]) not in {(u.cell.id, u.repeats[0]) for u in resumed}
    ratios = cell_ratios(runner.runs())[NOISY.id]
    assert np.isnan(ratios[0]) and np.isfinite(ratios[1:]).all()


def _run_all(units: Iterator[Unit], run: Callable[[Unit], None]) -> Iterator[Unit]:
    for unit in units:
        run(unit)
        yield unit


# ---------------------------------------------------------------- one real sweep

TINY_ROUNDS = {  # /tmp/tiny_rounds.yaml: a few rounds of tiny cells
    "name": "tiny_rounds",
    "kind": "strong",
    "images": {"count": 2, "size": [200, 100], "format": "jpg"},
    "augmentations_per_image": 4,
    "strategies": ["P_1", "P_Q"],
    "saving": [False],
    "workers": [1, 2],
    "repeats": {"min": 3, "max": 7, "ci": 0.03},
    "warmup": {"runs": 1, "tasks": 0.25},
    "order": "rounds",
    "seed": 0,
}


@pytest.fixture(scope="module")
def rounds_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("rounds")
    cfg = folder / "tiny_rounds.yaml"
    cfg.write_text(yaml.safe_dump(TINY_ROUNDS, sort_keys=False))
    run_dir = folder / "run"
    assert main(["run", str(cfg), "--out", str(run_dir)]) == 0
    return run_dir


@pytest.mark.slow
def test_a_real_sweep_in_rounds(rounds_run):
    runs = pd.read_parquet(rounds_run / "runs.parquet")
    assert (runs["status"] == "ok").all(), runs[["cell_id", "status", "error"]]
    assert runs["round"].notna().all() and runs["position"].notna().all()
    assert not runs.duplicated(["cell_id", "repeat"]).any()
    for r, _, seq in sequences(runs):
        ids = seq["cell_id"].tolist()
        assert seq["position"].tolist() == list(range(len(ids)))
        assert ids[0] == BASE.id and ids.count(BASE.id) == 1  # one visit opens each round
        cells = [c for c in ids if c != BASE.id]
        if not cells:
            assert r == runs["round"].max()  # the visit that closes the last round
            continue
        taking_part = [Cell("P_1", w, False, 200, 100) for w in (1, 2)]
        taking_part = [c for c in taking_part if c.id in cells]
        assert cells == [c.id for c in round_order(taking_part, 0, r, False)]  # recorded
    assert runs["round"].nunique() >= TINY_ROUNDS["repeats"]["min"]
    assert "P_Q" not in set(runs["strategy"])  # P_Q only saves


@pytest.mark.slow
def test_a_real_sweep_reports_the_paired_speedups(rounds_run):
    runs = pd.read_parquet(rounds_run / "runs.parquet")
    ratios = cell_ratios(runs)
    table = pd.read_csv(rounds_run / "tables" / "strong.csv")  # written with 6 digits (%.6g)
    cells = table[~table["strategy"].eq(BASELINE)]
    assert len(cells) == 2
    for row in cells.itertuples():
        cell = Cell(row.strategy, row.workers, bool(row.saving), row.width, row.height)
        centre, low, high, _ = ratio_interval(ratios[cell.id])
        assert row.speedup == pytest.approx(centre, rel=1e-5)
        assert (row.speedup_ci_low, row.speedup_ci_high) == pytest.approx((low, high), rel=1e-5)
        assert row.efficiency == pytest.approx(centre / row.workers, rel=1e-5)
        assert row.stop in {"target", "futile", "max"}
    base = table[table["strategy"].eq(BASELINE)]
    assert base["stop"].tolist() == ["rounds"]
    report = (rounds_run / "report.md").read_text()
    assert report.startswith("# tiny_rounds: strong scaling")
    assert "P_1" in report and (rounds_run / "report.html").stat().st_size > 0

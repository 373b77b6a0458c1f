"""The race (`order: race`, harness/plan/race_rounds.py and harness/commands/race.py): each way it
ends (a winner, a tie, the budget), the second stage over the leaders' worker counts, a resume in
the middle of a race, and a contender whose run fails; a sweep's config raced to the race's own
rounds, and what ended an undecided race, named; then one real race of the fake strategy."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from harness.analysis.race_answer import Answer, why_undecided
from harness.cli import main
from harness.commands.race import race_config_text
from harness.config import Race, validate_config
from harness.plan.race_rounds import Standing, race_taking_part, standing
from harness.plan.rounds import plan_rounds
from harness.rundir.meta import RunMeta
from harness.schema import BASE_RUN_COLUMNS, BASELINE, Cell
from harness.stats.medians import median_interval
from harness.stats.pairing import rounds_run
from harness.stats.precision import Target
from harness.stats.racing import judge
from harness.sweep_rules import Order

T0 = pd.Timestamp("2026-01-01T00:00:00", tz="UTC")
CORES = 2
BASE = Cell(BASELINE, 1, False, 200, 100)
RULES = Race()
FAKE = str(Path(__file__).with_name("_fake_strategy.py"))


def cell(name: str, workers: int = 2) -> Cell:
    return Cell(name, workers, False, 200, 100)


class FakeRace:
    """Stores each unit's run as the runner would, its time from `speed` (name, W) -> seconds,
    with run-to-run noise; `fails` lists the contenders whose runs fail."""

    def __init__(
        self,
        speed: dict[tuple[str, int], float],
        fails: tuple[str, ...] = (),
        seed=0,
        noise=0.01,
        rules: Race | None = None,
    ):
        self.speed, self.fails, self.rows, self.noise = speed, fails, [], noise
        self.rng, self.rules = np.random.default_rng(seed), rules or RULES

    def runs(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows) if self.rows else pd.DataFrame(columns=BASE_RUN_COLUMNS)

    def run(self, unit) -> None:
        c = unit.cell
        bad = c.strategy in self.fails
        wall = 1.0 if c.is_baseline else self.speed[(c.strategy, c.workers)]
        self.rows.append(
            {
                "cell_id": c.id,
                **c.key(),
                "repeat": unit.repeats[0],
                "wall_s": float("nan") if bad else wall * np.exp(self.rng.normal(0, self.noise)),
                "status": "failed" if bad else "ok",
                "error": "worker died" if bad else "",
                "started_at": (T0 + pd.Timedelta(seconds=10 * len(self.rows))).isoformat(),
                **unit.where,
            }
        )

    def cells(self) -> list[Cell]:
        return [BASE] + [cell(n, w) for n, w in self.speed]

    def race(self, rounds: int = 40, out_of_time=lambda alive: False, stop_after=None):
        units = plan_rounds(
            self.cells(),
            Target(5, rounds),
            self.runs,
            CORES,
            0,
            None,
            race_taking_part(self.rules, CORES, out_of_time),
        )
        for n, unit in enumerate(units):
            if stop_after is not None and n == stop_after:
                units.close()
                return
            self.run(unit)

    def standing(self):
        runs = self.runs()
        members = [c for c in self.cells() if not c.is_baseline]
        return standing(members, runs, rounds_run(runs), self.rules, CORES)


def test_after_its_answer_the_answer_alone_runs_on_until_its_rate_is_precise():
    race = FakeRace({("P_1", 2): 0.5, ("P_2", 2): 0.7}, noise=0.04)
    race.race()
    runs, state = race.runs(), race.standing()
    assert state.ended == "winner" and state.answer == cell("P_1").id
    decided = state.stage_ends[-1][0]
    assert rounds_run(runs) > decided  # more rounds than the verdict needed
    later = runs[runs["round"].ge(decided) & runs["round"].lt(rounds_run(runs))]
    assert set(later["cell_id"]) == {cell("P_1").id, BASE.id}  # the answer and its baseline
    mine = runs.loc[runs["cell_id"].eq(cell("P_1").id), "wall_s"]
    low, high, _ = median_interval(mine)
    assert (high - low) / (2 * mine.median()) <= 0.03 or rounds_run(runs) == 40


def test_without_a_rate_target_the_race_ends_with_its_answer():
    race = FakeRace({("P_1", 2): 0.5, ("P_2", 2): 0.7}, noise=0.04, rules=Race(rate_ci=None))
    race.race()
    assert rounds_run(race.runs()) == race.standing().stage_ends[-1][0]


def test_a_clearly_slower_contender_is_dropped_after_the_first_test_and_one_wins():
    race = FakeRace({("P_1", 2): 0.5, ("P_2", 2): 0.7})
    race.race()
    state = race.standing()
    assert state.ended == "winner" and [c.strategy for c in state.alive] == ["P_1"]
    (drop,) = state.drops
    assert drop.contender == cell("P_2").id and drop.rounds == 5 and drop.slower > 0.3
    assert rounds_run(race.runs()) == 5  # five rounds, then no more
    assert race.runs()["round"].max() == 5  # and the visit that closes the fifth


def test_equal_contenders_tie_within_the_margin():
    race = FakeRace({("P_1", 2): 0.5, ("P_2", 2): 0.5})
    race.race()
    state = race.standing()
    assert state.ended == "tie" and len(state.alive) == 2 and not state.drops


def test_the_leaders_race_again_at_every_worker_count():
    speed = {("P_1", 2): 0.5, ("P_2", 2): 0.7, ("P_1", 1): 0.9, ("P_2", 1): 1.2, ("P_1", 4): 0.5}
    race = FakeRace(speed)
    race.race()
    runs = race.runs()
    stage_2 = runs[runs["cell_id"].eq(cell("P_1", 1).id)]
    assert stage_2["round"].min() == 5  # P_1 at other W only once stage 1 had its winner
    assert cell("P_2", 1).id not in set(runs["cell_id"])
    state = race.standing()
    assert state.stage == 2 and {c.workers for c in state.alive} == {2, 4}
    # W = 2 is within the margin of W = 4: settled on the fewest workers before a two-way tie
    assert state.ended == "settled"


def test_a_gap_between_half_the_margin_and_the_margin_settles_at_the_settle_round():
    """P_2 1.5% slower than P_1 under 2% run noise: too close to drop, too far to tie within the
    settle round (in this seed's race; other seeds may drop P_2 or tie, as such a gap may).
    Stage 1 settles on P_1 at the settle round, no contender being 2% faster, and only P_1
    races at other W."""
    speed = {("P_1", 2): 0.5, ("P_2", 2): 0.5075, ("P_1", 1): 0.9, ("P_2", 1): 0.91}
    race = FakeRace(speed, noise=0.02, seed=2)
    race.race()
    state = race.standing()
    assert state.stage_ends[0] == (RULES.settle_after, "settled", cell("P_1").id)
    assert state.set_aside == [cell("P_2").id]
    assert cell("P_2", 1).id not in set(race.runs()["cell_id"])
    assert state.ended and state.answer == cell("P_1").id


@pytest.mark.parametrize("retie", [False, True])
def test_stage_2_takes_stage_1s_verdict_on_the_strategies_as_given(retie, monkeypatch):
    """Stage 2 asks how many workers: strategies that stage 1 tied and carried on (`carry:
    tied`, the rule of format 5) need not tie again (the race of 12-05 04:29 went undecided when
    they had to); `retie: true` is the rule of format 4."""
    import harness.plan.race_rounds as plan_race

    in_stage_2: set[int | None] = set()  # settle_after as stage 2's judge got it

    def judging(wide, *args):
        if cell("P_1", 1).id in wide.columns:
            in_stage_2.add(args[-1])
        return judge(wide, *args)

    monkeypatch.setattr(plan_race, "judge", judging)
    monkeypatch.setattr(sys.modules[__name__], "RULES", Race(retie=retie, carry="tied"))
    speed = {("P_1", 2): 0.5, ("P_2", 2): 0.5, ("P_1", 1): 0.9, ("P_2", 1): 0.9}
    race = FakeRace(speed)
    race.race()
    state = race.standing()
    assert state.stage_ends[0][1] == "tie" and state.stage == 2
    assert in_stage_2 == ({RULES.settle_after} if retie else {0})


def test_a_tie_carries_its_answer_alone_into_stage_2():
    """The tied strategies are equivalent at W = cores: only the answer's strategy races at
    other W (carrying both left the no-saving race of 12-05 05:15 undecided), and the other is
    set aside with its ratio."""
    speed = {("P_1", 2): 0.5, ("P_2", 2): 0.5, ("P_1", 1): 0.9, ("P_2", 1): 0.9}
    race = FakeRace(speed)
    race.race()
    state = race.standing()
    assert state.stage_ends[0][1] == "tie" and state.stage == 2 and state.ended
    answer = state.stage_ends[0][2]
    (other,) = {cell("P_1").id, cell("P_2").id} - {answer}
    assert state.set_aside == [other]
    ran = set(race.runs()["cell_id"])
    assert sum(c in ran for c in (cell("P_1", 1).id, cell("P_2", 1).id)) == 1


def test_the_budget_ends_the_race_undecided():
    calls = []
    race = FakeRace({("P_1", 2): 0.5, ("P_2", 2): 0.5, ("P_Q", 2): 0.5})
    race.race(out_of_time=lambda alive: calls.append(1) or len(calls) > 3)
    state = race.standing()
    assert rounds_run(race.runs()) == 3 and not state.ended and len(state.alive) == 3


def test_a_contender_whose_run_fails_is_dropped_and_said():
    race = FakeRace({("P_1", 2): 0.5, ("P_2", 2): 0.5, ("P_Q", 2): 0.5}, fails=("P_Q",))
    race.race()
    state = race.standing()
    failed = [d for d in state.drops if d.failed]
    assert [d.contender for d in failed] == [cell("P_Q").id] and failed[0].rounds == 1
    assert "its run failed: worker died" in failed[0].line()
    assert (race.runs()["cell_id"] == cell("P_Q").id).sum() == 1  # not run again


def test_a_resumed_race_goes_on_as_if_never_stopped():
    speed = {("P_1", 2): 0.5, ("P_2", 2): 0.7, ("P_1", 1): 0.9, ("P_2", 1): 1.2}
    whole = FakeRace(speed, seed=3)
    whole.race()
    for stop in (7, 23, 31):
        part = FakeRace(speed, seed=3)
        part.race(stop_after=stop)
        part.race()
        cols = ["cell_id", "repeat", "round", "position"]
        assert part.runs()[cols].equals(whole.runs()[cols])


@pytest.mark.slow
def test_a_real_race_of_the_fake_strategy(tmp_path, capsys):
    config = {
        "name": "tiny_race",
        "kind": "strong",
        "plugins": [FAKE],
        "images": {"count": 2, "size": [64, 48], "format": "jpg"},
        "augmentations_per_image": 2,
        "strategies": [
            {"FAKE": {"sleep_s": 0.01}},
            {"FAKE": {"sleep_s": 0.2}},
            {"FAKE": {"fail": True}},
        ],
        "saving": [False],
        "workers": [1],
        "repeats": {"min": 5, "max": 12, "ci": 0.02},
        "warmup": {"runs": 1, "tasks": 0.5},
        "seed": 0,
    }
    path = tmp_path / "race.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    assert main(["race", str(path), "--out", str(out), "--budget", "5m"]) == 1  # a failed run
    printed = capsys.readouterr().out
    (line,) = [x for x in printed.splitlines() if x.startswith("Race, no saving:")]
    # decided after 5 rounds; the answer may then run alone for its rate (race.rate_ci)
    assert line.startswith("Race, no saving: winner after 5 rounds")
    assert ": FAKE[sleep_s=0.01] at W = 1" in line
    assert "FAKE[fail=true]-w1-nosave-64x48 dropped after 1 rounds, its run failed" in printed
    report = (out / "report.md").read_text()
    assert "## The race" in report and "Answer: **FAKE[sleep_s=0.01] at W = 1**" in report
    assert "missed the" not in report  # the race's precision is its decision, not each cell's
    table = pd.read_csv(out / "tables" / "strong.csv")
    assert set(table.loc[table["strategy"].ne("sequential"), "stop"]) == {"raced"}
    assert main(["report", str(out)]) == 0


# ---------------------------------------------------------------- a sweep's config raced

SWEEP = {"name": "sweep", "kind": "strong", "strategies": ["P_1", "P_2"], "workers": [1, 2]}


def raced(tmp_path: Path, data: dict):
    """The config `race` derives from `data`, validated."""
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return validate_config(yaml.safe_load(race_config_text(str(path), None, None)), path)


@pytest.mark.parametrize("sweep", [{}, {"repeats": 3}, {"order": "interleaved", "repeats": 5}])
def test_a_sweeps_config_races_to_the_races_own_rounds(tmp_path, sweep):
    """Its `repeats:` (or the default) is the sweep's stop rule, never the race's rounds."""
    config = raced(tmp_path, {**SWEEP, **sweep})
    assert config.order.raced and config.repeats == Order.RACE.default_repeats
    assert config.target.max == 40 and config.race_rules == RULES
    race = FakeRace({("P_1", 2): 0.5, ("P_2", 2): 0.5, ("P_Q", 2): 0.5}, noise=0.05)
    race.race(rounds=config.target.max)
    assert rounds_run(race.runs()) > 3  # equal and noisy: it runs on until it ties


def test_a_config_written_for_a_race_keeps_its_repeats(tmp_path):
    own = {"min": 5, "max": 12, "ci": 0.02}
    assert raced(tmp_path, {**SWEEP, "order": "race", "repeats": own}).target.max == 12
    assert raced(tmp_path, {**SWEEP, "race": {"margin": 0.05}, "repeats": own}).target.max == 12


def undecided(rounds: int, alive: int = 2, **meta: object) -> tuple[Answer, RunMeta]:
    state = Standing(1, [cell(f"P_{i}") for i in range(1, alive + 1)], 0)
    config = {**SWEEP, "order": "race"}
    return Answer(False, state, [], None, rounds), RunMeta.model_validate(
        {"config": config, **meta}
    )


@pytest.mark.parametrize(
    ("rounds", "alive", "meta", "cause"),
    [
        (40, 2, {"sessions": [{"budget_s": 480.0}]}, "its rounds reached `repeats.max` (40)"),
        (12, 2, {"sessions": [{"budget_s": 480.0}]}, "--budget (8 min 00 s) left no time"),
        (12, 2, {"interrupted": "SIGINT"}, "SIGINT interrupted it"),
        (6, 0, {}, "every contender was dropped"),
        (12, 2, {}, "the run stopped before it decided"),
    ],
)
def test_an_undecided_race_names_what_ended_its_rounds(rounds, alive, meta, cause):
    answer, run_meta = undecided(rounds, alive, **meta)
    assert why_undecided(answer, run_meta).startswith(cause)


def test_a_decided_race_names_no_cause():
    answer, run_meta = undecided(12)
    answer.standing.ended = "winner"
    assert why_undecided(answer, run_meta) == ""

"""`race`: which strategy, and how many workers, in minutes (harness/stats/racing.py). The config's
cells race in paired rounds (`order: race`) instead of each being measured to a precision; the
run folder is the usual one, so report, trace, predict and compare work on it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import yaml

from harness import machine
from harness.analysis.race_answer import answers, feeding, why_undecided
from harness.analysis.results import load_results
from harness.commands.measuring import in_its_environment
from harness.commands.run import run_derived, run_dir_of
from harness.config import load_config
from harness.measure.lock import MachineLock
from harness.plan.cells import Cell
from harness.report.format import interval, mode
from harness.rundir import store
from harness.rundir.meta import read_run_meta
from harness.sweep_rules import Order


def race_config_text(path: str, margin: float | None, first_test: int | None) -> str:
    """The config as a race: `order: race`, the margin and first test given on the command line
    over the config's own `race:` (if any). A config written for a sweep (neither `order: race`
    nor `race:`) races as configs/race.yaml does, to the race's own `repeats:`
    (Order.default_repeats): its `repeats:` is the sweep's stop rule, not a number of rounds."""
    data = yaml.safe_load(Path(path).read_text())
    if not written_for_a_race(data):
        data.pop("repeats", None)
    data["order"] = Order.RACE.value
    rules = dict(data.get("race") or {})
    if margin is not None:
        rules["margin"] = margin
    if first_test is not None:
        rules["first_test"] = first_test
    data["race"] = rules
    return yaml.safe_dump(data, sort_keys=False)


def rate(table: pd.DataFrame, cell: Cell) -> str:
    """ ", 812 images/s [790, 830]": the cell's throughput as the scaling table has it."""
    row = table[
        table["strategy"].eq(cell.strategy)
        & table["workers"].eq(cell.workers)
        & table["saving"].eq(cell.saving)
    ]
    if row.empty or pd.isna(row["images_per_s"].iat[0]):
        return ""
    r = row.iloc[0]
    return (
        ", "
        + interval(r.images_per_s, r.images_per_s_ci_low, r.images_per_s_ci_high, "rate")
        + (" images/s")
    )


def written_for_a_race(data: dict) -> bool:
    """Whether a config's own keys make it a race's: `order: race`, or rules under `race:`."""
    return data.get("order") == Order.RACE or "race" in data


def race(args: argparse.Namespace, lock: MachineLock | None) -> int:
    """Run the race (its config's text kept in the run's meta.json), then print the answer."""
    in_its_environment(load_config(args.config))  # the user's file, checked as it is
    if not written_for_a_race(yaml.safe_load(Path(args.config).read_text())):
        print(
            f"note: {args.config} is written for a sweep: the race runs up to "
            f"{Order.RACE.default_repeats.max} rounds, the race's own `repeats:` (to set them, "
            "write `order: race` and `repeats:` in the config)",
            file=sys.stderr,
        )
    text = race_config_text(args.config, args.margin, args.first_test)
    status, config = run_derived(args, text, lock)
    if args.dry_run:
        return status
    run_dir = run_dir_of(args, config)
    meta = read_run_meta(run_dir)
    table = load_results(run_dir).table
    for answer in answers(store.load_runs(run_dir), config, machine.usable_cores()):
        pick = answer.pick
        what = f"{pick.strategy} at W = {pick.workers}{rate(table, pick)}" if pick else "no answer"
        verdict = answer.verdict
        if verdict == "undecided":
            what, verdict = f"leading: {what}", f"undecided ({why_undecided(answer, meta)})"
        print(f"Race, {mode(answer.saving)}: {verdict} after {answer.after()}: {what}")
        for drop in answer.standing.drops:
            print(f"  {drop.line()}")
        for aside in answer.set_aside:
            print(f"  {aside.cell.id} set aside at {aside.ratio:.3f} of stage 1's answer")
    if config.target_rate is not None:
        print(f"Target rate: {feeding(table, config.target_rate)}")
    return status

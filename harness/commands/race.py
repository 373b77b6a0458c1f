"""`race`: which strategy, and how many workers, in minutes (harness/stats/racing.py). The config's
cells race in paired rounds (`order: race`) instead of each being measured to a precision; the
run folder is the usual one, so report, trace, predict and compare work on it."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from harness import machine
from harness.analysis.race_answer import answers
from harness.commands.run import run_derived, run_dir_of
from harness.config import load_config
from harness.measure.lock import MachineLock
from harness.report.format import mode
from harness.rundir import store


def race_config_text(path: str, margin: float | None, first_test: int | None) -> str:
    """The config as a race: `order: race`, the margin and first test given on the command line
    over the config's own `race:` (if any)."""
    data = yaml.safe_load(Path(path).read_text())
    data["order"] = "race"
    rules = dict(data.get("race") or {})
    if margin is not None:
        rules["margin"] = margin
    if first_test is not None:
        rules["first_test"] = first_test
    data["race"] = rules
    return yaml.safe_dump(data, sort_keys=False)


def race(args: argparse.Namespace, lock: MachineLock | None) -> int:
    """Run the race (its config's text kept in the run's meta.json), then print the answer."""
    load_config(args.config)  # the user's file, checked as it is
    text = race_config_text(args.config, args.margin, args.first_test)
    status, config = run_derived(args, text, lock)
    if args.dry_run:
        return status
    runs = store.load_runs(run_dir_of(args, config))
    for answer in answers(runs, config, machine.usable_cores()):
        pick = answer.pick
        what = f"{pick.strategy} at W = {pick.workers}" if pick else "no answer"
        what = f"leading: {what}" if answer.verdict == "undecided" else what
        print(f"Race, {mode(answer.saving)}: {answer.verdict} after {answer.rounds} rounds: {what}")
        for drop in answer.standing.drops:
            print(f"  {drop.line()}")
        for aside in answer.set_aside:
            print(f"  {aside.cell.id} set aside at {aside.ratio:.3f} of stage 1's answer")
    return status

"""`aa`: the A/A self-test. A config's cells run twice, under two labels (NAME and
NAME[aa=B], the same strategy and options), in the same paired rounds; the pairs are compared
round by round (harness.analysis.paired_rounds), and every flag is a false positive: on an honest
machine and method, at most 5% of the pairs are flagged and the intervals cover 1."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from harness.analysis.paired_rounds import compare_pairs
from harness.commands.run import run_derived, run_dir_of
from harness.config import load_config
from harness.measure.lock import MachineLock
from harness.rundir import store
from harness.sweep_rules import Order
from harness.variants import TWIN


def twin_entry(entry: object) -> object:
    """A `strategies:` entry's A/A twin: the same strategy, options and workers, labelled B."""
    if isinstance(entry, str):
        return {entry: {TWIN: "B"}}
    name = next(k for k in entry if k != "workers")  # type: ignore[union-attr]
    return {**entry, name: {**(entry[name] or {}), TWIN: "B"}}  # type: ignore[index]


def aa_config_text(path: str) -> str:
    """The config as an A/A run: every entry and its twin, in paired rounds, named NAME_aa."""
    data = yaml.safe_load(Path(path).read_text())
    data["name"] = f"{data['name']}_aa"
    data["order"] = Order.ROUNDS.value
    data["strategies"] = [e for entry in data["strategies"] for e in (entry, twin_entry(entry))]
    return yaml.safe_dump(data, sort_keys=False)


def aa(args: argparse.Namespace, lock: MachineLock | None) -> int:
    """Run the A/A config (its text kept in the run's meta.json), then print the verdict."""
    load_config(args.config)  # the user's file, checked as it is
    status, config = run_derived(args, aa_config_text(args.config), lock)
    if not args.dry_run:
        print(summary(run_dir_of(args, config), config.labels))
    return status


def summary(run_dir: Path, labels: list[str]) -> str:
    """How many twin pairs were flagged, how many intervals cover 1, and each pair's interval."""
    pairs = compare_pairs(store.load_runs(run_dir), labels)
    if pairs.empty:
        return "A/A: no pair has a round in common"
    covers = ((pairs["low"] <= 1) & (pairs["high"] >= 1)).sum()
    half = (pairs["high"] - pairs["low"]) / (2 * pairs["ratio"])
    lines = [
        f"A/A: {int(pairs['significant'].sum())} of {len(pairs)} pairs flagged (p < 0.05); "
        f"{int(covers)} intervals cover 1; half-widths {half.min():.1%} to {half.max():.1%} "
        f"(median {half.median():.1%})"
    ]
    for r, h in zip(pairs.itertuples(), half, strict=True):
        flag = "  FLAGGED" if r.significant else ""
        lines.append(
            f"  {r.a} W={r.workers} {'saving' if r.saving else 'no saving'}: "
            f"{r.ratio:.3f} [{r.low:.3f}, {r.high:.3f}] +-{h:.1%}, p={r.p_value:.3f}, "
            f"{r.rounds} rounds{flag}"
        )
    return "\n".join(lines)

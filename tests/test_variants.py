"""Variants: one config runs a strategy with different options, `{NAME: {option: value}}` in
`strategies:`. Each is its own cell (labelled NAME[option=value]) in the plan, the stored runs,
the report, resume and compare; a malformed variant is one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from _tiny import AUGMENTATIONS

from experiments import strategies
from harness import cli
from harness.analysis.compare import compare_runs
from harness.analysis.results import load_results
from harness.config import load_config, parse_config
from harness.errors import HarnessError
from harness.plan.cells import plan_cells
from harness.rundir import store

FAKE = str(Path(__file__).with_name("_fake_strategy.py"))


def config(strategies_: list, **changes: object) -> dict:
    return {
        "name": "v",
        "kind": "strong",
        "images": {"count": 2, "size": [160, 80]},
        "augmentations_per_image": AUGMENTATIONS,
        "plugins": [FAKE],
        "strategies": strategies_,
        "saving": [False],
        "workers": [2],
        "repeats": 2,
        "warmup": 0,
        "order": "sequential",
        **changes,
    }


def test_labels_sort_the_options_and_spell_yaml():
    label = strategies.variant_label("P_TORCH", {"prefetch_factor": 4, "in_order": False})
    assert label == "P_TORCH[in_order=false,prefetch_factor=4]"
    assert strategies.variant_label("P_DYN", {}) == "P_DYN"
    assert strategies.base_name(label) == "P_TORCH"
    assert strategies.get("P_DYN[placement=close]") is strategies.get("P_DYN")
    assert strategies.find("NOPE[x=1]") is None


def test_variants_are_cells_of_their_own_with_their_options(tmp_path):
    cfg = parse_config(
        config(["FAKE", {"FAKE": {"sleep_s": 0.01}}], options={"FAKE": {"fail": False}}),
        tmp_path / "v.yaml",
    )
    assert cfg.labels == ["FAKE", "FAKE[sleep_s=0.01]"]
    assert cfg.options_for("FAKE[sleep_s=0.01]")["sleep_s"] == 0.01
    assert cfg.options_for("FAKE")["sleep_s"] == 0.0
    ids = [c.id for c in plan_cells(cfg)]
    assert "FAKE-w2-nosave-160x80" in ids and "FAKE[sleep_s=0.01]-w2-nosave-160x80" in ids


@pytest.mark.parametrize(
    ("entries", "says"),
    [
        (["FAKE", {"FAKE": {}}], "lists FAKE twice"),
        ([{"FAKE": {"sleep_s": 1}, "P_1": {}}], "one variant"),
        ([{"NOPE": {"x": 1}}], "unknown strategy 'NOPE'"),
        ([{"FAKE": {"sleep_s": "slow"}}], "strategies: FAKE[sleep_s=slow]: sleep_s"),
        ([{"FAKE": {"colour": "red"}}], "colour"),
        ([{"FAKE": {"sleep_s": [1, 2]}}], "true/false, a number or a plain word"),
        (["P_TORCH[in_order=false]"], "one variant"),
    ],
)
def test_a_malformed_variant_is_one_line_naming_the_key(tmp_path, entries, says):
    path = tmp_path / "v.yaml"
    path.write_text(yaml.safe_dump(config(entries)))
    with pytest.raises(HarnessError) as err:
        load_config(path)
    line = err.value.line()
    assert says in line and "'strategies'" in line and "\n" not in line


def test_an_entry_may_run_at_some_of_the_sweeps_workers(tmp_path):
    cfg = parse_config(
        config(["FAKE", {"FAKE": {"sleep_s": 0.01}, "workers": [2]}], workers=[1, 2]),
        tmp_path / "v.yaml",
    )
    cells = {(c.strategy, c.workers) for c in plan_cells(cfg)}
    assert {("FAKE", 1), ("FAKE", 2), ("FAKE[sleep_s=0.01]", 2)} <= cells
    assert ("FAKE[sleep_s=0.01]", 1) not in cells
    with pytest.raises(HarnessError, match="some of the sweep's workers"):
        parse_config(config([{"FAKE": {}, "workers": [8]}]), tmp_path / "v.yaml")


@pytest.mark.slow
def test_a_sweep_of_variants_is_stored_reported_resumed_and_compared(tmp_path, capsys):
    path = tmp_path / "v.yaml"
    path.write_text(yaml.safe_dump(config(["FAKE", {"FAKE": {"sleep_s": 0.01}}])))
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli.main(["run", str(path), "--out", str(a)]) == 0
    runs = store.load_runs(a)
    assert set(runs["strategy"]) == {"sequential", "FAKE", "FAKE[sleep_s=0.01]"}
    assert len(runs) == 3 * 2
    assert (runs.loc[runs["strategy"].eq("FAKE[sleep_s=0.01]"), "wall_s"] >= 0.01).all()
    results = load_results(a)
    assert results.strategies == ["FAKE", "FAKE[sleep_s=0.01]"]
    assert set(results.known) == {"sequential", "FAKE", "FAKE[sleep_s=0.01]"}
    report = (a / "report.md").read_text()
    assert "FAKE[sleep_s=0.01]" in report
    table = pd.read_csv(a / "tables" / "strong.csv")
    assert {"FAKE", "FAKE[sleep_s=0.01]"} <= set(table["strategy"])

    assert cli.main(["run", str(path), "--resume", str(a)]) == 0  # nothing left to do
    pd.testing.assert_frame_equal(store.load_runs(a), runs)

    assert cli.main(["run", str(path), "--out", str(b)]) == 0
    compared = compare_runs(a, b).speedups
    assert {"FAKE", "FAKE[sleep_s=0.01]"} <= set(compared["strategy"])

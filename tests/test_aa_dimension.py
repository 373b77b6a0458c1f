"""The A/A self-test (`python -m harness aa`) and the dimensioning experiment (`python -m harness
dimension`) end to end, on tiny configs; what they measure is asserted only in its form."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from harness.cli import main
from harness.commands.aa import aa_config_text, twin_entry
from harness.rundir import dimension_file

FAKE = str(Path(__file__).with_name("_fake_strategy.py"))


def tiny(tmp_path: Path, **changes: object) -> Path:
    config = {
        "name": "tiny_aa", "kind": "strong", "plugins": [FAKE],
        "images": {"count": 2, "size": [64, 48], "format": "jpg"},
        "augmentations_per_image": 2,
        "strategies": ["P_1", {"FAKE": {"sleep_s": 0.01}}],
        "saving": [False], "workers": [1], "repeats": 6,
        "warmup": {"runs": 1, "tasks": 0.5}, "seed": 0, **changes,
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_every_entry_gets_a_twin_with_the_same_options_and_workers(tmp_path):
    assert twin_entry("P_1") == {"P_1": {"aa": "B"}}
    assert twin_entry({"FAKE": {"sleep_s": 0.1}, "workers": [1]}) == {
        "FAKE": {"sleep_s": 0.1, "aa": "B"}, "workers": [1]
    }
    data = yaml.safe_load(aa_config_text(str(tiny(tmp_path))))
    assert data["name"] == "tiny_aa_aa" and data["order"] == "rounds"
    assert len(data["strategies"]) == 4


@pytest.mark.slow
def test_the_aa_command_pairs_every_cell_with_its_twin(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["aa", str(tiny(tmp_path)), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "of 2 pairs flagged (p < 0.05)" in printed and "intervals cover 1" in printed
    pairs = pd.read_csv(out / "tables" / "strong_pairs.csv")
    assert sorted(pairs["b"]) == ["FAKE[aa=B,sleep_s=0.01]", "P_1[aa=B]"]
    assert (pairs["rounds"] == 6).all()
    stored = json.loads((out / "meta.json").read_text())["config"]
    assert stored["order"] == "rounds" and len(stored["strategies"]) == 4
    assert "## Paired comparisons" in (out / "report.md").read_text()


@pytest.mark.slow
def test_the_dimension_command_stores_its_levels_in_the_run_folder(tmp_path, capsys):
    config = tiny(tmp_path, strategies=["P_1"], workers=[1, 2], repeats=3, order="sequential")
    out = tmp_path / "run"
    assert main(["run", str(config), "--out", str(out)]) == 0
    capsys.readouterr()
    args = ["dimension", str(config), "--processes", "3", "--runs", "2", "--run", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "3 processes of 2 runs per cell:" in printed and "pinned to each CPU" in printed
    found = dimension_file.read(out)
    assert [c.cell_id for c in found.cells] == ["sequential-w1-nosave-64x48", "P_1-w2-nosave-64x48"]
    assert all(c.within >= 0 and c.between >= 0 and c.runs_per_process >= 1 for c in found.cells)
    assert "## Where the variance lives" in (out / "report.md").read_text()


def test_dimension_refuses_a_single_process(tmp_path, capsys):
    assert main(["dimension", str(tiny(tmp_path)), "--processes", "1"]) == 2
    assert "--processes" in capsys.readouterr().err

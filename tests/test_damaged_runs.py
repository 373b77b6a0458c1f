"""A run folder copied or synced half-way, or from another version, is answered with
one line naming the file and what is wrong (exit 2), by every reader; a resume never
overwrites what it cannot read. Each damage is done for real to a real run folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from harness import cli
from harness.migrations import FORMAT_VERSION
from harness.rundir import store
from harness.schema import TASKS_FILE


@pytest.fixture(scope="module")
def made(tmp_path_factory, images) -> tuple[Path, Path]:
    """(a finished tiny run folder, its config), made once; tests damage copies of it. Its
    image folder also holds a JPEG cut short (left out) and one lacking only its end marker."""
    root = tmp_path_factory.mktemp("damaged")
    photos = root / "photos"
    shutil.copytree(images, photos)
    whole = sorted(photos.iterdir())[0].read_bytes()
    (photos / "z_cut.jpg").write_bytes(whole[: len(whole) * 2 // 3])
    (photos / "z_no_eoi.jpg").write_bytes(whole[:-2])
    config = {
        "name": "damaged",
        "kind": "strong",
        "images": {"input_dir": str(photos), "skip_unreadable": True},
        "augmentations_per_image": 2,
        "strategies": ["P_1"],
        "saving": [True],
        "workers": [2],
        "repeats": 1,
        "warmup": 0,
    }
    cfg = root / "c.yaml"
    cfg.write_text(yaml.safe_dump(config))
    run = root / "run"
    assert cli.main(["run", str(cfg), "--out", str(run)]) == 0
    return run, cfg


@pytest.fixture
def run(made, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(made[0], copy, symlinks=True)
    return copy


def test_skipped_inputs_are_recorded_and_reported(made):
    run = made[0]
    assert (store.load_runs(run)["n_images"] == 3).all()
    meta = json.loads((run / store.META).read_text())
    assert set(meta["input_inventory"]["unreadable"]) == {"z_cut.jpg"}
    assert set(meta["input_inventory"]["notes"]) == {"z_no_eoi.jpg"}
    assert len(meta["inputs_sha256"]) == 64
    report = (run / "report.md").read_text()
    assert "z_cut.jpg" in report and "z_no_eoi.jpg" in report


def refused(capsys, argv: list[str], *names: str) -> str:  # noqa: ANN001
    """The command exits 2 with one line (no traceback) naming every one of `names`."""
    capsys.readouterr()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    for name in names:
        assert name in err, err
    return err


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def readers(run: Path, other: Path, cfg: Path) -> list[list[str]]:
    return [
        ["report", str(run)],
        ["compare", str(other), str(run)],
        ["trace", str(run)],
        ["predict", str(run)],
        ["run", str(cfg), "--resume", str(run)],
    ]


def test_truncated_runs_parquet(run, made, capsys):
    truncate(run / store.RUNS)
    before = (run / store.RUNS).read_bytes()
    for argv in readers(run, made[0], made[1]):
        refused(capsys, argv, store.RUNS, "damaged or truncated")
    assert (run / store.RUNS).read_bytes() == before, "the resume overwrote runs it cannot read"


def test_truncated_trace_file(run, made, capsys):
    damaged = run / TASKS_FILE  # the packed trace of a finished run
    truncate(damaged)
    before = (run / store.RUNS).read_bytes()
    resume = ["run", str(made[1]), "--resume", str(run)]
    for argv in (["report", str(run)], ["trace", str(run)], resume):
        refused(capsys, argv, damaged.name)
    assert (run / store.RUNS).read_bytes() == before


def test_meta_from_a_future_version(run, made, capsys):
    meta = json.loads((run / store.META).read_text())
    meta["format_version"] = FORMAT_VERSION + 1
    (run / store.META).write_text(json.dumps(meta))
    for argv in readers(run, made[0], made[1]):
        refused(capsys, argv, store.META, "format_version", "newer augscale")


def test_unreadable_meta(run, made, capsys):
    truncate(run / store.META)
    for argv in readers(run, made[0], made[1]):
        refused(capsys, argv, store.META, "cannot read it")


def test_deleted_cell_spec_under_resume(run, made, capsys):
    spec = sorted((run / "cells").glob("P_1*.spec.json"))[0]
    spec.unlink()
    before = (run / store.RUNS).read_bytes()
    refused(capsys, ["run", str(made[1]), "--resume", str(run)], spec.name, "missing")
    assert (run / store.RUNS).read_bytes() == before


def test_damaged_cell_results_under_resume(run, made, capsys):
    results = sorted((run / "cells").glob("P_1*.jsonl"))[0]
    results.write_text("{not json\n" + results.read_text())
    refused(capsys, ["run", str(made[1]), "--resume", str(run)], results.name, "damaged line")


def test_changed_inputs_under_resume(run, made, capsys):
    meta = json.loads((run / store.META).read_text())
    photos = Path(meta["config"]["images"]["input_dir"])
    first = sorted(photos.iterdir())[0]
    original = first.read_bytes()
    try:
        cv2.imwrite(str(first), np.full((80, 160, 3), 7, np.uint8))
        before = (run / store.RUNS).read_bytes()
        refused(capsys, ["run", str(made[1]), "--resume", str(run)], "inputs_sha256", "differ")
        assert (run / store.RUNS).read_bytes() == before
    finally:
        first.write_bytes(original)
    capsys.readouterr()
    assert cli.main(["run", str(made[1]), "--resume", str(run)]) == 0  # the same images again

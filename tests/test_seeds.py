"""`python -m harness seeds` on real tiny runs. It times the sequential
baseline at n seeds in fresh child processes, prints the spread, stores seeds.json into a run
folder whose report then shows it, refuses a damaged file in one line, and holds the
machine-wide lock while it measures."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pandas as pd
import pytest
import yaml
from _tiny import AUGMENTATIONS, N_IMAGES

from harness.cli import main
from harness.errors import HarnessError
from harness.measure import seeds
from harness.measure.lock import MachineLock
from harness.rundir import seeds_file

CONFIG = {
    "name": "seeded",
    "kind": "strong",
    "images": {"count": N_IMAGES, "size": [160, 80], "format": "jpg"},
    "augmentations_per_image": AUGMENTATIONS,
    "strategies": ["P_1"],
    "saving": [True, False],
    "workers": [2],
    "repeats": {"min": 2, "max": 3, "ci": 0.05},  # a precision target: still one run per seed
    "warmup": {"runs": 1, "tasks": 0.5},  # the config's partial warm-up in every seed's child
    "seed": 0,
}


def write_config(folder: Path, **changes: object) -> Path:
    path = folder / "seeded.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, **changes}, sort_keys=False))
    return path


def one_line_error(capsys) -> str:  # noqa: ANN001
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> tuple[Path, Path, str, str, tuple]:
    """A tiny sweep, its report before seeds, then `seeds --n 3 --rounds 2 --run` into it."""
    tmp = tmp_path_factory.mktemp("seeds")
    cfg, run_dir = write_config(tmp), tmp / "run"
    assert main(["run", str(cfg), "--out", str(run_dir)]) == 0
    before = (run_dir / "report.md").read_text()
    stored = (sorted((run_dir / "cells").iterdir()), len(pd.read_parquet(run_dir / "runs.parquet")))
    assert main(["seeds", str(cfg), "--n", "3", "--rounds", "2", "--run", str(run_dir)]) == 0
    return cfg, run_dir, before, (run_dir / "report.md").read_text(), stored


@pytest.mark.slow
def test_seeds_are_measured_and_stored(seeded):
    _, run_dir, _, _, (cells, rows) = seeded
    found = seeds_file.read(run_dir)
    assert found is not None and found.format_version == seeds_file.FORMAT
    assert found.seeds == [0, 1, 2] and found.rounds == 2 and found.interrupted is None
    assert (found.warmup_runs, found.warmup_tasks) == (1, 0.5)
    assert found.planned == len(found.runs) == 12
    done = [(r.round, r.seed, r.saving) for r in found.runs]
    assert done == [(n, s, m) for n in (0, 1) for s in (0, 1, 2) for m in (True, False)]
    assert all(r.status == "ok" and r.wall_s > 0 and r.cpu_s > 0 for r in found.runs)
    assert len(found.spreads) == 2
    for spread in found.spreads:
        walls = {
            s: sorted(r.wall_s for r in found.runs if (r.seed, r.saving) == (s, spread.saving))
            for s in (0, 1, 2)
        }
        assert spread.times == {s: pytest.approx(sum(w) / 2) for s, w in walls.items()}
        ranges = sorted((w[1] - w[0]) / (sum(w) / 2) for w in walls.values())
        assert spread.noise == pytest.approx(ranges[1])
        assert spread.relative == pytest.approx((spread.high - spread.low) / spread.median)
    assert not list(run_dir.glob(".*.tmp")), "written atomically: no temporary file left"
    # The seeds' children work in a folder of their own, never among the run's cells and runs.
    assert sorted((run_dir / "cells").iterdir()) == cells
    assert len(pd.read_parquet(run_dir / "runs.parquet")) == rows


@pytest.mark.slow
def test_report_shows_the_seeds(seeded):
    _, run_dir, before, after, _ = seeded
    assert "Seed sensitivity" not in before, "a folder without seeds.json renders as before"
    assert "## Seed sensitivity" in after
    assert "0 (this run's)" in after and seeds_file.COMPARE in after
    assert "saving: 3 seeds, min" in after and "run-to-run noise" in after
    assert "Seed sensitivity" in (run_dir / "report.html").read_text()
    found = seeds_file.read(run_dir)
    for spread in found.spreads:
        assert spread.verdict() in after
    for run in found.runs:
        assert f"{run.wall_s:.2f}" in after


@pytest.mark.slow
def test_prints_the_spread_without_storing(tmp_path, capsys):
    cfg = write_config(tmp_path, warmup=0)
    capsys.readouterr()
    assert main(["seeds", str(cfg), "--n", "2", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    for line in ("round 1, seed 0, saving:", "seed 1, no saving:", "not measured (one round)"):
        assert line in out, out
    assert seeds_file.COMPARE in out and "Not stored" in out
    assert list(tmp_path.iterdir()) == [cfg], "without --run nothing is written"


@pytest.mark.parametrize(
    "content, says",
    [
        ('{"format_version": 1, "config_na', "damaged or truncated"),
        ('{"format_version": 99}', "newer augscale"),
        ('{"format_version": 1, "runs": []}', "not a seeds file"),
    ],
)
@pytest.mark.slow
def test_a_damaged_file_is_one_line(seeded, tmp_path, capsys, content, says):
    copy = tmp_path / "copy"
    shutil.copytree(seeded[1], copy)
    (copy / seeds_file.FILE).write_text(content)
    capsys.readouterr()
    assert main(["report", str(copy)]) == 2
    err = one_line_error(capsys)
    assert str(copy / seeds_file.FILE) in err and says in err and "Fix:" in err


@pytest.mark.slow
def test_refuses_a_run_of_another_workload(seeded, tmp_path, capsys):
    _, run_dir, _, _, _ = seeded
    stored = (run_dir / seeds_file.FILE).read_text()
    other = write_config(tmp_path, augmentations_per_image=AUGMENTATIONS + 1)
    capsys.readouterr()
    assert main(["seeds", str(other), "--run", str(run_dir)]) == 2
    err = one_line_error(capsys)
    assert "augmentations_per_image" in err and str(run_dir) in err
    assert (run_dir / seeds_file.FILE).read_text() == stored


def test_one_seed_has_no_spread(tmp_path, capsys):
    assert main(["seeds", str(write_config(tmp_path)), "--n", "1"]) == 2
    assert "--n 2 or more" in one_line_error(capsys)


@pytest.mark.slow
def test_holds_the_machine_lock(tmp_path, capsys, monkeypatch):
    cfg = write_config(tmp_path, warmup=0, saving=[True])
    with MachineLock("run", "elsewhere.yaml"):
        capsys.readouterr()
        assert main(["seeds", str(cfg), "--n", "2"]) == 2
        err = one_line_error(capsys)
        assert "elsewhere.yaml" in err and "--ignore-lock" in err
        assert main(["seeds", str(cfg), "--n", "2", "--rounds", "1", "--ignore-lock"]) == 0
        out, err = capsys.readouterr()
        assert "measuring beside another measurement" in err and "seed 1, saving:" in out
    real, held = seeds._one, []

    def checked(*args):  # noqa: ANN002, ANN202
        with pytest.raises(HarnessError, match="`seeds`") as refused:
            with MachineLock("run", "other.yaml"):
                pass
        held.append(refused)
        return real(*args)

    monkeypatch.setattr(seeds, "_one", checked)
    assert main(["seeds", str(cfg), "--n", "2", "--rounds", "1"]) == 0
    assert len(held) == 2, "every seed's run measured under the lock"


@pytest.mark.slow
def test_an_interrupt_keeps_the_finished_seeds(tmp_path, capsys, monkeypatch):
    cfg = write_config(tmp_path, warmup=0)
    run_dir = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(run_dir)]) == 0
    real, calls = seeds._one, []

    def interrupted_second(*args):  # noqa: ANN002, ANN202
        calls.append(args)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C would, between two runs
        return real(*args)

    monkeypatch.setattr(seeds, "_one", interrupted_second)
    args = ["seeds", str(cfg), "--n", "2", "--rounds", "1", "--run", str(run_dir)]
    assert main(args) == 128 + signal.SIGINT
    found = json.loads((run_dir / seeds_file.FILE).read_text())
    assert found["interrupted"] == "SIGINT" and len(found["runs"]) == 1
    assert "interrupted by SIGINT after 1 of 4 runs" in (run_dir / "report.md").read_text()


def test_the_verdict_weighs_the_spread_against_the_noise():
    times = {0: 4.0, 1: 5.0}  # (max-min)/median 22%
    assert seeds_file.Spread(True, times, None).verdict().startswith("give --rounds 2")
    assert "the seeds'" in seeds_file.Spread(True, times, 0.05).verdict()
    assert "could not tell" in seeds_file.Spread(True, times, 0.15).verdict()

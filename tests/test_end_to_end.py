"""YAML -> run (a child process per cell) -> runs.parquet + meta.json -> report; report, verify,
timeout.

Generated images go to the project's (gitignored) .cache/ folder, as the CLI does.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
import yaml

from harness.cli import main
from harness.config import load_config
from harness.measure.verify import verify_runs
from harness.plan.cells import plan_cells, runnable

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RUN_COLUMNS = [
    "strategy",
    "workers",
    "saving",
    "width",
    "height",
    "n_images",
    "augmentations_per_image",
    "repeat",
    "wall_s",
    "status",
    "error",
]
TABLE_COLUMNS = [
    "strategy",
    "saving",
    "workers",
    "width",
    "height",
    "time_s",
    "speedup",
    "efficiency",
]

STRONG = {
    "name": "e2e_strong",
    "kind": "strong",
    "images": {"count": 2, "size": [160, 80], "format": "jpg"},
    "augmentations_per_image": 3,
    "strategies": ["P_1", "P_2", "P_Q"],
    "saving": [True, False],
    "workers": [1, 2],
    "repeats": 2,
    "order": "sequential",  # the plain path; paired rounds have tests of their own
    "warmup": 0,
    "seed": 0,
}
WEAK = {
    "name": "e2e_weak",
    "kind": "weak",
    "images": {"count": 2, "size": [80, 80], "format": "jpg"},
    "augmentations_per_image": 3,
    "strategies": ["P_1", "P_2", "P_Q"],
    "saving": [True, False],
    "points": [{"workers": 2, "size": [160, 80]}],
    "repeats": 1,
    "order": "sequential",  # the plain path; paired rounds have tests of their own
    "warmup": 0,
    "seed": 0,
}


def write_config(folder: Path, data: dict) -> Path:
    path = folder / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def do_run(tmp: Path, data: dict) -> tuple[Path, Path, int]:
    cfg = write_config(tmp, data)
    run_dir = tmp / "run"
    code = main(["run", str(cfg), "--out", str(run_dir)])
    return cfg, run_dir, code


@pytest.fixture(scope="module")
def strong_run(tmp_path_factory) -> tuple[Path, Path, int]:
    return do_run(tmp_path_factory.mktemp("strong"), STRONG)


@pytest.fixture(scope="module")
def weak_run(tmp_path_factory) -> tuple[Path, Path, int]:
    return do_run(tmp_path_factory.mktemp("weak"), WEAK)


def expected_rows(cfg: Path) -> set[tuple]:
    config = load_config(cfg)
    return {
        (c.strategy, c.workers, c.saving, c.width, c.height, r)
        for c in runnable(plan_cells(config))
        for r in range(config.repeats)
    }


def check_runs(cfg: Path, run_dir: Path, data: dict) -> pd.DataFrame:
    runs = pd.read_parquet(run_dir / "runs.parquet")
    for col in RUN_COLUMNS:
        assert col in runs.columns, col
    got = [
        tuple(r)
        for r in runs[["strategy", "workers", "saving", "width", "height", "repeat"]].itertuples(
            index=False
        )
    ]
    assert len(got) == len(set(got))
    assert set(got) == expected_rows(cfg)
    assert (runs["status"] == "ok").all(), runs[["cell_id", "status", "error"]]
    assert (runs["error"] == "").all()
    assert (runs["wall_s"] > 0).all()
    assert (runs["n_images"] == data["images"]["count"]).all()
    assert (runs["augmentations_per_image"] == data["augmentations_per_image"]).all()
    return runs


def check_meta(run_dir: Path, data: dict) -> dict:
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["config"]["name"] == data["name"]
    assert meta["config"]["kind"] == data["kind"]
    assert meta["config"]["repeats"] == data["repeats"]
    for key in ("cpu_model", "physical_cores", "logical_cores", "memory_gb", "os"):
        assert key in meta["host"], key
    assert (
        meta["host"]["physical_cores"] >= 1
        and meta["host"]["logical_cores"] >= meta["host"]["physical_cores"]
    )
    assert meta["host"]["memory_gb"] > 0
    assert meta["versions"]["python"].count(".") == 2
    assert meta["versions"]["albumentations"] == "2.0.8"
    assert "git_commit" in meta
    assert meta["started_at"] and meta["ended_at"]
    setup = meta["setup"]
    assert setup["start_method"] == "fork" and setup["affinity"] and len(setup["loadavg"]) == 3
    assert setup["worker_threads"], "thread pools are read back inside a worker"
    assert meta["started_at"] <= meta["ended_at"]
    assert meta["n_images"] == data["images"]["count"]
    return meta


def check_outputs(run_dir: Path, kind: str) -> None:
    table = pd.read_csv(run_dir / "tables" / f"{kind}.csv")
    assert list(table.columns[: len(TABLE_COLUMNS)]) == TABLE_COLUMNS
    assert table["time_s"].notna().all()
    png = run_dir / "plots" / f"{kind}_scaling.png"
    assert png.is_file() and png.read_bytes()[:8] == PNG_MAGIC
    assert (run_dir / "report.md").is_file()
    assert not (run_dir / "scratch").exists()  # the runner clears its scratch outputs


def regenerate(run_dir: Path, tmp_path: Path, kind: str, capsys) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    (copy / "report.md").unlink()
    shutil.rmtree(copy / "plots")
    shutil.rmtree(copy / "tables")
    capsys.readouterr()
    assert main(["report", str(copy)]) == 0
    printed = capsys.readouterr().out.split()
    assert str(copy / "report.md") in printed
    check_outputs(copy, kind)
    assert (copy / "report.md").read_text() == (run_dir / "report.md").read_text()
    pd.testing.assert_frame_equal(
        pd.read_csv(copy / "tables" / f"{kind}.csv"),
        pd.read_csv(run_dir / "tables" / f"{kind}.csv"),
    )


# ---------------------------------------------------------------- strong


@pytest.mark.slow
def test_strong_run_exit_0(strong_run):
    _, run_dir, code = strong_run
    assert code == 0
    assert {"meta.json", "plots", "report.md", "runs.parquet", "tables"} <= {
        p.name for p in run_dir.iterdir()
    }


@pytest.mark.slow
def test_strong_runs_parquet(strong_run):
    cfg, run_dir, _ = strong_run
    runs = check_runs(cfg, run_dir, STRONG)
    # 2 modes x baseline + P_1/P_2 at W=1,2 + P_Q at W=2 with saving = 11 cells, 2 repeats each
    assert len(runs) == 11 * 2
    assert not ((runs["strategy"] == "P_Q") & ((runs["workers"] == 1) | ~runs["saving"])).any()


@pytest.mark.slow
def test_strong_meta(strong_run):
    _, run_dir, _ = strong_run
    meta = check_meta(run_dir, STRONG)
    skipped = {(s["strategy"], s["workers"], s["saving"]) for s in meta["skipped"]}
    assert skipped == {("P_Q", 1, True), ("P_Q", 1, False), ("P_Q", 2, False)}


@pytest.mark.slow
def test_strong_report(strong_run):
    _, run_dir, _ = strong_run
    check_outputs(run_dir, "strong")
    report = (run_dir / "report.md").read_text()
    for word in ("Saving", "No saving", "Speedup", "Efficiency", "e2e_strong"):
        assert word in report, word
    runs = pd.read_parquet(run_dir / "runs.parquet")
    for saving, label in ((True, "saving"), (False, "no saving")):
        t = runs[(runs["strategy"] == "sequential") & (runs["saving"] == saving)]["wall_s"].median()
        assert f"**Baseline ({label}):** sequential, {t:.2f} s" in report
        assert f"{t:.2f}" in report
    assert "skipped" in report  # the P_Q cells the plan skipped are explained


@pytest.mark.slow
def test_strong_table_values(strong_run):
    _, run_dir, _ = strong_run
    table = pd.read_csv(run_dir / "tables" / "strong.csv")
    runs = pd.read_parquet(run_dir / "runs.parquet")
    assert len(table) == 11
    for saving in (True, False):
        block = table[table["saving"] == saving]
        t_seq = runs[(runs["strategy"] == "sequential") & (runs["saving"] == saving)][
            "wall_s"
        ].median()
        assert block.iloc[0]["strategy"] == "sequential"
        assert block.iloc[0]["time_s"] == pytest.approx(t_seq, rel=1e-5)
        assert block["speedup"].to_numpy() == pytest.approx(
            (t_seq / block["time_s"]).to_numpy(), rel=1e-4
        )
        assert block["efficiency"].to_numpy() == pytest.approx(
            (block["speedup"] / block["workers"]).to_numpy(), rel=1e-4
        )


@pytest.mark.slow
def test_strong_report_regenerates(strong_run, tmp_path, capsys):
    _, run_dir, _ = strong_run
    regenerate(run_dir, tmp_path, "strong", capsys)


@pytest.mark.slow
def test_out_folder_must_be_new(strong_run, capsys):
    cfg, run_dir, _ = strong_run
    capsys.readouterr()
    assert main(["run", str(cfg), "--out", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not empty" in err[0] and str(run_dir) in err[0]


def test_report_on_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "runs.parquet" in err


# ---------------------------------------------------------------- weak


@pytest.mark.slow
def test_weak_run(weak_run, tmp_path, capsys):
    cfg, run_dir, code = weak_run
    assert code == 0
    runs = check_runs(cfg, run_dir, WEAK)
    assert len(runs) == 7  # saving: baseline + P_1, P_2, P_Q; no saving: baseline + P_1, P_2
    base = runs[runs["strategy"] == "sequential"]
    assert set(zip(base["width"], base["height"], strict=True)) == {(80, 80)}
    rest = runs[runs["strategy"] != "sequential"]
    assert set(zip(rest["workers"], rest["width"], rest["height"], strict=True)) == {(2, 160, 80)}
    check_meta(run_dir, WEAK)
    check_outputs(run_dir, "weak")
    assert not (run_dir / "tables" / "strong.csv").exists()
    report = (run_dir / "report.md").read_text()
    for word in ("Saving", "No saving", "Efficiency", "160x80", "80x80 (sequential)"):
        assert word in report, word
    table = pd.read_csv(run_dir / "tables" / "weak.csv")
    for saving in (True, False):
        block = table[table["saving"] == saving]
        t_seq = block.iloc[0]["time_s"]
        assert block.iloc[0]["strategy"] == "sequential"
        assert block["efficiency"].to_numpy() == pytest.approx(
            (t_seq / block["time_s"]).to_numpy(), rel=1e-4
        )
        assert block["speedup"].to_numpy() == pytest.approx(
            (block["efficiency"] * block["workers"]).to_numpy(), rel=1e-4
        )
    regenerate(run_dir, tmp_path, "weak", capsys)


# ---------------------------------------------------------------- verify


@pytest.mark.slow
def test_verify(tmp_path, capsys):
    cfg = write_config(tmp_path, STRONG)
    assert main(["verify", str(cfg)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    expected = [(name, w) for name, w, _, _ in verify_runs(load_config(cfg))]
    # the config's strategies first (each batched one twice: its batch, then VERIFY_BATCH), then
    # every other one installed here (test_verify.py)
    assert expected[:5] == [("sequential", 1), ("P_1", 1), ("P_1", 1), ("P_2", 1), ("P_2", 1)]
    assert ("P_Q", 2) in expected and ("P_Q", 1) not in expected
    lines = [line for line in out if "sha256=" in line]
    assert len(lines) == len(expected)
    digests = set()
    for line, (name, w) in zip(lines, expected, strict=True):
        fields = line.split()
        assert fields[0] == name and fields[1] == f"W={w}"
        assert "160x80" in line and line.endswith("OK")
        digests.add(line.split("sha256=")[1].split()[0])
    assert len(digests) == 1
    assert out[-1] == "all strategies match sequential"


# ---------------------------------------------------------------- per-cell timeout


def _cell_processes(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
            if (
                "harness.measure.child" in cmd
                and marker in cmd
                and proc.info["status"] != psutil.STATUS_ZOMBIE
            ):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _cell_children() -> list[psutil.Process]:
    """Descendants of this test process still running harness.measure.child (or forked from it)."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if (
                "harness.measure.child" in " ".join(proc.cmdline())
                and proc.status() != psutil.STATUS_ZOMBIE
            ):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@pytest.mark.slow
def test_cell_timeout(tmp_path, capsys):
    data = {
        "name": "e2e_timeout",
        "kind": "strong",
        "images": {"count": 2, "size": [1000, 500], "format": "jpg"},
        "augmentations_per_image": 30,
        "strategies": ["P_1"],
        "saving": [True],
        "workers": [1],
        "repeats": 1,
        "order": "sequential",  # the plain path; paired rounds have tests of their own
        "warmup": 0,
        "cell_timeout_s": 0.5,
    }
    t0 = time.monotonic()
    cfg, run_dir, code = do_run(tmp_path, data)
    assert time.monotonic() - t0 < 30
    assert code == 1
    err = capsys.readouterr().err
    assert "did not finish ok" in err and "Traceback" not in err

    runs = pd.read_parquet(run_dir / "runs.parquet")
    assert len(runs) == len(expected_rows(cfg)) == 2  # sequential and P_1 at W=1
    assert (runs["status"] == "timeout").all()
    assert runs["wall_s"].isna().all()
    assert runs["error"].str.contains("timeout").all()

    report = (run_dir / "report.md").read_text()
    assert "timeout" in report
    assert "did not finish" in report  # the baseline line
    assert (run_dir / "plots" / "strong_scaling.png").read_bytes()[:8] == PNG_MAGIC
    table = pd.read_csv(run_dir / "tables" / "strong.csv")
    assert table["time_s"].isna().all() and (table["n_ok"] == 0).all()
    assert json.loads((run_dir / "meta.json").read_text())["ended_at"]

    # no cell process (nor pool worker forked from it) is left behind
    marker = str(run_dir / "cells")
    deadline = time.monotonic() + 5
    while _cell_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _cell_processes(marker) == []
    assert _cell_children() == []


@pytest.mark.slow
def test_cell_timeout_kills_pool_workers(tmp_path, capsys):
    """Killed mid-run (pool started, 2 workers busy): the whole process group goes."""
    data = {
        "name": "e2e_timeout_pool",
        "kind": "strong",
        "images": {"count": 2, "size": [2000, 1000], "format": "jpg"},
        "augmentations_per_image": 300,  # about a minute of work: no cell ends in 7 s
        "strategies": ["P_2"],
        "saving": [True],
        "workers": [2],
        "repeats": 1,
        "order": "sequential",  # the plain path; paired rounds have tests of their own
        "warmup": 0,
        "cell_timeout_s": 7.0,  # past the child's start-up (seconds, when it imports torch)
        "profile": False,  # profiling 2000x1000 images takes 16 s; tests/test_profile.py has it
    }
    cfg, run_dir, code = do_run(tmp_path, data)
    assert code == 1
    runs = pd.read_parquet(run_dir / "runs.parquet")
    assert len(runs) == len(expected_rows(cfg)) == 2
    assert (runs["status"] == "timeout").all()
    assert (run_dir / "report.md").is_file()
    marker = str(run_dir / "cells")
    deadline = time.monotonic() + 5
    while _cell_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _cell_processes(marker) == []
    assert _cell_children() == []
    assert not (run_dir / "scratch").exists()

"""Every fault injected for real into a real sweep: signals, killed workers, bad images,
unwritable and full disks. Nothing finished may be lost, nothing may end in a traceback."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import psutil
import pytest
import yaml

from harness import cli
from harness.rundir import store

ROOT = Path(__file__).resolve().parent.parent


def write_config(path: Path, **over: object) -> Path:
    config = {
        "name": "faults",
        "kind": "strong",
        "images": {"count": 2, "size": [400, 200]},
        "augmentations_per_image": 6,
        "strategies": ["P_1", "P_2"],
        "saving": [True],
        "workers": [1, 2],
        "repeats": 2,
        "order": "sequential",  # the plain path; paired rounds have tests of their own
        "warmup": 0,
    }
    for key, value in over.items():
        user_folder = key == "images" and "input_dir" in value  # count would sample it
        if isinstance(value, dict) and isinstance(config.get(key), dict) and not user_folder:
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    path.write_text(yaml.safe_dump(config))
    return path


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "harness", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def cell_processes(under: Path) -> list[psutil.Process]:
    """Cell processes of the run folder `under` (other tests may run sweeps at the same time)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "harness.measure.child" in cmd and str(under) in cmd:
            found.append(p)
    return found


def wait_for(predicate, timeout: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def wait_for_value(find, timeout: float = 60.0):  # noqa: ANN001, ANN201
    """find()'s first answer that is not None."""
    deadline = time.monotonic() + timeout
    while (found := find()) is None:
        assert time.monotonic() < deadline, "nothing found in time"
        time.sleep(0.05)
    return found


def rows(run_dir: Path) -> pd.DataFrame:
    return store.load_runs(run_dir)


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.slow
def test_signal_keeps_finished_runs_and_resume_completes(tmp_path, signum, code):
    cfg = write_config(tmp_path / "c.yaml", augmentations_per_image=16)
    out = tmp_path / "run"
    proc = start("run", str(cfg), "--out", str(out))
    wait_for(lambda: (out / store.RUNS).is_file())
    wait_for(lambda: len(cell_processes(out)) > 0)  # a later cell is mid-run
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert f"--resume {out}" in err
    assert not cell_processes(out), "a cell process outlived the interrupted sweep"
    assert (out / "report.md").is_file(), "the partial report is rendered"
    before = rows(out)
    assert len(before) < 10 and (before["status"] == "ok").all()
    assert not (out / "scratch").exists()

    resumed = start("run", str(cfg), "--resume", str(out))
    _, err = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, err
    after = rows(out)
    assert len(after) == 10  # 5 cells x 2 repeats
    assert not after.duplicated(["cell_id", "repeat"]).any()
    merged = after.merge(before, on=["cell_id", "repeat"], suffixes=("", "_before"))
    assert (merged["wall_s"] == merged["wall_s_before"]).all(), "resume must not redo finished runs"
    assert json.loads((out / store.META).read_text())["resumed_at"]


@pytest.mark.slow
def test_resume_refuses_a_config_that_changes_the_measurement(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", strategies=["P_1"], workers=[2], repeats=1)
    out = tmp_path / "run"
    assert cli.main(["run", str(cfg), "--out", str(out)]) == 0
    changed = write_config(tmp_path / "c2.yaml", strategies=["P_1"], workers=[2], repeats=1, seed=7)
    capsys.readouterr()
    assert cli.main(["run", str(changed), "--resume", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "'seed'" in err and str(out) in err and "\n" not in err
    more = write_config(tmp_path / "c3.yaml", strategies=["P_1"], workers=[2], repeats=2)
    assert cli.main(["run", str(more), "--resume", str(out)]) == 0
    assert len(rows(out)) == 4  # 2 cells x 2 repeats: only the new repeat ran


@pytest.mark.slow
def test_resume_accepts_a_folder_older_than_a_config_key(tmp_path):
    """A run folder written before a key existed (here `slicing_last`) lacks it in meta.json: the
    key's default is what it was measured under, so the same config resumes it."""
    cfg = write_config(tmp_path / "c.yaml", strategies=["P_1"], workers=[2], repeats=1)
    out = tmp_path / "run"
    assert cli.main(["run", str(cfg), "--out", str(out)]) == 0
    meta = json.loads((out / store.META).read_text())
    del meta["config"]["slicing_last"]
    (out / store.META).write_text(json.dumps(meta))
    more = write_config(tmp_path / "c2.yaml", strategies=["P_1"], workers=[2], repeats=2)
    assert cli.main(["run", str(more), "--resume", str(out)]) == 0
    assert len(rows(out)) == 4


@pytest.mark.slow
def test_killed_worker_fails_the_run_not_the_sweep(tmp_path):
    cfg = write_config(
        tmp_path / "c.yaml",
        images={"size": [800, 400]},
        strategies=["P_1"],
        workers=[2],
        repeats=1,
        augmentations_per_image=200,
        cell_timeout_s=90,
        profile=False,  # the pipeline's profile is tests/test_profile.py's
    )
    out = tmp_path / "run"
    proc = start("run", str(cfg), "--out", str(out))

    def pool_worker() -> psutil.Process | None:
        # The cmdline read by process_iter: a cell that is exiting answers cmdline() with [].
        for cell in cell_processes(out):
            spec = json.loads(Path(cell.info["cmdline"][-1]).read_text())
            if spec["cell"]["strategy"] == "P_1":
                with contextlib.suppress(psutil.NoSuchProcess):
                    kids = cell.children()
                    return kids[0] if kids else None
        return None

    try:
        wait_for(lambda: pool_worker() is not None)
        time.sleep(1.0)  # well into the run
        worker = wait_for_value(pool_worker)
        worker.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        leftover = cell_processes(out)
        for cell in leftover:  # never leave a cell holding the test lock for the next test
            with contextlib.suppress(psutil.NoSuchProcess):
                cell.kill()
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    runs = rows(out).set_index("strategy")
    assert runs.loc["sequential", "status"] == "ok"
    assert runs.loc["P_1", "status"] == "failed"
    assert "WorkerDied" in runs.loc["P_1", "error"]
    assert "failed" in (out / "report.md").read_text()
    assert not (out / "scratch").exists()
    assert not leftover


@pytest.mark.slow
def test_exception_in_worker_is_a_failed_run(tmp_path, capsys):
    images = tmp_path / "imgs"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), np.zeros((40, 60, 3), np.uint8))
    cfg = write_config(
        tmp_path / "c.yaml",
        images={"input_dir": str(images)},
        strategies=["P_2"],
        workers=[2],
        repeats=1,
    )
    out = tmp_path / "run"
    # Make the file unreadable after the preflight inventory: P_2's workers raise while reading.
    real_prepare = cli_prepare = __import__("harness.plan.inputs", fromlist=["prepare"]).prepare

    def prepare_then_break(config, inputs, run_dir):  # noqa: ANN001, ANN202
        found = real_prepare(config, inputs, run_dir)
        (images / "a.png").write_bytes(b"not a png any more")
        return found

    import harness.plan.inputs

    harness.plan.inputs.prepare = prepare_then_break
    try:
        code = cli.main(["run", str(cfg), "--out", str(out)])
    finally:
        harness.plan.inputs.prepare = cli_prepare
    assert code == 1
    runs = rows(out)
    assert (runs["status"] == "failed").all()
    assert runs["error"].str.contains("cannot read image").all()


def bad_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    rgb = np.full((30, 40, 3), 120, np.uint8)
    cv2.imwrite(str(folder / "b_color.JPG"), rgb)
    cv2.imwrite(str(folder / "c_gray.png"), np.full((30, 40), 90, np.uint8))
    cv2.imwrite(str(folder / "d_rgba.png"), np.full((30, 40, 4), 200, np.uint8))
    cv2.imwrite(str(folder / "e_deep.tiff"), np.full((30, 40, 3), 40000, np.uint16))
    (folder / "a_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    (folder / ".hidden.jpg").write_bytes(rgb.tobytes())
    (folder / "notes.txt").write_text("not an image")
    (folder / "sub").mkdir()
    cv2.imwrite(str(folder / "sub" / "x.jpg"), rgb)
    return folder


def test_unreadable_images_are_listed_before_anything_runs(tmp_path, capsys):
    folder = bad_folder(tmp_path)
    cfg = write_config(
        tmp_path / "c.yaml",
        images={"input_dir": str(folder)},
        strategies=["P_1"],
        workers=[2],
        repeats=1,
    )
    out = tmp_path / "run"
    assert cli.main(["run", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "a_corrupt.jpg" in err and "skip_unreadable" in err and "\n" not in err
    assert not out.exists()


@pytest.mark.slow
def test_skip_unreadable_runs_the_rest_and_records_everything(tmp_path):
    folder = bad_folder(tmp_path)
    cfg = write_config(
        tmp_path / "c.yaml",
        images={"input_dir": str(folder), "skip_unreadable": True},
        strategies=["P_1"],
        workers=[2],
        repeats=1,
    )
    out = tmp_path / "run"
    assert cli.main(["run", str(cfg), "--out", str(out)]) == 0
    runs = rows(out)
    assert (runs["status"] == "ok").all() and (runs["n_images"] == 4).all()
    inv = json.loads((out / store.META).read_text())["input_inventory"]
    assert set(inv["unreadable"]) == {"a_corrupt.jpg"}
    assert "grayscale" in inv["conversions"]["c_gray.png"]
    assert "RGBA" in inv["conversions"]["d_rgba.png"]
    assert "uint16" in inv["conversions"]["e_deep.tiff"]
    assert (
        "b_color.JPG" not in inv["conversions"]
    )  # upper-case extension accepted, nothing to convert
    assert {".hidden.jpg", "notes.txt", "sub/"} <= set(inv["ignored"])


def _mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
        ).returncode
        == 0
    )


def _umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], capture_output=True)


@pytest.mark.slow
def test_unwritable_output_folder_is_a_failed_cell(tmp_path):
    target = tmp_path / "ro"
    mounted = _mount_tmpfs(target, "size=1m,ro")
    if not mounted:
        target.chmod(0o500)  # not root: permissions are enforced
    try:
        cfg = write_config(
            tmp_path / "c.yaml",
            strategies=["P_1"],
            workers=[2],
            repeats=1,
            scratch_dir=str(target / "scratch"),
        )
        out = tmp_path / "run"
        assert cli.main(["run", str(cfg), "--out", str(out), "--force"]) == 1
        runs = rows(out)
        assert (runs["status"] == "failed").all()
        assert runs["error"].str.contains("cannot prepare the output folder").all()
        assert (out / "report.md").is_file()
    finally:
        if mounted:
            _umount(target)


@pytest.mark.slow
def test_full_disk_mid_run_is_a_failed_cell(tmp_path):
    target = tmp_path / "small"
    if not _mount_tmpfs(target, "size=256k"):
        pytest.skip(
            "cannot mount a small tmpfs here (not root); "
            "test_save_reports_a_full_disk covers the message"
        )
    try:
        cfg = write_config(
            tmp_path / "c.yaml",
            strategies=["P_1", "P_Q"],
            workers=[2],
            repeats=1,
            augmentations_per_image=40,
            scratch_dir=str(target / "scratch"),
            cell_timeout_s=120,
        )
        out = tmp_path / "run"
        assert cli.main(["run", str(cfg), "--out", str(out), "--force"]) == 1
        runs = rows(out)
        assert (runs["status"] == "failed").all(), runs[["cell_id", "status", "error"]]
        assert runs["error"].str.contains("disk is full").all()
        assert not any((target / "scratch").iterdir()), (
            "scratch outputs are cleaned after a failed run"
        )
    finally:
        _umount(target)


def test_save_reports_a_full_disk(tmp_path, monkeypatch):
    from experiments import workload

    monkeypatch.setattr(workload.cv2, "imwrite", lambda *a: False)
    monkeypatch.setattr(
        workload.shutil,
        "disk_usage",
        lambda p: os.statvfs_result((0,) * 10) and type("U", (), {"free": 0})(),
    )
    with pytest.raises(OSError, match="disk is full"):
        workload.save(np.zeros((10, 10, 3), np.uint8), tmp_path / "x.jpg")


def test_preflight_refuses_absurd_sizes(tmp_path, capsys):
    cfg = write_config(tmp_path / "c.yaml", images={"count": 10**9})
    assert cli.main(["run", str(cfg), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "MiB" in err and "--force" in err and "\n" not in err
    assert not (tmp_path / "run").exists()


def test_yaml_tags_are_not_executed(tmp_path, capsys):
    cfg = tmp_path / "evil.yaml"
    cfg.write_text(
        "name: !!python/object/apply:os.system ['touch pwned']\nkind: strong\nworkers: [1]\n"
    )
    assert cli.main(["run", str(cfg), "--dry-run"]) == 2
    assert "malformed YAML" in capsys.readouterr().err
    assert not Path("pwned").exists()

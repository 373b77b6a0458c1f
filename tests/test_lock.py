"""One measurement per machine at a time. Two sweeps started at once: the second
exits 2 naming the first; report, compare and --dry-run take no lock; --ignore-lock overrides;
a killed holder leaves no stale lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from _tiny import AUGMENTATIONS

from harness import cli
from harness.errors import HarnessError
from harness.measure.lock import LOCK_ENV, MachineLock

ROOT = Path(__file__).resolve().parent.parent
FAKE = str(Path(__file__).with_name("_fake_strategy.py"))


def write_config(path: Path, images: Path, sleep_s: float) -> Path:
    config = {
        "name": "locked",
        "kind": "strong",
        "images": {"input_dir": str(images)},
        "augmentations_per_image": AUGMENTATIONS,
        "plugins": [FAKE],
        "strategies": ["FAKE"],
        "options": {"FAKE": {"sleep_s": sleep_s}},
        "saving": [True],
        "workers": [1],
        "repeats": 1,
        "warmup": 0,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def wait_for(predicate, timeout: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def holder(lock: Path) -> dict:
    try:
        return json.loads(lock.read_text())
    except (OSError, ValueError):
        return {}


@pytest.mark.slow
def test_two_sweeps_at_once(tmp_path, images, monkeypatch, capsys):
    lock = tmp_path / "machine.lock"
    monkeypatch.setenv(LOCK_ENV, str(lock))
    slow = write_config(tmp_path / "slow.yaml", images, sleep_s=3.0)
    first_out = tmp_path / "first"
    first = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(slow), "--out", str(first_out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: holder(lock).get("run_dir"))  # the first one is measuring
        fast = write_config(tmp_path / "fast.yaml", images, sleep_s=0.0)
        second_out = tmp_path / "second"
        capsys.readouterr()
        assert cli.main(["run", str(fast), "--out", str(second_out)]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err
        for part in (f"pid {first.pid}", "`run`", str(slow), str(first_out), "--ignore-lock"):
            assert part in err, err
        assert not second_out.exists(), "the refused sweep must not start"
        assert cli.main(["verify", str(fast)]) == 2  # verify measures too
        assert first.poll() is None, "the first sweep ended too soon for this test"
        assert cli.main(["run", str(fast), "--dry-run"]) == 0  # measures nothing: no lock
    finally:
        _, first_err = first.communicate(timeout=120)
    assert first.returncode == 0, first_err
    with MachineLock("run", str(fast)) as taken:  # free again once the first one ended
        assert taken.fd is not None
        assert cli.main(["report", str(first_out)]) == 0  # report takes no lock
        assert cli.main(["compare", str(first_out), str(first_out)]) == 0  # nor compare


def test_ignore_lock_measures_anyway(tmp_path, images, monkeypatch, capsys):
    monkeypatch.setenv(LOCK_ENV, str(tmp_path / "machine.lock"))
    fast = write_config(tmp_path / "fast.yaml", images, sleep_s=0.0)
    with MachineLock("run", "elsewhere.yaml"):
        capsys.readouterr()
        cli.main(["verify", str(fast), "--ignore-lock"])  # FAKE's images differ: exit 1
        out, err = capsys.readouterr()
        assert "FAKE" in out and "sha256=" in out, "verify did not measure"
        assert "measuring beside another measurement" in err and "elsewhere.yaml" in err


def test_a_killed_holder_leaves_no_stale_lock(tmp_path, monkeypatch):
    lock = tmp_path / "machine.lock"
    monkeypatch.setenv(LOCK_ENV, str(lock))
    code = (
        "from harness.measure.lock import MachineLock; import time\n"
        "with MachineLock('run', 'x'):\n    time.sleep(60)"
    )
    holder_proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=os.environ.copy())
    try:
        wait_for(lambda: holder(lock).get("pid") == holder_proc.pid)
        with pytest.raises(HarnessError, match=f"pid {holder_proc.pid}"):
            with MachineLock("run", "y"):
                pass
    finally:
        holder_proc.send_signal(signal.SIGKILL)
        holder_proc.wait()
    with MachineLock("run", "y") as taken:
        assert taken.fd is not None

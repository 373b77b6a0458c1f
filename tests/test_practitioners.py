"""P_TORCH (the DataLoader) and P_JOBLIB (joblib + loky): what tests/test_strategies.py does not
cover. Their options give the sequential digest, sessions keep the same workers across runs,
a killed worker fails the run with nothing left running, and nothing leaks in /dev/shm or the
temporary folder. torch and joblib are optional: skipped locally without them, failing under
CI=true (tests/_optional.py)."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import yaml
from _optional import require_module, require_strategy
from _tiny import AUGMENTATIONS, N_IMAGES
from _tiny import config as tiny_config

from experiments import strategies
from experiments.strategies import joblib_backend, torch_loader
from experiments.workload import Job
from harness import cli
from harness.measure.verify import run_digest
from harness.rundir import store

ROOT = Path(__file__).resolve().parent.parent
FORK = multiprocessing.get_context("fork")
SHM = Path("/dev/shm")


@pytest.fixture
def torch():  # noqa: ANN201
    return require_module("torch", "make install EXTRAS=torch")


@pytest.fixture
def joblib():  # noqa: ANN201
    return require_module("joblib", "make install (the joblib extra)")


def variant_digest(name: str, options: dict, images: Path, workers: int = 2) -> str:
    config = tiny_config(strategies=[{name: options}])
    return run_digest(strategies.variant_label(name, options), workers, images, config)


TORCH_VARIANTS = [
    {"in_order": False},
    {"prefetch_factor": 1},
    {"persistent_workers": True},
    {"deliver": True, "in_order": False},
]


@pytest.mark.parametrize("options", TORCH_VARIANTS, ids=str)
def test_torch_options_keep_the_sequential_digest(torch, images, reference, options):
    assert variant_digest("P_TORCH", options, images) == reference


JOBLIB_VARIANTS = [{"reuse": True, "batch_size": 1}, {"max_nbytes": "1K"}]


@pytest.mark.parametrize("options", JOBLIB_VARIANTS, ids=str)
def test_joblib_options_keep_the_sequential_digest(joblib, images, reference, options):
    before = temp_entries()
    assert variant_digest("P_JOBLIB", options, images) == reference
    assert temp_entries() - before == set()  # memory-mapped images ({max_nbytes: 1K}) removed


def lanes(phases) -> set[int]:  # noqa: ANN001
    return {row[3] for row in phases.rows}


def test_torch_persistent_workers_serve_every_run_of_the_cell(torch, images, tmp_path):
    job = Job(images, tmp_path, AUGMENTATIONS, 0, False, options={"persistent_workers": True})
    strategy = torch_loader.STRATEGY
    with strategy.open_session(job, 2, FORK) as session:
        workers = {c.pid for c in psutil.Process().children()}
        first = strategy.call(job, 2, FORK, session)
        second = strategy.call(job, 2, FORK, session)
    assert lanes(first) == lanes(second) <= workers
    assert first.tasks == second.tasks == N_IMAGES * AUGMENTATIONS
    assert "startup" not in first.extra  # started by the session, outside the timed call
    assert not [pid for pid in lanes(first) if psutil.pid_exists(pid)]


def test_torch_deliver_is_its_own_phase(torch, images, tmp_path):
    job = Job(images, tmp_path, AUGMENTATIONS, 0, False, options={"deliver": True})
    phases = torch_loader.STRATEGY.call(job, 2, FORK)
    assert phases.extra["deliver"] == pytest.approx(phases.handoff) and phases.handoff > 0
    assert all(row[9] > 0 for row in phases.rows)  # every task timed its copy to main
    assert phases.extra["startup"] > 0


def loky_workers() -> list[psutil.Process]:
    return [
        c
        for c in psutil.Process().children()
        if "resource_tracker" not in " ".join(c.cmdline())
    ]


@pytest.mark.slow
def test_joblib_shuts_loky_down_after_a_run_unless_reused(joblib, images, tmp_path):
    job = Job(images, tmp_path, AUGMENTATIONS, 0, False)
    strategy = joblib_backend.STRATEGY
    strategy.call(job, 2, FORK)
    assert loky_workers() == []
    reuse = Job(images, tmp_path, AUGMENTATIONS, 0, False, options={"reuse": True})
    with strategy.open_session(reuse, 2, FORK) as session:
        started = {c.pid for c in loky_workers()}
        first = strategy.call(reuse, 2, FORK, session)
        second = strategy.call(reuse, 2, FORK, session)
        assert len(started) == 2
        assert lanes(first) | lanes(second) <= started
    assert loky_workers() == []


def temp_entries() -> set[str]:
    """joblib's, loky's and torch's entries in the temporary folder and /dev/shm."""
    roots = [Path(tempfile.gettempdir()), *([SHM] if SHM.is_dir() else [])]
    names = ("joblib", "loky", "torch")
    return {str(p) for root in roots for p in root.iterdir() if any(n in p.name for n in names)}


def test_torch_deliver_leaves_no_shared_memory(torch, images, tmp_path):
    before = temp_entries()
    job = Job(images, tmp_path, AUGMENTATIONS, 0, True, "raw", options={"deliver": True})
    torch_loader.STRATEGY.call(job, 2, FORK)
    assert temp_entries() - before == set()


def test_modules_import_without_their_extras():
    code = (
        "import sys; sys.modules['torch'] = sys.modules['joblib'] = None\n"
        "from experiments.strategies import registry\n"
        "found = registry(); assert found['P_TORCH'].missing() == ['torch']\n"
        "assert found['P_JOBLIB'].missing() == ['joblib']"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_a_config_naming_p_torch_without_torch_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "kind": "strong", "workers": [2],
                                    "strategies": ["P_DYN", {"P_TORCH": {"in_order": False}}]}))
    assert cli.main(["run", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert "P_TORCH needs torch" in err and "EXTRAS=torch" in err
    assert "\n" not in err and "Traceback" not in err


# ---------------------------------------------------------------- SIGKILL of a worker


def cell_of(runner: int, name: str) -> psutil.Process | None:
    """The runner's child process measuring strategy `name`."""
    for child in psutil.Process(runner).children():
        with contextlib.suppress(psutil.Error, OSError):  # a child that ended meanwhile
            cmd = child.cmdline()
            if "harness.measure.child" in " ".join(cmd):
                with open(cmd[-1]) as spec:
                    if json.load(spec)["cell"]["strategy"] == name:
                        return child
    return None


def workers_of(cell: psutil.Process) -> list[psutil.Process]:
    return [c for c in cell.children() if "resource_tracker" not in " ".join(c.cmdline())]


def running(processes: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def wait_for(predicate, timeout: float = 60.0):  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with_value = predicate()
        if with_value:
            return with_value
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


@pytest.mark.parametrize("name", ["P_TORCH", "P_JOBLIB"])
@pytest.mark.slow
def test_a_killed_worker_fails_the_run_and_leaves_nothing_running(tmp_path, name):
    require_strategy(name)
    config = {
        "name": "kill", "kind": "strong", "images": {"count": 2, "size": [800, 400]},
        "augmentations_per_image": 60, "strategies": [name], "saving": [True],
        "workers": [2], "repeats": 1, "warmup": 0, "cell_timeout_s": 120,
        "profile": False,  # the pipeline's profile is tests/test_profile.py's
    }
    path, out = tmp_path / "c.yaml", tmp_path / "run"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(path), "--out", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        cell = wait_for(lambda: cell_of(proc.pid, name))
        scratch = out / "scratch" / f"{name}-w2-save-800x400"
        wait_for(lambda: scratch.is_dir() and len(list(scratch.iterdir())) >= 4)
        everything = [cell, *cell.children(recursive=True)]
        workers_of(cell)[0].send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    runs = store.load_runs(out).set_index("strategy")
    assert runs.loc[name, "status"] == "failed"
    deadline = time.monotonic() + 10  # a resource tracker ends once it sees its parent gone
    while running(everything) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running(everything) == [], "a process of the cell outlived it"

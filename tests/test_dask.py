"""P_DASK: imports without dask, the sequential digest on a LocalCluster, an existing cluster
restricted to W of its workers, and a tiny sweep through the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
import yaml
from _tiny import AUGMENTATIONS, N_IMAGES, config

from experiments.strategies import dask_backend
from experiments.workload import Job
from harness.measure import hooks
from harness.measure.verify import digest, run_digest
from harness.measure.watchdog import Watchdog, child_pids


def test_module_imports_without_dask():
    code = (
        "import sys; sys.modules['dask'] = sys.modules['distributed'] = None\n"
        "from experiments.strategies import registry; assert 'P_DASK' in registry()"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_session_without_dask_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(RuntimeError, match=r"pip install -e '\.\[dask\]'"):
        with dask_backend.dask_session(Job(tmp_path, tmp_path, 1, 0, False), 1, None):
            pass


@pytest.mark.parametrize("workers", [2, 3])
def test_local_cluster_digest_matches_sequential(images, reference, workers):
    pytest.importorskip("distributed")
    assert run_digest("P_DASK", workers, images, config()) == reference


def test_existing_cluster_uses_w_of_its_workers_and_shared_paths(images, reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=3, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        options = {"scheduler": cluster.scheduler_address, "data": "shared_path"}
        job = Job(images, tmp_path, AUGMENTATIONS, 0, True, "raw", options=options)
        with dask_backend.dask_session(job, 2, None) as session:
            phases = dask_backend.STRATEGY.call(job, 2, None, session)
            transitions = session.client.run(
                lambda dask_worker: dask_worker.state.transition_counter
            )
        assert len(session.workers) == 2
        assert {a for a, n in transitions.items() if n > 0} == set(session.workers)
    assert phases.tasks == N_IMAGES * AUGMENTATIONS and phases.read > 0
    assert digest(job, N_IMAGES) == reference


def test_existing_cluster_too_small_is_an_error(tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setattr(dask_backend, "WORKER_WAIT_S", 0.5)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        job = Job(tmp_path, tmp_path, 1, 0, False, options={"scheduler": cluster.scheduler_address})
        with pytest.raises(RuntimeError, match="has 1 workers; this cell needs 2"):
            with dask_backend.dask_session(job, 2, None):
                pass


@pytest.mark.slow
def test_tiny_sweep_through_the_cli(images, tmp_path):
    pytest.importorskip("distributed")
    from harness import cli

    cfg = {
        "name": "dask_tiny",
        "kind": "strong",
        "images": {"input_dir": str(images)},
        "augmentations_per_image": AUGMENTATIONS,
        "strategies": ["P_DASK"],
        "saving": [True, False],
        "workers": [1, 2],
        "repeats": 1,
        "order": "sequential",  # the plain path; paired rounds have tests of their own
        "warmup": 0,
    }
    path = tmp_path / "dask_tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert cli.main(["run", str(path), "--out", str(tmp_path / "out")]) == 0
    runs = pd.read_parquet(tmp_path / "out" / "runs.parquet")
    dask_runs = runs[runs["strategy"] == "P_DASK"]
    assert len(dask_runs) == 4
    assert (runs["status"] == "ok").all()


@pytest.mark.slow
def test_a_killed_worker_is_restarted_and_recorded(images, tmp_path):
    """Dask's nanny restarts a SIGKILLed worker and the scheduler redoes its tasks: the run
    finishes, and the watchdog counts the restart for the run's row instead of failing it."""
    pytest.importorskip("distributed")
    job = Job(images, tmp_path, 120, 0, False)  # ~2 s of tasks on 2 workers
    with dask_backend.dask_session(job, 2, None) as session:
        workers = sorted(child_pids())
        victim = session.client.run(os.getpid, workers=session.workers[:1])
        pid = next(iter(victim.values()))
        assert pid in workers
        killer = threading.Timer(0.5, os.kill, (pid, signal.SIGKILL))
        watch = Watchdog(restarts=dask_backend.STRATEGY.restarts_workers)
        with hooks.around([watch]):
            killer.start()
            start = time.monotonic()
            phases = dask_backend.STRATEGY.call(job, 2, None, session)
            elapsed = time.monotonic() - start
    assert elapsed > 0.5, "the call ended before the kill: make the job longer"
    assert phases.tasks == N_IMAGES * 120
    assert watch.columns()["worker_restarts"] >= 1

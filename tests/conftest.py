"""Synthetic run folders (runs.parquet + meta.json written through harness.rundir.store), so the
analysis, report and compare code can be tested without running a sweep."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from experiments.workload import init_process
from harness.rundir import store

# Tests fork pools from this process: OpenCV must not have started its own thread pool first.
init_process(1)

# The test suite's sweeps take their own machine-wide lock (harness/measure/lock.py), inherited
# by every subprocess: a measurement running on this machine does not stop the tests, nor they it.
os.environ["AUGSCALE_LOCK"] = str(Path(tempfile.mkdtemp(prefix="augscale-test-")) / "lock")
# The suite shares a busy machine with itself and others: a resume in a test may probe the
# machine's speed up to 30% apart from its first session (users get 10%; tests/test_precision.py
# checks the refusal with a speed 1.5x apart).
os.environ.setdefault("AUGSCALE_SPEED_TOLERANCE", "0.3")


@pytest.fixture(scope="session", autouse=True)
def quick_probes():  # noqa: ANN201
    """Every in-process sweep's machine probes, shortened: the crowding probe to one round of
    0.3 s (from four of 1.5 s) and the busy-CPU sample to 0.2 s (from 1 s). They feed the plan's
    estimate and the report's header only, and at full length cost about 3 s of every `run` the
    suite makes (CI's time budget). tests/test_crowding.py still runs the probe for real."""
    from harness import machine
    from harness.plan import crowding

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(crowding, "ROUNDS", 1)
        patch.setattr(crowding, "SECONDS", 0.3)
        patch.setattr(machine, "BUSY_SAMPLE_S", 0.2)
        yield


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> Path:
    """The tiny workload's generated images (tests/_tiny.py), made once per session."""
    from _tiny import N_IMAGES

    from harness.images import ensure_images

    return ensure_images(160, 80, N_IMAGES, "jpg", root=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def reference(images) -> str:
    """sequential's digest of the tiny workload: what every strategy must reproduce."""
    from _tiny import config

    from harness.measure.verify import run_digest

    return run_digest("sequential", 1, images, config())

STRATEGIES = ["P_1", "P_2", "P_Q"]
SAVING_ONLY = {"P_Q": 2}  # strategy -> its smallest W: saving only, as in the study
PHYSICAL_CORES = 4


def run_meta(kind: str = "strong", workers: list[int] | None = None, repeats: int = 5,
             setup: dict | None = None, strategies: list[str] | None = None) -> dict:
    workers = workers or [1, 2, 4, 8]
    strategies = strategies or STRATEGIES
    points = [{"workers": w, "size": [200 * w, 100]} for w in workers if w > 1]
    config = {
        "name": f"synthetic_{kind}", "kind": kind,
        "images": {"count": 4, "size": [200, 100], "format": "jpg", "input_dir": None},
        "augmentations_per_image": 10, "strategies": strategies, "saving": [True, False],
        "workers": workers if kind == "strong" else None,
        "points": None if kind == "strong" else points,
        "repeats": repeats, "warmup": 1, "seed": 0, "cv2_threads": 1, "start_method": "fork",
        "order": "sequential",  # build_run writes each cell's runs in turn, with no rounds
    }
    skipped = []
    for name, least in SAVING_ONLY.items():
        if name in strategies:
            skipped += [{"strategy": name, "workers": w, "saving": False,
                         "reason": f"{name} only saves (as in the study)"} for w in workers]
            skipped += [{"strategy": name, "workers": w, "saving": True,
                         "reason": f"{name} needs at least {least} workers"}
                        for w in workers if w < least]
    meta = {
        "config": config,
        "host": {"hostname": "test", "cpu_model": "Synthetic CPU",
                 "physical_cores": PHYSICAL_CORES, "logical_cores": 8, "memory_gb": 16.0,
                 "os": "Linux"},
        "versions": {"python": "3.11"}, "git_commit": "abc123", "n_images": 4,
        "skipped": skipped,
        "started_at": "2026-01-01T00:00:00+00:00", "ended_at": "2026-01-01T00:10:00+00:00",
    }
    if setup is not None:
        meta["setup"] = setup
    return meta


def amdahl_time(t1: float, workers: int, f: float = 0.1) -> float:
    return t1 * (f + (1 - f) / workers)


def build_run(run_dir: Path, kind: str = "strong", workers: list[int] | None = None,
              repeats: int = 5, slowdown: float = 1.0, noise: float = 0.01, seed: int = 0,
              setup: dict | None = None, strategies: list[str] | None = None,
              cpu: bool = False, steal: bool = False) -> Path:
    """A run folder whose times follow Amdahl's law (f = 0.1), times `slowdown`, with relative
    noise. cpu: record t_cpu_s (W processes busy 95% of the time, on at most the physical
    cores); steal: record steal_s (1% of the wall time)."""
    rng = np.random.default_rng(seed)
    strategies = strategies or STRATEGIES
    meta = run_meta(kind, workers, repeats, setup, strategies)
    rows = []
    base = {True: 2.0, False: 1.6}
    sweep = meta["config"]["workers"] or [p["workers"] for p in meta["config"]["points"]]
    for saving in (True, False):
        cells = [("sequential", 1)] + [
            (s, w) for w in sweep for s in strategies
            if s not in SAVING_ONLY or (saving and w >= SAVING_ONLY[s])]
        for strategy, w in cells:
            width = 200 * w if kind == "weak" and strategy != "sequential" else 200
            if kind == "strong":
                ideal = amdahl_time(base[saving], w)
            else:
                ideal = base[saving] * (1 + 0.1 * np.log2(w))
            mode = "save" if saving else "nosave"
            for r in range(repeats):
                wall = ideal * slowdown * (1 + noise * rng.standard_normal())
                row = {
                    "cell_id": f"{strategy}-w{w}-{mode}-{width}x100", "strategy": strategy,
                    "workers": w, "saving": saving, "width": width, "height": 100,
                    "n_images": 4, "augmentations_per_image": 10, "repeat": r, "wall_s": wall,
                    "status": "ok", "error": "", "t_read_s": 0.02 * wall,
                    "t_augment_s": 0.8 * wall * w, "t_save_s": (0.1 if saving else 0.0) * wall * w,
                    "tasks": 40, "start_method": "fork",
                    "started_at": "2026-01-01T00:00:00+00:00",
                }
                if strategy == "P_Q":
                    row["t_queue_put_s"] = 0.02 * wall * w
                if cpu:
                    row["t_cpu_s"] = 0.95 * wall * min(w, PHYSICAL_CORES)
                if steal:
                    row["steal_s"] = 0.01 * wall
                rows.append(row)
    run_dir.mkdir(parents=True, exist_ok=True)
    store.replace_runs(run_dir, rows)
    store.write_meta(run_dir, meta)
    return run_dir


@pytest.fixture
def synthetic_run(tmp_path: Path):  # noqa: ANN201
    """build_run with tmp_path/<name> as the folder: synthetic_run("a", slowdown=2.0)."""
    def make(name: str = "run", **kwargs: object) -> Path:
        return build_run(tmp_path / name, **kwargs)
    return make

"""Every strategy does the same work as sequential: same pixels, same number of outputs."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from _tiny import AUGMENTATIONS, N_IMAGES
from _tiny import config as tiny_config

from experiments import strategies
from experiments.strategies import STRATEGIES, skip_reason
from experiments.strategies.pq import savers_for
from experiments.workload import Job, list_images
from harness.config import Config
from harness.plan import plan_cells, runnable
from harness.verify import checks, run_digest

# The study's three, plus any strategy module added later (discovered from experiments/strategies/).
# P_DASK starts a cluster per call; tests/test_dask.py covers it.
PARALLEL = ["P_1", "P_2", "P_Q"] + sorted(set(STRATEGIES) - {"sequential", "P_1", "P_2", "P_Q", "P_DASK"})
FORK = multiprocessing.get_context("fork")




def test_registry_lists_the_strategies():
    assert {"sequential", "P_1", "P_2", "P_Q"} <= set(STRATEGIES)
    for name, module in STRATEGIES.items():
        assert module.NAME == name
        assert isinstance(module.SUMMARY, str) and module.SUMMARY
        assert isinstance(module.SAVING_ONLY, bool)
        assert module.MIN_WORKERS >= 1
        assert callable(module.run)
    assert STRATEGIES["P_Q"].SAVING_ONLY and STRATEGIES["P_Q"].MIN_WORKERS == 2


CASES = [(name, w) for name in PARALLEL for w in (2, 3) if STRATEGIES[name].MIN_WORKERS <= w]


@pytest.mark.parametrize(("name", "workers"), CASES, ids=[f"{n}-W{w}" for n, w in CASES])
def test_digest_matches_sequential(images, reference, name, workers):
    assert run_digest(name, workers, images, tiny_config()) == reference


def test_digest_is_a_sha256(reference):
    assert len(reference) == 64 and int(reference, 16) >= 0


def test_sequential_digest_is_repeatable(images, reference):
    assert run_digest("sequential", 1, images, tiny_config()) == reference


def test_other_seed_gives_other_digest(images, reference):
    assert run_digest("sequential", 1, images, tiny_config(seed=1)) != reference


def test_parallel_strategy_with_other_seed_follows_the_seed(images):
    config = tiny_config(seed=7)
    assert run_digest("P_2", 2, images, config) == run_digest("sequential", 1, images, config)


def test_verify_checks_skip_pq_below_its_minimum():
    got = list(checks(tiny_config(workers=[1, 2])))
    assert ("P_Q", 1, (160, 80)) not in got
    assert got[0] == ("sequential", 1, (160, 80))
    assert ("P_Q", 2, (160, 80)) in got


# ---------------------------------------------------------------- run(): outputs written


def _job(images: Path, out: Path, saving: bool) -> Job:
    out.mkdir()
    return Job(images, out, AUGMENTATIONS, 0, saving, "jpg", 1)


RUNS = [("sequential", 1)] + CASES


@pytest.mark.parametrize(("name", "workers"), RUNS, ids=[f"{n}-W{w}" for n, w in RUNS])
def test_run_with_saving_writes_every_output(images, tmp_path, name, workers):
    job = _job(images, tmp_path / "out", saving=True)
    phases = strategies.get(name).run(job, workers, FORK)
    n = len(list_images(images))
    written = sorted(p.name for p in job.out_dir.iterdir())
    assert len(written) == n * AUGMENTATIONS
    assert written == sorted(f"img{i:05d}_aug{k:05d}.jpg" for i in range(n) for k in range(AUGMENTATIONS))
    assert all((job.out_dir / f).stat().st_size > 0 for f in written)
    assert phases.tasks == n * AUGMENTATIONS
    assert phases.augment > 0


NOSAVE = [(n, w) for n, w in RUNS if not STRATEGIES[n].SAVING_ONLY]


@pytest.mark.parametrize(("name", "workers"), NOSAVE, ids=[f"{n}-W{w}" for n, w in NOSAVE])
def test_run_without_saving_writes_nothing(images, tmp_path, name, workers):
    job = _job(images, tmp_path / "out", saving=False)
    phases = strategies.get(name).run(job, workers, FORK)
    assert list(job.out_dir.iterdir()) == []
    assert phases.tasks == N_IMAGES * AUGMENTATIONS


def test_pq_run_without_saving_writes_nothing(images, tmp_path):
    job = _job(images, tmp_path / "out", saving=False)
    strategies.get("P_Q").run(job, 2, FORK)
    assert list(job.out_dir.iterdir()) == []


def test_pq_reports_saver_time_separately(images, tmp_path):
    job = _job(images, tmp_path / "out", saving=True)
    phases = strategies.get("P_Q").run(job, 3, FORK)
    assert "queue_put" in phases.extra
    assert phases.save > 0


# ---------------------------------------------------------------- P_Q's savers rule


@pytest.mark.parametrize(
    ("workers", "savers"),
    [(2, 1), (3, 1), (4, 1), (5, 2), (8, 2), (9, 2), (10, 3), (16, 3), (17, 4), (32, 5), (64, 7)],
)
def test_pq_savers_for(workers, savers):
    assert savers_for(workers) == savers


@pytest.mark.parametrize("workers", range(2, 130))
def test_pq_leaves_at_least_one_augmenter(workers):
    assert 1 <= savers_for(workers) < workers


# ---------------------------------------------------------------- plan_cells skips


def test_skip_reason():
    assert skip_reason("P_1", 1, False) is None
    assert skip_reason("P_2", 1, True) is None
    assert skip_reason("P_Q", 2, True) is None
    assert "only saves" in skip_reason("P_Q", 2, False)
    assert "at least 2 workers" in skip_reason("P_Q", 1, True)


def test_plan_cells_skips_pq_for_no_saving_and_one_worker():
    config = tiny_config(workers=[1, 2], strategies=["P_1", "P_2", "P_Q"], saving=[True, False])
    cells = plan_cells(config)
    assert len(cells) == 2 * (1 + 3 * 2)
    by_key = {(c.strategy, c.workers, c.saving): c for c in cells}
    assert len(by_key) == len(cells)
    for saving in (True, False):
        base = by_key[("sequential", 1, saving)]
        assert base.skip is None and base.is_baseline
    assert "needs at least 2 workers" in by_key[("P_Q", 1, True)].skip
    assert "only saves" in by_key[("P_Q", 2, False)].skip
    assert by_key[("P_Q", 1, False)].skip  # skipped, whichever reason comes first
    assert by_key[("P_Q", 2, True)].skip is None
    for name in ("P_1", "P_2"):
        for w in (1, 2):
            for saving in (True, False):
                assert by_key[(name, w, saving)].skip is None
    todo = runnable(cells)
    assert len(todo) == len(cells) - 3
    assert all(c.skip is None for c in todo)
    # run order: per saving mode, the baseline first
    assert [c.saving for c in cells] == [True] * 7 + [False] * 7
    assert cells[0].is_baseline and cells[7].is_baseline


def test_plan_cell_ids_are_unique_and_readable():
    cells = plan_cells(tiny_config(workers=[1, 2]))
    ids = [c.id for c in cells]
    assert len(set(ids)) == len(ids)
    assert "P_Q-w2-save-160x80" in ids
    assert "sequential-w1-nosave-160x80" in ids


def test_plan_cells_weak_uses_point_sizes():
    config = Config.model_validate(
        {
            "name": "w", "kind": "weak", "images": {"size": [80, 80]}, "saving": [True],
            "points": [{"workers": 2, "size": [160, 80]}, {"workers": 4, "size": [160, 160]}],
        }
    )
    cells = plan_cells(config)
    assert (cells[0].strategy, cells[0].width, cells[0].height) == ("sequential", 80, 80)
    assert {(c.workers, c.width, c.height) for c in cells[1:]} == {(2, 160, 80), (4, 160, 160)}

"""Batches: the `batch` option's rule, the pixels identical at any batch size, the batch the
run records, `auto` resolved from the calibration, and the replay fed the recorded batch."""

from __future__ import annotations

import multiprocessing

import pandas as pd
import pytest
from _optional import require_strategy
from _tiny import AUGMENTATIONS, N_IMAGES
from _tiny import config as tiny_config

from experiments import strategies
from experiments.batching import BATCH_S, BATCHES_PER_WORKER, auto_size, batch_size, in_batches
from experiments.contract import Schedule, pool_chunksize
from experiments.workload import Job
from harness.analysis.replay import batched
from harness.measure.verify import VERIFY_BATCH, batches, run_digest, verify_runs
from harness.plan.batches import resolved, task_seconds
from harness.plan.estimate import Costs
from harness.schema import Cell

FORK = multiprocessing.get_context("fork")
BATCHED = ["P_1", "P_2", "P_DYN", "P_T", "P_TORCH"]


def test_auto_aims_at_batch_seconds_of_work():
    assert auto_size(100_000, 2, 0.0015) == 14  # ceil(0.02 / 0.0015)
    assert auto_size(100_000, 2, BATCH_S * 4) == 1  # long tasks go one at a time


def test_auto_leaves_every_worker_its_share_of_batches():
    assert auto_size(1600, 2, 0.0001) == 1600 // (2 * BATCHES_PER_WORKER)
    assert auto_size(10, 4, 0.0001) == 1
    assert auto_size(1600, 2, None) == 50  # no task time: only the balance half


def test_batch_size_follows_the_option():
    def job(**options: object) -> Job:
        return Job(".", ".", 1, 0, False, options=options)

    assert batch_size(job(), 1600, 2, pool_chunksize) == pool_chunksize(1600, 2) == 200
    assert batch_size(job(batch="own"), 1600, 2, pool_chunksize) == 200
    assert batch_size(job(batch=16), 1600, 2, pool_chunksize) == 16
    assert batch_size(job(batch="auto"), 1600, 2, pool_chunksize) == 50


def test_in_batches_keeps_order_and_the_short_last_one():
    assert in_batches(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert in_batches([], 3) == []


@pytest.mark.parametrize("name", [*BATCHED, "P_DASK"])
@pytest.mark.parametrize("batch", [4, "auto"])
def test_same_pixels_at_any_batch(images, reference, name, batch):
    require_strategy(name)
    config = tiny_config(options={name: {"batch": batch}}, strategies=[name])
    assert run_digest(name, 2, images, config) == reference


@pytest.mark.parametrize("name", BATCHED)
def test_the_run_records_its_batch_and_does_every_task(images, tmp_path, name):
    require_strategy(name)
    job = Job(images, tmp_path, AUGMENTATIONS, 0, False, options={"batch": 4})
    phases = strategies.get(name).call(job, 2, FORK)
    assert phases.batch == 4
    assert phases.tasks == N_IMAGES * AUGMENTATIONS
    assert sorted((r[1], r[2]) for r in phases.rows) == [
        (i, k) for i in range(N_IMAGES) for k in range(AUGMENTATIONS)
    ]


def test_p2_own_batch_is_cpythons_chunk(images, tmp_path):
    job = Job(images, tmp_path, AUGMENTATIONS, 0, False)
    phases = strategies.get("P_2").call(job, 2, FORK)
    assert phases.batch == pool_chunksize(N_IMAGES * AUGMENTATIONS, 2)


def test_verify_runs_every_batched_strategy_at_a_second_batch():
    assert batches("P_2") == [None, VERIFY_BATCH]
    assert batches("P_Q") == [None]
    runs = list(verify_runs(tiny_config(workers=[2])))
    assert ("P_2", 2, (160, 80), VERIFY_BATCH) in runs
    assert ("P_2", 2, (160, 80), None) in runs


def _costs(augment: float, read: float) -> Costs:
    return Costs({"500x375": augment}, {"500x375": 0.0}, {"500x375": read})


def test_auto_resolves_from_the_calibrated_task_time():
    cell = Cell("P_2", 2, False, 500, 375)
    costs = _costs(0.001, 0.0005)
    assert task_seconds(cell, costs) == pytest.approx(0.0015)  # P_2's task reads its image
    assert task_seconds(Cell("P_DYN", 2, False, 500, 375), costs) == pytest.approx(0.001)
    assert resolved({"batch": "auto"}, cell, costs, 1600) == {"batch": 14}
    assert resolved({"batch": 7}, cell, costs, 1600) == {"batch": 7}
    assert resolved({}, cell, costs, 1600) == {}
    other_size = Cell("P_2", 2, False, 64, 48)
    assert resolved({"batch": "auto"}, other_size, costs, 1600) == {"batch": 50}


def test_replay_uses_the_batch_the_runs_recorded():
    schedule = Schedule()
    runs = pd.DataFrame(
        {"strategy": ["P_2", "P_2", "P_1"], "workers": [2, 1, 2], "batch": [16, None, 8]}
    )
    assert batched(schedule, runs, "P_2", 2).chunksize(1600, 2) == 16
    assert batched(schedule, runs, "P_2", 1).chunksize(1600, 1) == pool_chunksize(1600, 1)
    no_column = runs.drop(columns="batch")
    assert batched(schedule, no_column, "P_2", 2) is schedule


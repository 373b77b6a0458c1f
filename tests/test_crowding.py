"""What sharing the machine costs the estimate (harness/plan/crowding.py): the factor's shape, a
real probe on the tiny workload, and the estimate stretched by it."""

from __future__ import annotations

import math
import multiprocessing

import pytest
import yaml

from experiments.workload import Job
from harness import cli
from harness.images import checkerboard
from harness.plan import crowding
from harness.plan.cells import Cell
from harness.plan.crowding import Crowding
from harness.plan.estimate import Costs, cell_seconds

JOB = Job(".", ".", 4, 0, False)
TASKS = [(i, k) for i in range(2) for k in range(4)]


def test_the_factor_rises_from_one_worker_to_the_cores_and_holds_above():
    c = Crowding(at_cores=1.2, beyond=1.5)
    assert [c.factor(w, 2) for w in (1, 2, 3, 64)] == [1.0, 1.2, 1.5, 1.5]
    assert c.factor(5, 9) == pytest.approx(1.1)  # halfway from 1 to 9 workers
    assert Crowding(1.3, 1.3).factor(1, 1) == 1.0


def test_nothing_is_probed_for_a_sweep_without_parallel_cells():
    ctx = multiprocessing.get_context("fork")
    assert crowding.measure(JOB, checkerboard(64, 32), TASKS, 0.01, 2, 1, ctx) == Crowding()


def test_a_real_probe_gives_finite_factors_for_both_counts():
    ctx = multiprocessing.get_context("fork")
    found = crowding.measure(JOB, checkerboard(160, 80), TASKS, 0.005, 2, 4, ctx)
    for factor in (found.at_cores, found.beyond):
        assert math.isfinite(factor) and 1.0 <= factor < 10, found


@pytest.mark.slow
def test_a_process_that_dies_in_the_probe_is_a_warning_not_a_hang(capsys, monkeypatch):
    monkeypatch.setattr(crowding, "WAIT_S", 5.0)
    ctx = multiprocessing.get_context("fork")
    broken = Job(".", ".", 4, 0, False, cv2_threads="none")  # init_process raises in the child
    assert crowding.measure(broken, checkerboard(64, 32), TASKS, 0.01, 2, 2, ctx) == Crowding()
    assert "leaves out contention" in capsys.readouterr().err


def test_the_estimate_of_a_cell_is_stretched_by_its_size_factor():
    key = "160x80"
    plain = Costs({key: 0.01}, {key: 0.001}, {key: 0.001})
    crowded = Costs({key: 0.01}, {key: 0.001}, {key: 0.001}, crowding={key: Crowding(1.2, 1.5)})
    for workers, factor in ((1, 1.0), (2, 1.2), (4, 1.5)):
        cell = Cell("P_2", workers, True, 160, 80)
        alone = cell_seconds(cell, 2, 4, plain, 2)
        assert cell_seconds(cell, 2, 4, crowded, 2) == pytest.approx(factor * alone)


def test_the_plan_says_what_sharing_the_machine_costs(tmp_path, capsys):
    config = {
        "name": "crowded",
        "kind": "strong",
        "images": {"count": 2, "size": [160, 80]},
        "augmentations_per_image": 4,
        "strategies": ["P_2"],
        "saving": [False],
        "workers": [1, 4],
        "repeats": 2,
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    assert cli.main(["run", str(path), "--dry-run"]) == 0
    assert "Sharing the machine stretches parallel cells" in capsys.readouterr().out

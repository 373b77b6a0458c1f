"""cpu_plan on a faked /sys topology, and pool workers pinned by make_pool on this machine."""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import os
from pathlib import Path

import pytest

from experiments import pools, strategies
from experiments.placement import cpu_plan, parse_cpu_list, read_topology
from experiments.strategies.pq import savers_for
from experiments.workload import Job, init_process
from harness.config import parse_config
from harness.images import ensure_images
from harness.measure.verify import digest, run_digest

init_process(1)  # at collection, before any test forks: no OpenCV thread pool to inherit

FORK = multiprocessing.get_context("fork")
ALLOWED = sorted(os.sched_getaffinity(0))


def fake_sys(root: Path, cpus: dict[int, tuple[int, int, str]]) -> Path:
    """cpu -> (physical_package_id, core_id, thread_siblings_list) as files under root."""
    for cpu, (package, core, siblings) in cpus.items():
        topo = root / f"cpu{cpu}" / "topology"
        topo.mkdir(parents=True)
        (topo / "physical_package_id").write_text(f"{package}\n")
        (topo / "core_id").write_text(f"{core}\n")
        (topo / "thread_siblings_list").write_text(f"{siblings}\n")
    return root


@pytest.fixture
def two_sockets(tmp_path) -> Path:
    """Linux numbering of a 2-socket, 4-core, 2-way hyperthreaded box: cpu n and n + 8 are siblings,
    cpus 0-3 and 8-11 on socket 0, cpus 4-7 and 12-15 on socket 1."""
    cpus = {n: ((n % 8) // 4, n % 4, f"{n % 8},{n % 8 + 8}") for n in range(16)}
    return fake_sys(tmp_path, cpus)


def test_parse_cpu_list():
    assert parse_cpu_list("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11]


def test_topology_groups_sockets_cores_threads(two_sockets):
    topology = read_topology(two_sockets, allowed=range(16))
    assert topology == [[[0, 8], [1, 9], [2, 10], [3, 11]], [[4, 12], [5, 13], [6, 14], [7, 15]]]


def test_close_fills_one_socket_then_its_siblings(two_sockets):
    plan = cpu_plan(16, "close", two_sockets, allowed=range(16))
    assert plan == [0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15]


def test_spread_rotates_sockets_then_cores(two_sockets):
    plan = cpu_plan(16, "spread", two_sockets, allowed=range(16))
    assert plan == [0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15]


def test_plan_wraps_beyond_the_cpus(two_sockets):
    assert cpu_plan(18, "close", two_sockets, allowed=range(16))[16:] == [0, 1]
    assert cpu_plan(3, "spread", two_sockets, allowed=range(16)) == [0, 4, 1]


def test_plan_keeps_to_the_allowed_cpus(two_sockets):
    allowed = {0, 1, 8, 9, 4}
    assert cpu_plan(5, "close", two_sockets, allowed=allowed) == [0, 1, 8, 9, 4]
    assert cpu_plan(5, "spread", two_sockets, allowed=allowed) == [0, 4, 1, 8, 9]


def test_missing_topology_falls_back_to_a_flat_list(tmp_path):
    assert read_topology(tmp_path / "nothing", allowed=[3, 1]) == [[[1], [3]]]
    assert cpu_plan(3, "spread", tmp_path / "nothing", allowed=[0, 1]) == [0, 1, 0]


def test_none_pins_nothing_and_unknown_mode_is_an_error():
    assert cpu_plan(4, "none") is None
    with pytest.raises(ValueError, match="placement"):
        cpu_plan(4, "packed")


def test_real_topology_covers_the_allowed_cpus():
    assert sorted(cpu_plan(len(ALLOWED), "close")) == ALLOWED
    assert sorted(cpu_plan(len(ALLOWED), "spread")) == ALLOWED


def report(queue) -> None:  # noqa: ANN001 (initializer_extra: runs after pinning)
    queue.put((pools.SLOT, sorted(os.sched_getaffinity(0))))


def pinned_workers(
    workers: int, placement: str, plan: list[int] | None = None
) -> dict[int, list[int]]:
    """slot -> CPU affinity of every worker of a make_pool pool, as each saw it in its
    initializer."""
    queue = FORK.Queue()
    job = Job(Path("."), Path("."), 1, 0, False, options={"placement": placement})
    with pools.make_pool(FORK, workers, job, report, (queue,), plan=plan):
        seen = dict(queue.get(timeout=20) for _ in range(workers))
    return seen


@pytest.mark.parametrize("mode", ["close", "spread"])
def test_pool_workers_are_pinned_to_the_plan(mode):
    workers = 3
    plan = cpu_plan(workers, mode)
    assert pinned_workers(workers, mode) == {slot: [plan[slot]] for slot in range(workers)}


def test_pool_follows_a_plan_from_a_fake_topology(tmp_path):
    """Socket 0 holds the highest allowed CPU, so the plan is not just the CPUs in order."""
    top = ALLOWED[-1]
    cpus = {cpu: (0 if cpu == top else 1, cpu, str(cpu)) for cpu in ALLOWED}
    plan = cpu_plan(2, "close", fake_sys(tmp_path, cpus))
    assert plan[0] == top
    assert pinned_workers(2, "close", plan) == {0: [plan[0]], 1: [plan[1]]}


def test_none_leaves_workers_unpinned():
    assert pinned_workers(2, "none") == {0: ALLOWED, 1: ALLOWED}


def test_none_is_exactly_the_plain_pool(monkeypatch):
    """The study's Pool(W, initializer=init_process, initargs=(cv2_threads,)) of this context,
    as experiments.pools.Pool: multiprocessing's Pool, changed only in how it ends after a
    worker was killed."""
    assert issubclass(pools.Pool, multiprocessing.pool.Pool)
    calls = []
    monkeypatch.setattr(pools, "Pool", lambda *a, **kw: calls.append((a, kw)))
    pools.make_pool(FORK, 3, Job(Path("."), Path("."), 1, 0, False, cv2_threads=2))
    assert calls == [((3, init_process, (2,)), {"context": FORK})]


def test_savers_take_the_last_slots_of_the_plan():
    job = Job(Path("."), Path("."), 1, 0, True, options={"placement": "spread"})
    plan = cpu_plan(5, "spread")
    n = savers_for(5)
    assert pools.split_plan(job, 5, n) == (plan[: 5 - n], plan[5 - n :])
    assert pools.split_plan(Job(Path("."), Path("."), 1, 0, True), 5, n) == (None, [None] * n)


@pytest.mark.parametrize(
    ("name", "placement"),
    [("P_Q", "close"), ("P_Q2", "spread"), ("P_SHM", "close"), ("P_1", "spread")],
)
def test_pinned_strategies_still_match_sequential(tmp_path, name, placement):
    images = ensure_images(160, 80, 2, "jpg", root=tmp_path / "cache")
    config = parse_config(
        {"name": "t", "kind": "strong", "workers": [3], "augmentations_per_image": 3},
        Path("test.yaml"),
    )
    job = Job(images, tmp_path / "out", 3, 0, True, "raw", options={"placement": placement})
    job.out_dir.mkdir()
    strategies.get(name).call(job, 3, FORK)
    assert digest(job, 2) == run_digest("sequential", 1, images, config)

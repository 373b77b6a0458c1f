"""Which CPU each worker slot is pinned to, from the topology in /sys/devices/system/cpu.

The topology is a list of sockets, each a list of physical cores, each a list of its hardware
threads (CPU numbers), restricted to the CPUs this process may run on (os.sched_getaffinity).

close:  fill one socket before the next; within a socket, first one thread of every core, then
        the hyperthread siblings (socket 0 cores, socket 0 siblings, socket 1 cores, ...).
spread: rotate across sockets, then across cores, one thread per core before any sibling
        (socket 0 core 0, socket 1 core 0, socket 0 core 1, socket 1 core 1, ...).

More workers than CPUs wrap around the same order.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

SYS_CPU = Path("/sys/devices/system/cpu")
MODES = ("none", "close", "spread")

Topology = list[list[list[int]]]  # sockets -> cores -> CPU numbers (hardware threads)


def parse_cpu_list(text: str) -> list[int]:
    """'0-3,8,10-11' -> [0, 1, 2, 3, 8, 10, 11]."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def allowed_cpus() -> set[int]:
    return set(os.sched_getaffinity(0))


def read_topology(root: Path = SYS_CPU, allowed: Iterable[int] | None = None) -> Topology:
    """Sockets -> cores -> threads of the allowed CPUs; one socket of one-thread cores if /sys
    lacks it."""
    cpus = sorted(allowed_cpus() if allowed is None else set(allowed))
    try:
        return _group(root, cpus)
    except (OSError, ValueError):
        return [[[cpu] for cpu in cpus]]


def _group(root: Path, cpus: list[int]) -> Topology:
    cores: dict[tuple[int, int, int], list[int]] = {}
    for cpu in cpus:
        topo = Path(root) / f"cpu{cpu}" / "topology"
        package = int((topo / "physical_package_id").read_text())
        core_id = int((topo / "core_id").read_text())
        # the sibling list, not core_id alone, identifies a physical core (core_id can repeat
        # across dies)
        first_sibling = min(parse_cpu_list((topo / "thread_siblings_list").read_text()))
        cores.setdefault((package, core_id, first_sibling), []).append(cpu)
    sockets: dict[int, list[list[int]]] = {}
    for key in sorted(cores):
        sockets.setdefault(key[0], []).append(sorted(cores[key]))
    return [sockets[p] for p in sorted(sockets)]


def close_order(topology: Topology) -> list[int]:
    order: list[int] = []
    for socket in topology:
        depth = max(len(core) for core in socket)
        for t in range(depth):
            order.extend(core[t] for core in socket if t < len(core))
    return order


def spread_order(topology: Topology) -> list[int]:
    order: list[int] = []
    depth = max((len(core) for socket in topology for core in socket), default=0)
    width = max((len(socket) for socket in topology), default=0)
    for t in range(depth):
        for c in range(width):
            order.extend(s[c][t] for s in topology if c < len(s) and t < len(s[c]))
    return order


def cpu_plan(
    workers: int, mode: str, root: Path = SYS_CPU, allowed: Iterable[int] | None = None
) -> list[int] | None:
    """The CPU for each worker slot 0..workers-1, or None for mode "none" (nothing pinned)."""
    if mode not in MODES:
        raise ValueError(f"placement must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "none":
        return None
    topology = read_topology(root, allowed)
    order = close_order(topology) if mode == "close" else spread_order(topology)
    if not order:
        return None
    return [order[slot % len(order)] for slot in range(workers)]

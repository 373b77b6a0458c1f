"""Instruments around the one timed call, after pyperf's `_hooks.py`: each hook is a context
manager entered just before the strategy's call and left just after it, and then gives the
columns it measured for the run's row. No hook is wired into the call itself.

    Watchdog  the one dead-worker detector, and peak resident memory   peak_rss_mb,
              (restarted workers, where the executor restarts them)   worker_restarts
    HostCpu   the machine's CPU time during the run: what the          steal_s,
              hypervisor took, what every process used                 host_busy_s
    CpuTime   CPU seconds of the run's processes, the kernel's share   t_cpu_s, t_dispatch_s,
              of them and the page faults they took                   t_sys_s, minor_faults
"""

from __future__ import annotations

import contextlib
import resource
from collections.abc import Iterator, Sequence
from typing import Protocol

import psutil

from harness.measure.watchdog import Watchdog


class Hook(Protocol):
    def __enter__(self) -> object: ...
    def __exit__(self, *exc: object) -> None: ...
    def columns(self) -> dict[str, float]: ...


class CpuTime:
    """(CPU seconds of this process, of it plus its ended children), user + system, around the
    call. Pool workers, savers and a Manager are ended and reaped inside the call, so the
    difference is the run's CPU time; a Dask cluster's workers outlive it and are not counted.
    For in-process strategies this process's CPU is the workers' own, not dispatch."""

    def __init__(self, in_process: bool) -> None:
        self.in_process = in_process
        self.main_s = self.all_s = self.sys_s = self.faults = float("nan")

    def __enter__(self) -> CpuTime:
        self._start = _cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        end = _cpu_seconds()
        self.main_s, self.all_s, self.sys_s, self.faults = (
            b - a for a, b in zip(self._start, end, strict=True)
        )

    def columns(self) -> dict[str, float]:
        return {
            "t_cpu_s": self.all_s,
            "t_dispatch_s": float("nan") if self.in_process else self.main_s,
            "t_sys_s": self.sys_s,
            "minor_faults": self.faults,
        }


def _cpu_seconds() -> tuple[float, float, float, float]:
    """(this process's CPU seconds, with its ended children's, their system part, their minor
    page faults)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = me.ru_utime + me.ru_stime
    system = me.ru_stime + kids.ru_stime
    faults = float(me.ru_minflt + kids.ru_minflt)
    return own, own + kids.ru_utime + kids.ru_stime, system, faults


class HostCpu:
    """The machine's CPU time during the call, summed over its CPUs (Linux /proc/stat): steal,
    what the hypervisor gave other tenants (nan where the kernel does not report it), and busy,
    what every process used, this run's own included. Busy minus the run's t_cpu_s is what
    other programs took: a run that shared the machine is flagged, not silently slow."""

    def __enter__(self) -> HostCpu:
        self._start = psutil.cpu_times()
        self.steal_s = self.busy_s = float("nan")
        return self

    def __exit__(self, *exc: object) -> None:
        end = psutil.cpu_times()
        self.busy_s = _busy_s(end) - _busy_s(self._start)
        if hasattr(end, "steal"):
            self.steal_s = end.steal - self._start.steal

    def columns(self) -> dict[str, float]:
        return {"steal_s": self.steal_s, "host_busy_s": self.busy_s}


def _busy_s(times: object) -> float:
    """Non-idle CPU seconds (guest time is already inside user on Linux)."""
    return sum(getattr(times, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq"))


def measuring(in_process: bool, restarts_workers: bool = False) -> list[Hook]:
    """The hooks of a measured run, outermost first: CPU time is read closest to the call.
    restarts_workers: the strategy's executor restarts dead workers (the contract says so)."""
    return [Watchdog(restarts_workers), HostCpu(), CpuTime(in_process)]


@contextlib.contextmanager
def around(hooks: Sequence[Hook]) -> Iterator[None]:
    """Enter every hook (in order), run the body, leave them (in reverse)."""
    with contextlib.ExitStack() as stack:
        for hook in hooks:
            stack.enter_context(hook)
        yield


def columns(hooks: Sequence[Hook]) -> dict[str, float]:
    found: dict[str, float] = {}
    for hook in hooks:
        found.update(hook.columns())
    return found

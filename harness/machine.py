"""What the run ran on: host, cores, memory, OS, versions, git commit."""

from __future__ import annotations

import multiprocessing
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import cv2
import psutil
from threadpoolctl import threadpool_info

from experiments.workload import init_process

PACKAGES = (
    "albumentations",
    "albucore",
    "opencv-python-headless",
    "numpy",
    "pandas",
    "pyarrow",
    "pydantic",
    "matplotlib",
    "scipy",
)
PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUSY_SAMPLE_S = 1.0


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def physical_cores() -> int:
    return psutil.cpu_count(logical=False) or psutil.cpu_count() or 1


def usable_cores_of(physical: int, affinity: Sequence[int] | None) -> int:
    """min(physical cores, CPUs in the affinity mask): above it a cell is time-slicing. The one
    rule for this machine now (usable_cores) and for the host a stored run ran on."""
    return min(physical, len(affinity)) if affinity else physical


def usable_cores() -> int:
    """This machine's usable cores, by usable_cores_of."""
    return usable_cores_of(physical_cores(), cpu_affinity())


def host_info() -> dict:
    return {
        "hostname": platform.node(),
        "cpu_model": cpu_model(),
        "physical_cores": physical_cores(),
        "logical_cores": psutil.cpu_count(logical=True),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
    }


def versions() -> dict:
    found = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def git_commit() -> str | None:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(  # run folders under results/ are data, not code
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!results"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{sha}{'-dirty' if dirty else ''}"


def cpu_affinity() -> list[int] | None:
    """CPUs this process may run on (what taskset/cgroups allow), or None where unsupported."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages, or None where unsupported."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def cpu_governor() -> str | None:
    """The cpufreq scaling governor: one name if all CPUs agree, "a/b" if they differ, None where
    unreadable (common in VMs and containers)."""
    found = set()
    for path in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_governor"):
        try:
            found.add(path.read_text().strip())
        except OSError:
            continue
    return "/".join(sorted(found)) or None


def worker_threads_probe() -> dict:
    """Threads this process would use inside one task: OpenCV's and each native thread pool's
    (BLAS, OpenMP) per threadpoolctl. Run it inside a pool worker to see what workers get."""
    pools = [
        {
            "api": p.get("internal_api") or p.get("user_api"),
            "library": p.get("prefix"),
            "threads": p.get("num_threads"),
        }
        for p in threadpool_info()
    ]
    return {"pid": os.getpid(), "cv2_threads": cv2.getNumThreads(), "threadpools": pools}


def busy_cpus(interval_s: float | None = None) -> float:
    """CPUs kept busy by other programs now: the non-idle share of all CPUs' time in /proc/stat
    over interval_s, times the logical CPUs. Unlike the 1-minute load average it does not lag,
    so it does not blame a run for the one before it. This process sleeps meanwhile."""
    interval_s = BUSY_SAMPLE_S if interval_s is None else interval_s
    return round(psutil.cpu_percent(interval=interval_s) / 100 * (psutil.cpu_count() or 1), 2)


def probe_worker_threads(start_method: str, cv2_threads: int) -> dict:
    """worker_threads_probe run inside a one-worker pool set up as the strategies' are."""
    ctx = multiprocessing.get_context(start_method)
    with ctx.Pool(1, initializer=init_process, initargs=(cv2_threads,)) as pool:
        return pool.apply(worker_threads_probe)


def setup_info(start_method: str) -> dict:
    """meta["setup"] without worker_threads (that one has to run inside a worker)."""
    return {
        "affinity": cpu_affinity(),
        "busy_cpus": busy_cpus(),
        "loadavg": load_average(),
        "governor": cpu_governor(),
        "start_method": start_method,
    }

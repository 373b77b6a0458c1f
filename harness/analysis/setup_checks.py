"""Warnings about the machine and the plan, known before anything runs (and repeated in the
report): other programs busy at start, the frequency governor, a CPU affinity mask, threads inside
the workers, cells planned beyond the usable cores, input files left out.

Threshold, and why:
- busy CPUs: other programs keeping more than LOAD_FRACTION x logical cores busy at start
  (meta["setup"]["busy_cpus"], sampled from /proc/stat over about a second). Run folders
  without it fall back to the 1-minute load average, which lags: the harness' own set-up just
  before (image generation, calibration: one busy process) already adds up to ~1 on a small
  machine, so a much lower threshold would fire on every run.
"""

from __future__ import annotations

from harness.analysis.processes import logical_cores, oversubscribed, processes_for, usable_cores
from harness.rundir.meta import RunMeta

LOAD_FRACTION = 0.5


def setup_warnings(meta: RunMeta) -> list[str]:
    setup = meta.setup
    logical = logical_cores(meta)
    found = _load_warning(setup, logical)
    governor = setup.get("governor")
    if governor and governor != "performance":
        found.append(
            f"The CPU frequency governor is '{governor}', not 'performance': the clock follows "
            "the load, so times depend on what ran before. "
            "Fix: `sudo cpupower frequency-set -g performance` before running."
        )
    affinity = setup.get("affinity")
    if affinity and len(affinity) < logical:
        found.append(
            f"This run could use only {len(affinity)} of {logical} CPUs (affinity "
            f"{_cpu_list(affinity)}); oversubscription is judged against those. "
            "Fix: run without taskset/cgroup CPU limits, or accept the smaller machine."
        )
    return found + _thread_warnings(meta)


def _load_warning(setup: dict, logical: int) -> list[str]:
    """From busy_cpus where recorded, else from the 1-minute load average."""
    fix = "Fix: stop them (see `top`) and re-run."
    busy = setup.get("busy_cpus")
    if busy is not None:
        if busy <= LOAD_FRACTION * logical:
            return []
        return [
            f"Other programs kept {busy:.1f} of {logical} logical CPUs busy at start (sampled "
            f"over about a second): their interference is inside these times. {fix}"
        ]
    load = setup.get("loadavg")
    if load and load[0] > LOAD_FRACTION * logical:
        return [
            f"The 1-minute load average was {load[0]:.2f} at start on {logical} logical cores: "
            f"other programs were busy, and their interference is inside these times. {fix}"
        ]
    return []


def _thread_warnings(meta: RunMeta) -> list[str]:
    probes = worker_probes(meta.setup.get("worker_threads"))
    cv2_threads = {p.get("cv2_threads") for p in probes} - {None}
    if not probes:
        cv2_threads = {meta.config.cv2_threads}
    found = []
    if cv2_threads - {1}:
        n = max(cv2_threads)
        found.append(
            f"OpenCV used {n} threads inside each worker: W workers run up to W x {n} threads, "
            "so the speedup mixes two levels of parallelism. "
            "Fix: set `cv2_threads: 1` in the config."
        )
    pools = {
        (t.get("library"), t.get("threads"))
        for p in probes
        for t in p.get("threadpools") or []
        if (t.get("threads") or 1) > 1
    }
    if pools:
        names = ", ".join(f"{lib} ({n} threads)" for lib, n in sorted(pools, key=str))
        found.append(
            f"Native thread pools in the workers use more than one thread: {names}; any "
            "numpy/BLAS call in a task can oversubscribe the cores. "
            "Fix: export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 "
            "before running."
        )
    return found


def worker_probes(found: object) -> list[dict]:
    """worker_threads as a list of probe dicts, whether stored as one probe, a list or a
    mapping."""
    if isinstance(found, dict):
        if "cv2_threads" in found:
            return [found]
        return [v for v in found.values() if isinstance(v, dict)]
    if isinstance(found, list):
        return [p for p in found if isinstance(p, dict)]
    return []


def _cpu_list(cpus: list[int]) -> str:
    return ",".join(map(str, cpus)) if len(cpus) <= 8 else f"{cpus[0]}…{cpus[-1]}"


def planned_oversubscription(meta: RunMeta) -> list[str]:
    workers = [w for w, _ in meta.config.sweep]
    cores = usable_cores(meta)
    over = sorted(
        {
            w
            for w in workers
            for s in meta.config.labels
            if oversubscribed(processes_for(s, w), cores)
        }
    )
    if not over:
        return []
    return [
        f"W = {', '.join(map(str, over))} will run more busy processes than the {cores} usable "
        "physical cores: those cells measure time-slicing, not added hardware. "
        f"Fix: keep W <= {cores} for scaling claims, or run on a machine with more cores."
    ]


def input_files(meta: RunMeta) -> list[str]:
    """The user's images left out as unreadable, or read but with a remark."""
    inventory = meta.input_inventory or {}
    found = []
    if left_out := inventory.get("unreadable"):
        listed = "; ".join(f"{name}: {why}" for name, why in left_out.items())
        found.append(
            f"{len(left_out)} input file(s) were left out as unreadable ({listed}). "
            "Fix: repair or remove them if the run should include them."
        )
    if notes := inventory.get("notes"):
        listed = "; ".join(f"{name}: {why}" for name, why in notes.items())
        found.append(
            f"{len(notes)} input file(s) were read whole but are not quite intact ({listed}). "
            "Fix: none needed for the timings; re-copy them if the files matter."
        )
    return found

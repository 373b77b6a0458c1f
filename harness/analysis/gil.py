"""What a run's per-transform profile (profile.json, docs/PROFILE.md) says: the share of a task
that holds the GIL, the Amdahl bound it puts on threads, the transform that dominates the time
and the one that limits threads. Read by the report, `predict` and `run`'s one line."""

from __future__ import annotations

from pathlib import Path

from harness.rundir import profile_file
from harness.rundir.profile_file import OWN, Profile, TransformProfile

BOUND_WORKERS = (2, 4, 8, 16, 64)  # the W the report bounds threads at
# W processes taking this many times their CPU time: the machine was busy, which hides the GIL
BUSY_STRETCH = 1.3
NAMED = 3  # GIL holders named in a line
NAMED_FROM = 0.005  # of a task: smaller holders go unnamed
BELOW = 0.9  # measured threads under this share of their bound: said to fall below it


def read(run_dir: Path) -> Profile | None:
    """The run folder's profile, None when it has none (older folders, `profile: false`)."""
    return profile_file.read(run_dir)


def gil_share(profile: Profile) -> float:
    """g: the share of a task's time (one thread) spent holding the GIL."""
    return min(1.0, sum(t.gil_of_task for t in profile.transforms))


def threads_bound(gil: float, workers: int) -> float:
    """Amdahl with the GIL as the serial part: W threads give at most 1 / (g + (1 - g) / W)
    times one thread, and never more than 1 / g."""
    return 1.0 / (gil + (1.0 - gil) / workers)


def dominant(profile: Profile) -> TransformProfile | None:
    """The transform with the largest share of a task's time (the Compose's own code aside)."""
    found = [t for t in profile.transforms if t.name != OWN and t.calls]
    return max(found, key=lambda t: t.share, default=None)


def limiting(profile: Profile) -> TransformProfile | None:
    """The row that holds the GIL for the largest share of a task."""
    return max(profile.transforms, key=lambda t: t.gil_of_task, default=None)


def busy(profile: Profile) -> bool:
    return profile.machine_stretch > BUSY_STRETCH


def holders(profile: Profile) -> str:
    """'Lambda(f) 55%, ColorJitter 4%': the largest holders of the GIL, as shares of a task."""
    rows = sorted(profile.transforms, key=lambda t: -t.gil_of_task)
    named = [f"{t.name} {t.gil_of_task:.0%}" for t in rows[:NAMED] if t.gil_of_task >= NAMED_FROM]
    return ", ".join(named) or "no transform"


def bound_line(profile: Profile, workers: int) -> str:
    """P_T at W = 64: at most 3.2x (the pipeline holds the GIL 30% of a task: ...)."""
    g = gil_share(profile)
    return (
        f"P_T at W = {workers}: at most {threads_bound(g, workers):.1f}x (the pipeline holds the "
        f"GIL {g:.0%} of a task: {holders(profile)})"
    )


def busy_note(profile: Profile) -> str:
    """Why a busy machine's GIL figures are too low, or ''."""
    if not busy(profile):
        return ""
    return (
        f"The machine was busy while profiling ({profile.workers} processes took "
        f"{profile.machine_stretch:.2f}x their CPU time), which hides the GIL: the shares may "
        "be too low and the bounds too high."
    )


def time_sentence(profile: Profile) -> str:
    top = dominant(profile)
    if top is None:
        return "No transform fired in the profiled tasks."
    return (
        f"**{top.name}** dominates the time: {top.share:.0%} of a task on one thread "
        f"({top.calls} calls in {profile.tasks} tasks, {top.alone_ms or 0:.3f} ms each)."
    )


def threads_sentence(profile: Profile) -> str:
    top, g = limiting(profile), gil_share(profile)
    if top is None or top.gil_of_task <= 0:
        return "No part of a task was seen holding the GIL."
    return (
        f"**{top.name}** limits threads: it holds the GIL {top.gil:.0%} of its time, "
        f"{top.gil_of_task:.0%} of a task of the {g:.0%} the pipeline holds it, so threads give "
        f"at most {1 / g:.1f}x however many there are."
    )


def measured_sentence(profile: Profile) -> str:
    """What W threads and W processes gave on the profile's own tasks, beside the bound."""
    w, alone = profile.workers, profile.alone_task_ms
    threads = w * alone / profile.threads_task_ms if profile.threads_task_ms else 0.0
    processes = w * alone / profile.loaded_task_ms if profile.loaded_task_ms else 0.0
    below = threads < BELOW * threads_bound(gil_share(profile), w)
    tail = ": threads fall below the bound, handing the GIL back and forth costs time too"
    return (
        f"On the profiled tasks here, {w} threads ran {threads:.2f}x one thread's rate (a task "
        f"{profile.threads_task_ms:.2f} ms against {alone:.2f} ms alone) and {w} processes "
        f"{processes:.2f}x{tail if below else ''}."
    )


def summary_line(profile: Profile) -> str:
    """The one line `run` prints."""
    top, g, w = dominant(profile), gil_share(profile), BOUND_WORKERS[-1]
    heaviest = f"{top.name} takes {top.share:.0%} of a task; " if top else ""
    line = (
        f"Profile ({profile.tasks} tasks, {profile.alone_task_ms:.2f} ms each, W = "
        f"{profile.workers}): {heaviest}the pipeline holds the GIL {g:.0%} of a task "
        f"({holders(profile)}), so threads give at most {threads_bound(g, w):.1f}x at W = {w}"
    )
    busy_end = " (measured on a busy machine, which hides the GIL: the bound may be too high)"
    return line + (busy_end if busy(profile) else "")

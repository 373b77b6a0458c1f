"""`profile.json` in a run folder: the per-transform profile of its pipeline, measured by `run`
before the sweep (harness/measure/profile.py, docs/PROFILE.md). Written atomically; a damaged,
foreign or newer file is refused in one line."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from harness.rundir import store

FILE = "profile.json"
FORMAT = 1
OWN = "Compose (own code)"  # the row of a task's time outside its transforms


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TransformProfile(_Strict):
    """One leaf transform of the pipeline (or OWN). Times are medians per call, in ms; None
    where it never ran in that mode."""

    name: str
    calls: int  # in the profiled tasks, one thread (a transform of p < 1 fires in some)
    alone_ms: float | None  # one thread, nothing else running
    loaded_ms: float | None  # W processes running the same tasks at once
    threads_ms: float | None  # W threads of one process running the same tasks at once
    off_cpu: float | None  # under W threads: the share of its wall time its thread was off a CPU
    gil: float  # the share of its time it holds the GIL (isolated in W threads against W processes)
    share: float  # its share of a task's time, one thread

    @property
    def load_slowdown(self) -> float | None:
        return _ratio(self.loaded_ms, self.alone_ms)

    @property
    def threads_slowdown(self) -> float | None:
        return _ratio(self.threads_ms, self.alone_ms)

    @property
    def gil_of_task(self) -> float:
        """The share of a task's time this row holds the GIL."""
        return self.share * self.gil


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


class Profile(_Strict):
    format_version: int = FORMAT
    workers: int  # W of the loaded and threads modes
    tasks: int  # tasks profiled, each worker running all of them
    image_size: list[int]  # width, height of the first input image
    alone_task_ms: float  # median per task, one thread
    loaded_task_ms: float
    threads_task_ms: float
    # wall / CPU seconds of W processes, the most seen while profiling: 1 on a quiet machine
    machine_stretch: float
    transforms: list[TransformProfile]  # the leaves in the pipeline's order, then OWN
    measured_at: str


def write(run_dir: Path, found: Profile) -> Path:
    return store.write_model(Path(run_dir) / FILE, found)


def read(run_dir: Path) -> Profile | None:
    """The run folder's profile.json, None when it has none; a damaged, foreign or newer file is
    one line (HarnessError)."""
    fix = "delete it (the report and predict then leave the profile out)"
    return store.read_model(Path(run_dir) / FILE, Profile, FORMAT, "a profile file", fix)

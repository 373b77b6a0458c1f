"""The per-transform profile of a pipeline on this machine (docs/PROFILE.md says why each step).

A sample of the sweep's tasks, each seeded as workload.task_seed seeds it, runs through a built
Compose whose leaf transforms are timed in place (`_Clock`), in three modes:
1. alone: one thread, nothing else running (up to MAX_TASKS tasks or SECONDS);
2. loaded: W processes running the same tasks at once (memory bandwidth, shared caches);
3. threads: W threads of this process running them at once (the same, and the GIL).
Then each transform that fired runs isolated, always applied to the inputs it had in mode 1, in
W threads and right after in W processes: how much more wall time per CPU second the threads
take is the share of its time it holds the GIL (Karp-Flatt against processes). The Compose's
own code between the transforms is Python, so it holds the GIL throughout.
"""

from __future__ import annotations

import math
import multiprocessing
import queue
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

import numpy as np
from albumentations.core.composition import BaseCompose

from experiments.pipeline import Pipeline
from experiments.workload import Job, init_process, read_rgb, task_seed
from harness.rundir.profile_file import OWN, Profile, TransformProfile
from harness.schema import utc_now

SECONDS = 1.5  # of tasks in mode 1, at most ...
MAX_TASKS = 200  # ... and at most this many tasks
MIN_TASKS = 4
INPUTS_KEPT = 4  # inputs kept per transform for its isolated runs
ISOLATED_S = 0.05  # of one transform's calls per worker, in isolation ...
ISOLATED_CALLS = (4, 50)  # ... within these many calls
WAIT_S = 300.0  # a worker that does not reach the barrier or finish by then breaks the profile
TASK = ""  # the label of a whole task's record

Record = tuple[str, float, float]  # label, wall seconds, CPU seconds of the thread
Task = tuple[int, int]  # index into the images, seed


def profile_pipeline(
    pipeline: Pipeline,
    images: list[np.ndarray] | list[Path],
    augmentations: int,
    seed: int,
    workers: int,
    *,
    n_images: int | None = None,
    start_method: str = "fork",
    cv2_threads: int = 1,
) -> Profile:
    """Profile `pipeline` on the tasks of a sweep of `n_images` images (default: as many as
    `images`), task (i, k) applied to images[i % len(images)]. RuntimeError when the pipeline
    raises or a worker hangs."""
    arrays = [read_rgb(Path(x)) if isinstance(x, (str, Path)) else x for x in images]
    tasks = _sample(pipeline, len(arrays), n_images or len(arrays), augmentations, seed)
    alone, inputs = _alone(pipeline, arrays, tasks)
    tasks = tasks[: sum(r[0] == TASK for r in alone)]
    pool = _Pool(multiprocessing.get_context(start_method), workers, cv2_threads)
    loaded = pool.processes(_tasks_worker, pipeline, arrays, tasks, False)
    threads = pool.threads(_tasks_worker, pipeline, arrays, tasks, True)
    labels = _labels(_leaves(pipeline.build()))
    gil, stretch = _isolated(pool, pipeline, labels, inputs, _per_label(alone))
    rows = _rows([*labels, OWN], (alone, loaded, threads), gil)
    return Profile(
        workers=workers,
        tasks=len(tasks),
        image_size=[int(arrays[0].shape[1]), int(arrays[0].shape[0])],
        alone_task_ms=_task_ms(alone),
        loaded_task_ms=_task_ms(r for records in loaded for r in records),
        threads_task_ms=_task_ms(r for records in threads for r in records),
        machine_stretch=round(max(stretch, _stretch(loaded)), 4),
        transforms=rows,
        measured_at=utc_now(),
    )


def _sample(
    pipeline: Pipeline, n_arrays: int, n_images: int, augmentations: int, seed: int
) -> list[Task]:
    """Tasks spread evenly over the sweep's, at most MAX_TASKS."""
    job = Job(Path("."), Path("."), augmentations, seed, False, pipeline=pipeline)
    total = n_images * augmentations
    step = max(1, math.ceil(total / MAX_TASKS))
    picks = [divmod(j, augmentations) for j in range(0, total, step)]
    return [(i % n_arrays, task_seed(job, i, k)) for i, k in picks]


class _Clock:
    """Times one leaf transform of a built Compose in place, no subclass: the instance's
    get_params (the first step of a call that fires) and apply_with_params (its last) are
    wrapped, so a call is timed from drawing its parameters to its output, and a call that
    does not fire is not counted. `cpu` reads the thread's CPU time only where a mode needs it
    per call: the read is a system call, where a busy machine's scheduler switches processes,
    and the wait would land in the Compose's own time. `inputs`, when given, keeps the first
    images it gets."""

    def __init__(
        self,
        transform: Any,
        label: str,
        records: list[Record],
        cpu: Callable[[], float],
        inputs: list | None = None,
    ) -> None:
        self.label, self.records, self.cpu, self.inputs = label, records, cpu, inputs
        self.start: tuple[float, float] | None = None
        self.get_params, self.apply = transform.get_params, transform.apply_with_params
        transform.get_params = self._get_params
        transform.apply_with_params = self._apply

    def _get_params(self, *args: Any, **kwargs: Any) -> Any:
        self.start = (time.perf_counter(), self.cpu())
        return self.get_params(*args, **kwargs)

    def _apply(self, params: dict, *args: Any, **kwargs: Any) -> Any:
        wall, cpu = self.start or (time.perf_counter(), self.cpu())
        self.start = None
        out = self.apply(params, *args, **kwargs)
        self.records.append((self.label, time.perf_counter() - wall, self.cpu() - cpu))
        if self.inputs is not None and len(self.inputs) < INPUTS_KEPT and "image" in kwargs:
            self.inputs.append(np.array(kwargs["image"]))  # after the clock: a copy costs
        return out


def _leaves(transform: Any) -> list[Any]:
    """The Compose's innermost transforms in order (OneOf and SomeOf opened)."""
    if not isinstance(transform, BaseCompose):  # ColorJitter, too, has a `transforms` list
        return [transform]
    return [leaf for t in transform.transforms for leaf in _leaves(t)]


def _labels(leaves: list[Any]) -> list[str]:
    """A row name per leaf: its class (a Lambda with its name or function), numbered when a
    name repeats."""
    seen: Counter[str] = Counter()
    labels = []
    for leaf in leaves:
        name = _name(leaf)
        seen[name] += 1
        labels.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return labels


def _name(leaf: Any) -> str:
    name = type(leaf).__name__
    if name != "Lambda":
        return name
    fn = getattr(leaf, "custom_apply_fns", {}).get("image")
    own = getattr(leaf, "name", None) or getattr(fn, "__name__", "")
    return f"Lambda({own})" if own and own != "noop" else name


def _instrumented(
    pipeline: Pipeline,
    records: list[Record],
    per_call_cpu: bool = False,
    inputs: dict[str, list] | None = None,
) -> Any:
    compose = pipeline.build()
    leaves = _leaves(compose)
    cpu = time.thread_time if per_call_cpu else _no_cpu
    for leaf, label in zip(leaves, _labels(leaves), strict=True):
        kept = None if inputs is None else inputs.setdefault(label, [])
        _Clock(leaf, label, records, cpu, kept)
    return compose


def _no_cpu() -> float:
    return 0.0


def _run(compose: Any, records: list[Record], arrays: list[np.ndarray], task: Task) -> None:
    index, seed = task
    compose.set_random_seed(seed)
    wall, cpu = time.perf_counter(), time.thread_time()
    compose(image=arrays[index])
    records.append((TASK, time.perf_counter() - wall, time.thread_time() - cpu))


def _alone(
    pipeline: Pipeline, arrays: list[np.ndarray], tasks: list[Task]
) -> tuple[list[Record], dict[str, list]]:
    """Mode 1: the tasks in this thread until MAX_TASKS or SECONDS (at least MIN_TASKS); the
    records, and each transform's first inputs."""
    records: list[Record] = []
    inputs: dict[str, list] = {}
    compose = _instrumented(pipeline, records, inputs=inputs)
    try:
        _run(compose, [], arrays, tasks[0])  # untimed: first-call allocations
        records.clear()
        deadline = time.perf_counter() + SECONDS
        for n, task in enumerate(tasks):
            if n >= MIN_TASKS and time.perf_counter() > deadline:
                break
            _run(compose, records, arrays, task)
    except Exception as err:  # noqa: BLE001 - a user's pipeline may raise anything
        raise RuntimeError(f"the pipeline failed: {type(err).__name__}: {err}") from None
    return records, inputs


def _tasks_worker(
    pipeline: Pipeline,
    arrays: list[np.ndarray],
    tasks: list[Task],
    per_call_cpu: bool,
    barrier: Any,
) -> list[Record]:
    """Modes 2 and 3: one worker's records of every task, started with the others."""
    records: list[Record] = []
    compose = _instrumented(pipeline, records, per_call_cpu)
    _run(compose, [], arrays, tasks[0])
    records.clear()
    barrier.wait(WAIT_S)
    for task in tasks:
        _run(compose, records, arrays, task)
    return records


Isolated = tuple[int, list[np.ndarray], int]  # a leaf's index, its inputs, calls per worker


def _ready(leaves: list[Any], job: Isolated) -> Any:
    """Leaf job[0], always applied, seeded, past its first call."""
    leaf = leaves[job[0]]
    leaf.p = 1.0
    leaf.set_random_seed(0)
    leaf(image=job[1][0])
    return leaf


def _calls(leaf: Any, job: Isolated) -> Record:
    """job[2] calls of the leaf over its inputs: one record of them all."""
    inputs = job[1]
    wall, cpu = time.perf_counter(), time.thread_time()
    for j in range(job[2]):
        leaf(image=inputs[j % len(inputs)])
    return (TASK, time.perf_counter() - wall, time.thread_time() - cpu)


def _isolated_thread(pipeline: Pipeline, job: Isolated, barrier: Any) -> list[Record]:
    leaf = _ready(_leaves(pipeline.build()), job)
    barrier.wait(WAIT_S)
    return [_calls(leaf, job)]


def _isolated_process(
    out: Any, cv2_threads: int, pipeline: Pipeline, jobs: list[Isolated], barrier: Any
) -> None:
    """Every job in turn: ready, then idle while the parent's threads run it, then released
    by the parent at `barrier`."""
    init_process(cv2_threads)
    try:
        leaves = _leaves(pipeline.build())
        for job in jobs:
            leaf = _ready(leaves, job)
            barrier.wait(WAIT_S)  # ready: the threads' turn
            barrier.wait(WAIT_S)  # the processes' turn
            out.put([_calls(leaf, job)])
    except Exception as err:  # noqa: BLE001 - a user's pipeline may raise anything
        barrier.abort()
        out.put(f"{type(err).__name__}: {err}")


@dataclass(frozen=True)
class _Pool:
    """W workers of a function, as threads of this process or as processes."""

    ctx: BaseContext
    workers: int
    cv2_threads: int

    def isolated(self, pipeline: Pipeline, jobs: list[Isolated]) -> list[tuple[float, float]]:
        """Per job, (stretch in W threads, stretch in W processes): the leaf alone in W
        threads, then at once in W processes that wait for their turn at a barrier, so the
        two see the same load on the machine."""
        barrier, out = self.ctx.Barrier(self.workers + 1), self.ctx.Queue()
        args = (out, self.cv2_threads, pipeline, jobs, barrier)
        procs = [self.ctx.Process(target=_isolated_process, args=args) for _ in range(self.workers)]
        for p in procs:
            p.start()
        try:
            return [self._turn(pipeline, job, barrier, out) for job in jobs]
        except threading.BrokenBarrierError:
            raise RuntimeError(f"a process of the profile failed: {out.get(timeout=5)}") from None
        finally:
            barrier.abort()  # frees a process still waiting when a thread failed
            _stop(procs)

    def _turn(
        self, pipeline: Pipeline, job: Isolated, barrier: Any, out: Any
    ) -> tuple[float, float]:
        barrier.wait(WAIT_S)  # the processes are ready and idle
        threads = _stretch(self.threads(_isolated_thread, pipeline, job))
        barrier.wait(WAIT_S)
        return threads, _stretch(_results(out, self.workers))

    def threads(self, fn: Callable[..., list[Record]], *args: Any) -> list[list[Record]]:
        """fn(*args, barrier) in W threads of this process, released together."""
        barrier = threading.Barrier(self.workers)
        results: list[list[Record]] = []
        errors: list[BaseException] = []

        def target() -> None:
            try:
                results.append(fn(*args, barrier))
            except BaseException as err:  # noqa: BLE001 - re-raised below, in the caller
                barrier.abort()
                errors.append(err)

        pool = [threading.Thread(target=target, daemon=True) for _ in range(self.workers)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(WAIT_S)
        if errors or len(results) < self.workers:
            why = repr(errors[0]) if errors else "it hung"
            raise RuntimeError(f"a thread of the profile failed: {why}")
        return results

    def processes(self, fn: Callable[..., list[Record]], *args: Any) -> list[list[Record]]:
        """fn(*args, barrier) in W processes, released together."""
        barrier, out = self.ctx.Barrier(self.workers), self.ctx.Queue()
        procs = [
            self.ctx.Process(target=_process_main, args=(out, self.cv2_threads, fn, args, barrier))
            for _ in range(self.workers)
        ]
        for p in procs:
            p.start()
        try:
            return _results(out, self.workers)
        finally:
            _stop(procs)


def _results(out: Any, workers: int) -> list[list[Record]]:
    """The workers' records from their queue; RuntimeError when one failed or hung."""
    try:
        results = [out.get(timeout=WAIT_S) for _ in range(workers)]
    except queue.Empty:
        raise RuntimeError("a process of the profile did not finish") from None
    if failed := [r for r in results if isinstance(r, str)]:
        raise RuntimeError(f"a process of the profile failed: {failed[0]}")
    return results


def _stop(procs: list[Any]) -> None:
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():
            p.kill()


def _isolated(
    pool: _Pool,
    pipeline: Pipeline,
    labels: list[str],
    inputs: dict[str, list],
    medians: dict[str, float],
) -> tuple[dict[str, float], float]:
    """Each transform that fired, isolated: the share of its time it holds the GIL, the
    Karp-Flatt serial fraction of W threads against W processes, each side's wall time per CPU
    second so that memory bandwidth and the machine's other load (in both) cancel:
    (stretch_T / stretch_P - 1) / (W - 1), within [0, 1]; and the most the processes
    stretched. The Compose's own code is Python throughout: it holds the GIL."""
    low, high = ISOLATED_CALLS
    fired = [(j, label) for j, label in enumerate(labels) if inputs.get(label)]
    jobs = [
        (j, inputs[label], int(min(high, max(low, ISOLATED_S / max(medians[label], 1e-6)))))
        for j, label in fired
    ]
    stretches = pool.isolated(pipeline, jobs) if jobs else []
    gil = {
        label: round(min(1.0, max(0.0, (t / p - 1) / max(1, pool.workers - 1))), 4)
        for (_, label), (t, p) in zip(fired, stretches, strict=True)
    }
    return {**gil, OWN: 1.0}, max((p for _, p in stretches), default=1.0)


def _stretch(results: list[list[Record]]) -> float:
    """Wall over CPU seconds of the workers' whole tasks."""
    walls = sum(r[1] for records in results for r in records if r[0] == TASK)
    cpus = sum(r[2] for records in results for r in records if r[0] == TASK)
    return walls / max(cpus, 1e-9)


def _process_main(
    out: Any, cv2_threads: int, fn: Callable[..., list[Record]], args: tuple, barrier: Any
) -> None:
    init_process(cv2_threads)
    try:
        out.put(fn(*args, barrier))
    except Exception as err:  # noqa: BLE001 - a user's pipeline may raise anything
        barrier.abort()
        out.put(f"{type(err).__name__}: {err}")


def _with_own(records: list[Record]) -> list[Record]:
    """The records with, per task, the Compose's own part: the task less its transforms."""
    out: list[Record] = []
    wall = cpu = 0.0
    for label, w, c in records:
        out.append((label, w, c))
        if label != TASK:
            wall, cpu = wall + w, cpu + c
            continue
        out.append((OWN, max(0.0, w - wall), max(0.0, c - cpu)))
        wall = cpu = 0.0
    return out


def _per_label(records: list[Record]) -> dict[str, float]:
    """Median wall seconds per call, per label."""
    walls: dict[str, list[float]] = {}
    for label, wall, _ in records:
        walls.setdefault(label, []).append(wall)
    return {label: statistics.median(w) for label, w in walls.items()}


def _task_ms(records: Iterable[Record]) -> float:
    return _ms(statistics.median(r[1] for r in records if r[0] == TASK)) or 0.0


def _rows(
    labels: list[str],
    modes: tuple[list[Record], list[list[Record]], list[list[Record]]],
    gil: dict[str, float],
) -> list[TransformProfile]:
    """One row per label, the records of the pooled workers' tasks with their own parts."""
    alone = _with_own(modes[0])
    loaded = [r for records in modes[1] for r in _with_own(records)]
    threads = [r for records in modes[2] for r in _with_own(records)]
    task_s = sum(w for label, w, _ in alone if label == TASK)
    medians = [_per_label(m) for m in (alone, loaded, threads)]
    return [_row(label, alone, threads, medians, gil.get(label, 0.0), task_s) for label in labels]


def _row(
    label: str,
    alone: list[Record],
    threads: list[Record],
    medians: list[dict[str, float]],
    gil: float,
    task_s: float,
) -> TransformProfile:
    mine = [r for r in alone if r[0] == label]
    under = [r for r in threads if r[0] == label]
    wall, cpu = sum(r[1] for r in under), sum(r[2] for r in under)
    return TransformProfile(
        name=label,
        calls=len(mine),
        alone_ms=_ms(medians[0].get(label)),
        loaded_ms=_ms(medians[1].get(label)),
        threads_ms=_ms(medians[2].get(label)),
        off_cpu=round(min(1.0, max(0.0, 1 - cpu / wall)), 4) if wall > 0 else None,
        gil=gil,
        share=round(sum(r[1] for r in mine) / task_s, 4) if task_s > 0 else 0.0,
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 5)

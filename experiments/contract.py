"""The strategy contract: what one strategy module declares, checked when it is discovered.

A strategy module defines one module-level `STRATEGY = Strategy(...)`. Everything the harness
needs to know about a strategy comes from this object; no other module names a strategy.

    run(job, workers, ctx) -> Phases      the timed call (a strategy with a session gets it as a
                                          fourth argument: run(job, workers, ctx, session))
    name, summary                         config/report name and one line for the report
    saving_only, min_workers              which cells it can run
    in_process                            its workers are threads of the measuring process
    restarts_workers                      its executor replaces a worker process that dies and
                                          redoes that worker's tasks (Dask's nanny): the harness
                                          counts such restarts in the run's row instead of
                                          failing the run (a death fails every other strategy)
    phases                                extra phase columns: {"queue_put": "queue put"} is stored
                                          as t_queue_put_s, from phases.extra["queue_put"]
    options                               a pydantic model of its own config options (job.options)
    session(job, workers, ctx)            a context manager entered once per cell, outside the
                                          timed region; what it yields is passed to run
    cleanup(pid)                          after the harness killed the child process `pid`: remove
                                          what the child could not (e.g. shared-memory blocks)
    memory_mb(workers, n_images, image_mb) peak memory of one run, for the preflight
    notes                                 sentences the report adds when the strategy is in a run
    schedule                              how it hands tasks to workers, for the replay bound
                                          (harness/analysis/replay.py); None: not replayed
    requires, extra                       modules it imports lazily, and the pip extra of this
                                          project that installs them (a config naming the
                                          strategy without them is refused, naming the extra)
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from typing import Any

from pydantic import BaseModel

from experiments.workload import Job, Phases

NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
PHASE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
# Phase keys the harness itself records in phases.extra; a strategy may not redeclare them.
HARNESS_PHASES = ("startup",)

# The default memory model, a deliberate over-estimate (see harness/plan/preflight.py).
PROCESS_BASE_MB = 150.0
TRANSPORT_COPIES = 6  # a task's input, its output and the pipeline's intermediates
QUEUE_BACKLOG = 64  # augmented images that may wait for savers in a queue strategy


def pool_chunksize(n_tasks: int, workers: int) -> int:
    """CPython's Pool.map/starmap rule: ceil(n_tasks / (4 W)), and at least 1."""
    chunks, extra = divmod(n_tasks, 4 * workers)
    return max(1, chunks + bool(extra))


def one_at_a_time(n_tasks: int, workers: int) -> int:
    return 1


@dataclass(frozen=True)
class Schedule:
    """How a strategy hands its tasks, in (i, k) order, to workers: in chunks of chunksize(n, W),
    each taken by the next free worker. reads: "main" reads every image first (a serial head),
    "task" has every task read its own. savers(W): saver processes out of W, fed by the
    augmenters (a pipeline). pool: a pool is started inside every run (start-up counts).
    exact: False when the rule only approximates the strategy (the report marks its rows)."""

    chunksize: Callable[[int, int], int] = pool_chunksize
    reads: str = "main"
    savers: Callable[[int], int] | None = None
    pool: bool = True
    exact: bool = True  # False: the rule only approximates how the strategy hands out tasks


class ContractError(Exception):
    """A strategy module that breaks the contract; the message names the module and the piece."""


def pool_memory_mb(workers: int, n_images: int, image_mb: float) -> float:
    """Main holds every image once plus a task's copies; each worker a task's copies."""
    pool = workers if workers > 1 else 0
    main = PROCESS_BASE_MB + (n_images + TRANSPORT_COPIES) * image_mb
    return main + pool * (PROCESS_BASE_MB + TRANSPORT_COPIES * image_mb)


def queue_memory_mb(workers: int, n_images: int, image_mb: float) -> float:
    """pool_memory_mb plus up to QUEUE_BACKLOG augmented images waiting for the savers."""
    return pool_memory_mb(workers, n_images, image_mb) + QUEUE_BACKLOG * image_mb


@dataclass(frozen=True)
class Strategy:
    name: str
    summary: str
    run: Callable[..., Phases]
    saving_only: bool = False
    min_workers: int = 1
    in_process: bool = False
    restarts_workers: bool = False
    phases: Mapping[str, str] = field(default_factory=dict)
    options: type[BaseModel] | None = None
    session: Callable[[Job, int, BaseContext], contextlib.AbstractContextManager] | None = None
    cleanup: Callable[[int], None] | None = None
    memory_mb: Callable[[int, int, float], float] = pool_memory_mb
    notes: tuple[str, ...] = ()
    schedule: Schedule | None = None
    requires: tuple[str, ...] = ()
    extra: str | None = None

    def missing(self) -> list[str]:
        """The modules in `requires` that cannot be imported here."""
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    def skip_reason(self, workers: int, saving: bool) -> str | None:
        """Why a (workers, saving) cell cannot run, or None if it can."""
        if self.saving_only and not saving:
            return f"{self.name} only saves (as in the study)"
        if workers < self.min_workers:
            return f"{self.name} needs at least {self.min_workers} workers"
        return None

    def validate_options(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """The strategy's options with defaults filled in; pydantic's ValidationError if bad."""
        if self.options is None:
            if given:
                raise ValueError(f"{self.name} takes no options")
            return {}
        return self.options.model_validate(dict(given or {})).model_dump(mode="json")

    def call(self, job: Job, workers: int, ctx: BaseContext, session: object = None) -> Phases:
        """The timed call; the session argument only for strategies that declare one."""
        if self.session is None:
            return self.run(job, workers, ctx)
        return self.run(job, workers, ctx, session)

    def open_session(
        self, job: Job, workers: int, ctx: BaseContext
    ) -> contextlib.AbstractContextManager:
        """The per-cell session, or a context that yields None for strategies without one."""
        if self.session is None:
            return contextlib.nullcontext()
        return self.session(job, workers, ctx)


def check(strategy: object, module: str) -> Strategy:
    """The module's STRATEGY if it keeps the contract; ContractError naming the piece if not."""
    if not isinstance(strategy, Strategy):
        found = "nothing" if strategy is None else type(strategy).__name__
        raise ContractError(
            f"{module}: STRATEGY must be an experiments.contract.Strategy, found {found}"
        )
    problems = list(_problems(strategy))
    if problems:
        raise ContractError(f"{module}: {'; '.join(problems)}")
    return strategy


def _problems(s: Strategy) -> list[str]:
    found = []
    if not isinstance(s.name, str) or not NAME_PATTERN.match(s.name):
        found.append(f"name {s.name!r} must be letters, digits and '_', starting with a letter")
    if not isinstance(s.summary, str) or not s.summary.strip():
        found.append("summary must be a non-empty line")
    for attr in ("run", "memory_mb"):
        if not callable(getattr(s, attr)):
            found.append(f"{attr} must be callable")
    for attr in ("session", "cleanup"):
        if getattr(s, attr) is not None and not callable(getattr(s, attr)):
            found.append(f"{attr} must be callable or None")
    if not isinstance(s.min_workers, int) or s.min_workers < 1:
        found.append("min_workers must be a whole number >= 1")
    flags = (s.saving_only, s.in_process, s.restarts_workers)
    if not all(isinstance(flag, bool) for flag in flags):
        found.append("saving_only, in_process and restarts_workers must be true or false")
    if s.options is not None and not (
        isinstance(s.options, type) and issubclass(s.options, BaseModel)
    ):
        found.append("options must be a pydantic BaseModel class or None")
    if s.schedule is not None and not isinstance(s.schedule, Schedule):
        found.append("schedule must be an experiments.contract.Schedule or None")
    elif s.schedule is not None and s.schedule.reads not in ("main", "task"):
        found.append("schedule.reads must be 'main' or 'task'")
    if not isinstance(s.requires, tuple) or not all(isinstance(m, str) for m in s.requires):
        found.append("requires must be a tuple of module names")
    elif s.requires and not (isinstance(s.extra, str) and s.extra):
        found.append("extra must name the pip extra that installs `requires`")
    for key, label in dict(s.phases).items():
        if not PHASE_PATTERN.match(str(key)) or key in HARNESS_PHASES or not isinstance(label, str):
            found.append(
                f"phase {key!r} must be a lower-case identifier "
                f"(not {', '.join(HARNESS_PHASES)}) with a label"
            )
    return found

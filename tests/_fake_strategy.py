"""A fake in-process strategy for the runner tests (hyperfine's MockExecutor, as a strategy):
no pools and no augmentation, so a sweep of it takes milliseconds. Loaded as a plugin:
`plugins: [tests/_fake_strategy.py]`. Its options make a run fail, hang or kill its process."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from multiprocessing.context import BaseContext

from pydantic import BaseModel, ConfigDict

from experiments.contract import Strategy
from experiments.workload import TASK, Job, Phases, list_images, output_path


class FakeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sleep_s: float = 0.0
    fail: bool = False  # raise inside the timed call
    hang: bool = False  # never return (the cell timeout must catch it)
    die: bool = False  # end the child process at once, as a crash would
    sleeps: list[float] = []  # the n-th call of this process sleeps sleeps[n % len] (+ sleep_s)


_calls = [0]


@contextlib.contextmanager
def session(job: Job, workers: int, ctx: BaseContext) -> Iterator[dict]:
    yield {"opened_by": os.getpid()}


def run(job: Job, workers: int, ctx: BaseContext, session: dict) -> Phases:
    options = FakeOptions(**job.options)
    assert session["opened_by"] == os.getpid()
    if options.die:
        os._exit(3)
    if options.fail:
        raise RuntimeError("the fake strategy was told to fail")
    while options.hang:
        time.sleep(1)
    extra = options.sleeps[_calls[0] % len(options.sleeps)] if options.sleeps else 0.0
    _calls[0] += 1
    time.sleep(options.sleep_s + extra)
    phases = Phases()
    for i, _ in enumerate(list_images(job.input_dir)):
        for k in range(job.augmentations):
            start = time.perf_counter()
            if job.saving:
                output_path(job, i, k).write_bytes(b"fake")
            end = time.perf_counter()
            phases.add((TASK, i, k, threading.get_native_id(), start, end, 0.0, end - start, 0.0,
                        0.0, 0.0, 0.0))
    phases.extra["fake_phase"] = 0.5
    return phases


STRATEGY = Strategy(
    name="FAKE",
    summary="does no work, in process; for the runner tests",
    run=run,
    in_process=True,
    phases={"fake_phase": "fake phase"},
    options=FakeOptions,
    session=session,
)

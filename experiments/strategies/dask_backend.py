"""P_DASK: the same tasks on dask.distributed workers (an optional dependency: the `dask` extra).

Options (config: `options: {P_DASK: {scheduler: ..., data: ...}}`, or the older `dask:` key):
Per cell, outside the timed region, session() either starts a LocalCluster of W single-threaded
worker processes, or (`scheduler` set) connects to that cluster and restricts every task to W
of its workers (the first W addresses in sorted order). Each of those workers runs
workload.init_process(job.cv2_threads) once, through client.run.

Data (`data`):
  scatter      main reads each image once and broadcasts it to the W workers (client.scatter),
               once per run; tasks reference the scattered images.
  shared_path  tasks read the files themselves (as in P_2): input_dir, and out_dir when
               saving, must be the same path on every worker.
Batch (`batch`, experiments/batching.py): `own` submits one Dask task per augmentation task; a
number or `auto` submits one Dask task per batch of them.

Tasks are workload.augment_and_save / read_augment_save, so a remote worker only needs this
project installed. There is no placement option for Dask workers. dask is imported lazily: this
module imports without it, and session() raises a clear error if it is missing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from experiments.batching import Batch, batch_size, in_batches
from experiments.contract import Schedule, Strategy, one_at_a_time
from experiments.strategies._shared import read_all
from experiments.workload import (
    Job,
    Phases,
    augment_and_save,
    init_process,
    list_images,
    read_augment_save,
)

WORKER_WAIT_S = 60  # how long a cluster may take to offer W workers


class DaskOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    scheduler: str | None = None  # None: a LocalCluster started per cell
    data: Literal["scatter", "shared_path"] = "scatter"
    batch: Batch = "own"


@dataclass(frozen=True)
class DaskSession:
    client: Any  # distributed.Client
    workers: list[str]  # the addresses tasks may run on


def _distributed() -> Any:
    try:  # lazy: an optional dependency, and slow to import
        import distributed
    except ImportError as err:
        raise RuntimeError(
            "P_DASK needs dask.distributed, an optional dependency: pip install -e '.[dask]'"
        ) from err
    return distributed


@contextlib.contextmanager
def dask_session(job: Job, workers: int, ctx: BaseContext | None = None) -> Iterator[DaskSession]:
    """A client and W worker addresses, ready to run tasks; everything is closed on exit."""
    distributed = _distributed()
    scheduler = DaskOptions(**job.options).scheduler
    if scheduler:
        with distributed.Client(scheduler) as client:
            yield _prepare(client, choose_workers(client, workers), job)
        return
    cluster_args = dict(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with (
        distributed.LocalCluster(silence_logs=logging.ERROR, **cluster_args) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield _prepare(client, choose_workers(client, workers), job)


def choose_workers(client: Any, workers: int) -> list[str]:
    """The first W worker addresses (sorted), or an error naming how many the cluster has."""
    with contextlib.suppress(TimeoutError):  # too few after the wait: the error below says so
        client.wait_for_workers(workers, timeout=WORKER_WAIT_S)
    addresses = sorted(client.scheduler_info()["workers"])
    if len(addresses) < workers:
        raise RuntimeError(
            f"the Dask cluster has {len(addresses)} workers; this cell needs {workers}"
        )
    return addresses[:workers]


def _prepare(client: Any, addresses: list[str], job: Job) -> DaskSession:
    client.run(init_process, job.cv2_threads, workers=addresses)
    return DaskSession(client, addresses)


def run(job: Job, workers: int, ctx: BaseContext, session: DaskSession | None = None) -> Phases:
    """The timed call. Without a session it opens its own, inside the timing."""
    if session is None:
        with dask_session(job, workers, ctx) as own:
            return run(job, workers, ctx, own)
    phases = Phases()
    if DaskOptions(**job.options).data == "shared_path":
        with phases.span("dispatch"):
            _gather(phases, session, _map_paths(job, session, phases))
        return phases
    futures = _map_scattered(job, session, phases)
    with phases.span("dispatch"):
        _gather(phases, session, futures)
    return phases


def _gather(phases: Phases, session: DaskSession, futures: list) -> None:
    for rows in session.client.gather(futures):
        phases.merge(rows if phases.batch else [rows])


def _map_paths(job: Job, session: DaskSession, phases: Phases) -> list:
    paths = list_images(job.input_dir)
    tasks = [(path, i, k) for i, path in enumerate(paths) for k in range(job.augmentations)]
    return _map(session, read_augment_save, job, tasks, phases)


def _map_scattered(job: Job, session: DaskSession, phases: Phases) -> list:
    images = read_all(job, phases)
    shared = session.client.scatter(images, workers=session.workers, broadcast=True)
    tasks = [(shared[i], i, k) for i in range(len(images)) for k in range(job.augmentations)]
    return _map(session, augment_and_save, job, tasks, phases)


def _map(session: DaskSession, fn: Any, job: Job, tasks: list[tuple], phases: Phases) -> list:
    if not tasks:
        return []
    if job.options.get("batch", "own") != "own":
        phases.batch = batch_size(job, len(tasks), len(session.workers), one_at_a_time)
        batches = in_batches(tasks, phases.batch)
        return session.client.map(
            run_batch,
            [fn] * len(batches),
            [job] * len(batches),
            batches,
            workers=session.workers,
            pure=False,
        )
    data, i, k = zip(*tasks, strict=True)
    return session.client.map(
        fn, data, [job] * len(tasks), i, k, workers=session.workers, pure=False
    )


def run_batch(fn: Any, job: Job, batch: list[tuple]) -> list[tuple]:
    """One Dask task: a batch of (data, i, k) tasks, their trace rows in order."""
    return [fn(data, job, i, k) for data, i, k in batch]


STRATEGY = Strategy(
    name="P_DASK",
    summary="dask.distributed: W single-threaded worker processes; "
    "images scattered once or read by path",
    run=run,
    options=DaskOptions,
    session=dask_session,
    restarts_workers=True,  # the nanny restarts a killed worker; the scheduler redoes its tasks
    schedule=Schedule(chunksize=one_at_a_time, pool=False),
    requires=("distributed",),
    extra="dask",
    notes=(
        "P_DASK on a cluster of other hosts (options.P_DASK.scheduler): each task's start and "
        "end come from its worker host's clock, which is not aligned with this host's, so its "
        "timelines and gap-based losses are approximate; a LocalCluster shares this host's clock.",
    ),
)

"""`verify`: every strategy must produce byte-identical augmented images to the baseline.

It checks the config's strategies and variants, then every other registered strategy whose
packages are installed here; one whose package is missing is named as skipped, with the extra
that installs it. Each runs once per worker count of the config (untimed, in this process) with
lossless raw output, through the same session and dead-worker detector (the watchdog hook) as a
measured run; the digest is sha256 over the raw RGB uint8 bytes of all augmented images in
(i, k) order. A strategy with a `batch` option runs once more at VERIFY_BATCH tasks a hand-out
(odd, so the last batch is short): the pixels must not depend on the batch.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from experiments import strategies
from experiments.workload import Job, init_process, list_images, output_path
from harness.config import Config
from harness.measure import hooks
from harness.measure.watchdog import Watchdog
from harness.pipelines import pipeline_of
from harness.schema import BASELINE

VERIFY_BATCH = 3


def digest(job: Job, n_images: int) -> str:
    h = hashlib.sha256()
    for i in range(n_images):
        for k in range(job.augmentations):
            h.update(output_path(job, i, k).read_bytes())
    return h.hexdigest()


def run_digest(
    strategy: str, workers: int, input_dir: Path, config: Config, batch: int | None = None
) -> str:
    """Run one strategy once with raw output into a temporary folder (at `batch` tasks a
    hand-out if given); return its digest."""
    init_process(
        config.cv2_threads
    )  # before any fork: a child must not inherit OpenCV's thread pool
    found = strategies.get(strategy)
    ctx = multiprocessing.get_context(config.start_method)
    with tempfile.TemporaryDirectory(prefix="augscale-verify-") as tmp:
        job = Job(
            input_dir,
            Path(tmp),
            config.augmentations_per_image,
            config.seed,
            True,
            "raw",
            config.cv2_threads,
            _options(config, strategy, batch),
            pipeline_of(config.pipeline),
        )
        with (
            found.open_session(job, workers, ctx) as session,
            hooks.around([Watchdog(found.restarts_workers)]),
        ):
            found.call(job, workers, ctx, session)
        return digest(job, len(list_images(input_dir)))


def _options(config: Config, strategy: str, batch: int | None) -> dict:
    options = config.options_for(strategy)
    return options if batch is None else {**options, "batch": batch}


def batches(label: str) -> list[int | None]:
    """The batch sizes verify runs a strategy at: its configured one, and VERIFY_BATCH where it
    takes a `batch` option."""
    model = strategies.get(label).options
    return [None, VERIFY_BATCH] if model is not None and "batch" in model.model_fields else [None]


def checked(config: Config) -> tuple[list[str], dict[str, str]]:
    """The labels verify runs (the config's, then every other strategy shipped with augscale
    and installed here), and the shipped strategies it skips, each with why. A plugin is
    checked when the config names it: one loaded for another config is not this one's."""
    labels = list(config.labels)
    skipped: dict[str, str] = {}
    for name, strategy in strategies.registry().items():
        if name == BASELINE or name in labels or not strategies.shipped(name):
            continue
        missing = strategy.missing()
        if missing:
            skipped[name] = f"needs {', '.join(missing)} (make install EXTRAS={strategy.extra})"
        else:
            labels.append(name)
    return labels, skipped


def verify_runs(
    config: Config,
) -> Iterator[tuple[str, int, tuple[int, int], int | None]]:
    """(strategy, workers, size, batch) for every verification run, the baseline first per
    size; batch None is the configured one."""
    labels = checked(config)[0]
    seen: set[tuple[int, int]] = set()
    for workers, size in config.sweep:
        if size not in seen:
            seen.add(size)
            yield BASELINE, 1, size, None
        for name in labels:
            if strategies.get(name).min_workers <= workers and config.runs_at(name, workers):
                for batch in batches(name):
                    yield name, workers, size, batch


def verify(
    config: Config, input_dirs: dict[tuple[int, int], Path], echo: Callable[[str], None] = print
) -> bool:
    for name, why in checked(config)[1].items():
        echo(f"{name:<12} skipped: {why}")
    sequential: dict[tuple[int, int], str] = {}
    ok = True
    for name, workers, size, batch in verify_runs(config):
        value = run_digest(name, workers, input_dirs[size], config, batch)
        sequential.setdefault(size, value)
        same = value == sequential[size]
        ok &= same
        at = f" batch={batch}" if batch is not None else ""
        echo(
            f"{name:<12} W={workers:<3} {size[0]}x{size[1]}{at}  sha256={value}  "
            f"{'OK' if same else 'DIFFERS from sequential'}"
        )
    return ok

"""Before a sweep: will it fit in this machine's memory and disk? Refuse with the figures if not.

Peak memory of a cell is the strategy's own model (the contract's memory_mb; the default,
experiments.contract.pool_memory_mb, is a deliberate over-estimate: refusing a sweep that
would fit costs less than one that swaps).
Disk: one run's outputs (emptied after every run), and the generated test images.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import psutil

from experiments import strategies
from harness.config import Config
from harness.errors import HarnessError
from harness.images import CACHE_ROOT
from harness.plan.cells import Cell

BYTES_PER_PIXEL_SAVED = {
    "jpg": 1.0,
    "png": 3.0,
    "raw": 3.0,
    "npy": 12.0,  # float32 RGB: a pipeline ending in Normalize
}  # generous: noisy outputs compress poorly


@dataclass(frozen=True)
class Needs:
    memory_mb: float
    disk_mb: float  # one run's saved outputs, on the scratch disk
    inputs_mb: float  # generated test images, on the cache disk
    worst_cell: str


def cell_memory_mb(cell: Cell, n_images: int) -> float:
    image_mb = cell.width * cell.height * 3 / 2**20
    return strategies.get(cell.strategy).memory_mb(cell.workers, n_images, image_mb)


def needs(config: Config, cells: list[Cell], n_images: int) -> Needs:
    worst = max(cells, key=lambda c: cell_memory_mb(c, n_images))
    outputs = max(
        (
            c.width
            * c.height
            * n_images
            * config.augmentations_per_image
            * BYTES_PER_PIXEL_SAVED[config.images.format]
            / 2**20
            for c in cells
            if c.saving
        ),
        default=0.0,
    )
    inputs = 0.0
    if config.images.input_dir is None:
        sizes = {config.base_size} | {s for _, s in config.sweep}
        inputs = sum(w * h * 3 * n_images for w, h in sizes) / 2**20
    return Needs(cell_memory_mb(worst, n_images), outputs, inputs, worst.id)


def check(
    config: Config, cells: list[Cell], n_images: int, scratch_root: Path, where: str
) -> Needs:
    """Raise HarnessError (exit 2) when the sweep cannot fit; --force skips the call."""
    need = needs(config, cells, n_images)
    have_mb = psutil.virtual_memory().total / 2**20
    if need.memory_mb > have_mb:
        raise HarnessError(
            where,
            "images / workers",
            f"the largest cell ({need.worst_cell}) needs about {need.memory_mb:,.0f} MiB "
            f"of memory, this machine has {have_mb:,.0f} MiB",
            "use fewer or smaller images or fewer workers, or pass --force to try anyway",
        )
    for mb, folder, what in (
        (need.disk_mb, scratch_root, "saving"),
        (need.inputs_mb, CACHE_ROOT, "the generated test images"),
    ):
        free_mb = shutil.disk_usage(_existing(folder)).free / 2**20
        if mb > free_mb:
            raise HarnessError(
                where,
                "images.count / augmentations_per_image",
                f"{what} need about {mb:,.0f} MiB on {_existing(folder)}, "
                f"only {free_mb:,.0f} MiB are free",
                "free disk space, set scratch_dir to a larger disk, lower the counts, "
                "or pass --force",
            )
    return need


def _existing(folder: Path) -> Path:
    while not folder.exists():
        folder = folder.parent
    return folder
